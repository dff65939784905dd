import { seqSk } from '../../catalog/branchLog.js';
import type { Actor } from '../../catalog/model.js';
import { conflict, isConflict, notFound } from '../../errors/index.js';
import type { CatalogStore, CatalogItem } from '../../store/ports.js';

/** How a run checks what it read when it publishes. */
export type Isolation = 'snapshot' | 'serializable';

/** A step as recorded when the run starts. */
export interface RecordedStep {
  name: string;
  kind: 'sql' | 'code';
  output: string;
  /** Tables the step reads. */
  inputs: string[];
  /** Names of the steps it waits for. */
  after: string[];
  /** SHA-256 of the step file (a resumed run refuses changed code for finished steps). */
  hash: string;
}

/** Why a step failed: the sandbox's reasons plus the run's own. */
export type StepFailureReason =
  | 'step_error'
  | 'sandbox_violation'
  | 'timeout'
  | 'memory'
  | 'output_too_large'
  | 'crashed'
  | 'expectation_failed'
  | 'schema_mismatch'
  | 'query_error'
  | 'denied_import';

/** One event of a run. Runs are event-sourced: their state is the fold of these. */
export type RunEvent =
  | {
      type: 'started';
      runId: string;
      pipeline: string;
      branch: string;
      runBranch: string;
      /** The target's head the run branched from. */
      base: string;
      params: Record<string, string>;
      isolation: Isolation;
      dryRun: boolean;
      steps: RecordedStep[];
      /** Versions (null = absent) on the target at `base` of the tables the run reads but does not write. */
      reads: Record<string, string | null>;
    }
  | { type: 'resumed'; attempt: number }
  | { type: 'step-started'; step: string }
  | {
      type: 'step-succeeded';
      step: string;
      table: string;
      commit: string;
      version: string;
      rows: number;
      durationMs: number;
      /** Table versions the step read (on the run branch). */
      reads: Record<string, string>;
      logs: string[];
    }
  | {
      type: 'step-failed';
      step: string;
      reason: StepFailureReason;
      code: string;
      message: string;
      durationMs: number;
      logs: string[];
    }
  | {
      type: 'finished';
      status: 'succeeded' | 'failed' | 'conflict' | 'awaiting_approval';
      /** The target's new head (published runs). */
      commit?: string;
      mergeStatus?: string;
      /** The approval request publishing waits for (`awaiting_approval`). */
      approvalId?: string;
      published: boolean;
      error?: { code: string; message: string; step?: string; tables?: string[] };
    };

/** An event as stored: with its sequence number, time, actor and the attempt that wrote it. */
export type StoredRunEvent = RunEvent & { seq: number; time: string; actor: Actor; attempt: number };

const runPk = (runId: string) => `run#${runId}`;
const REGISTRY = 'runs';

/**
 * The event log of one run: an append-only partition with conditional appends, exactly
 * like a branch log. Each process executing the run holds an attempt number (1 for the
 * process that started it, one more per `run resume`); an append that finds a newer
 * attempt's `resumed` event stops this process, so two executors never both drive a run.
 */
export class RunLog {
  private events: StoredRunEvent[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: CatalogStore,
    readonly runId: string,
    readonly attempt: number,
    private readonly actor: Actor,
  ) {}

  /** Starts a run's log with its `started` event and lists it in the run registry, atomically. */
  static async create(
    store: CatalogStore,
    started: Extract<RunEvent, { type: 'started' }>,
    actor: Actor,
  ): Promise<RunLog> {
    const log = new RunLog(store, started.runId, 1, actor);
    const event: StoredRunEvent = { ...started, seq: 1, time: new Date().toISOString(), actor, attempt: 1 };
    await store.transact([
      { op: 'put', item: log.item(event), condition: { kind: 'absent' } },
      {
        op: 'put',
        item: {
          pk: REGISTRY,
          sk: started.runId,
          data: { runId: started.runId, branch: started.branch, pipeline: started.pipeline, time: event.time },
        },
        condition: { kind: 'absent' },
      },
    ]);
    log.events = [event];
    return log;
  }

  /** Reads a run's events (NOT_FOUND naming the id when there is no such run). */
  static async read(store: CatalogStore, runId: string): Promise<StoredRunEvent[]> {
    const events = await readAll(store, runPk(runId));
    if (events.length === 0) throw notFound(`unknown run '${runId}' (see: airlock runs list)`, { runId });
    return events;
  }

  /** Takes over a run for a new executor: appends `resumed` with the next attempt number. */
  static async resume(store: CatalogStore, runId: string, actor: Actor): Promise<RunLog> {
    for (;;) {
      const events = await RunLog.read(store, runId);
      const attempt = Math.max(...events.map((e) => e.attempt)) + 1;
      const log = new RunLog(store, runId, attempt, actor);
      log.events = events;
      try {
        await log.append({ type: 'resumed', attempt });
        return log;
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
  }

  /** Run ids, newest first, from the registry. */
  static async list(store: CatalogStore, limit: number): Promise<string[]> {
    const page = await store.query(REGISTRY, { reverse: true, limit });
    return page.items.map((i) => i.sk);
  }

  /** Every event so far, as this executor knows them. */
  get all(): readonly StoredRunEvent[] {
    return this.events;
  }

  /**
   * Appends an event after the last one. Appends of one executor are serialised; when
   * another executor appended in between, its events are read and, if it took the run
   * over (a newer attempt), this executor stops with CONFLICT.
   */
  append(event: RunEvent): Promise<StoredRunEvent> {
    const next = this.queue.then(() => this.appendNow(event));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async appendNow(event: RunEvent): Promise<StoredRunEvent> {
    for (;;) {
      const last = this.events[this.events.length - 1];
      const stored: StoredRunEvent = {
        ...event,
        seq: (last?.seq ?? 0) + 1,
        time: new Date().toISOString(),
        actor: this.actor,
        attempt: this.attempt,
      };
      try {
        await this.store.put(this.item(stored), { kind: 'absent' });
        this.events.push(stored);
        return stored;
      } catch (e) {
        if (!isConflict(e)) throw e;
        const newer = await readAll(this.store, runPk(this.runId), (last?.seq ?? 0) + 1);
        this.events.push(...newer);
        const takeover = newer.find((n) => n.attempt > this.attempt);
        if (takeover) {
          throw conflict(
            `run ${this.runId} was resumed by another process (attempt ${takeover.attempt}); this one stops`,
            { runId: this.runId },
          );
        }
      }
    }
  }

  private item(event: StoredRunEvent): CatalogItem {
    return { pk: runPk(this.runId), sk: seqSk(event.seq), t: event.time, data: { ...event } };
  }
}

async function readAll(store: CatalogStore, pk: string, fromSeq = 1): Promise<StoredRunEvent[]> {
  const out: StoredRunEvent[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.query(pk, { gte: seqSk(fromSeq), ...(cursor ? { cursor } : {}) });
    out.push(...page.items.map((i) => i.data as unknown as StoredRunEvent));
    cursor = page.cursor;
  } while (cursor);
  return out;
}
