import { createHash, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openApprovals, prepareMergeApproval } from '../approvals/index.js';
import { AuditLog } from '../audit/index.js';
import type { Actor, Commit } from '../catalog/index.js';
import { AirlockError, conflict, isAirlockError, isConflict } from '../errors/index.js';
import type { Lake } from '../lake/Lake.js';
import { type EventClaim, type IngestionRecord, IngestionLog, type IngestionStatus } from './ingestionLog.js';
import { type LandingTarget, parseLandingKey } from './landingKey.js';
import { compareSequencers } from './sequencer.js';

/** One `ObjectCreated` event, as read from an S3 event record (key already URL-decoded). */
export interface ObjectCreatedEvent {
  bucket: string;
  key: string;
  /** Absent (or `null`) for an unversioned bucket. */
  versionId?: string | null;
  /** S3's hexadecimal per-key event order. */
  sequencer: string;
  size?: number;
  /**
   * Only where no real sequencer exists (the landing poller derives one from the
   * modification time): the object's ETag, so two uploads within one timestamp differ.
   */
  eTag?: string;
}

/** Where the bytes of an uploaded object come from (S3 `GetObject` of that exact version, in production). */
export interface LandingSource {
  /** Writes the object (the given version when set) to `path`. */
  download(object: { bucket: string; key: string; versionId: string | null }, path: string): Promise<void>;
}

/**
 * Whether an ingestion into `target` waits for a person:
 * - `none` (default): ingestions merge like any person's merge (protected branches change
 *   only by merge, which this is);
 * - `protected`: an ingestion into a protected branch opens an approval request instead.
 */
export type IngestGate = 'none' | 'protected';

/** How ingestion behaves (the Lambda and `airlock serve` read it from the environment). */
export interface IngestOptions {
  source: LandingSource;
  /** The branch ingestions merge into (default `main`). */
  target?: string;
  /** The service person ingestions act as (default `ingest`): every commit, merge and audit entry names it. */
  actor?: Actor;
  gate?: IngestGate;
  /** A claim older than this is presumed dead and taken over (default 15 minutes, the Lambda timeout). */
  leaseMs?: number;
  now?: () => Date;
}

/** What {@link ingestObject} did with one event. */
export interface IngestOutcome {
  /** True when the event had been processed before (or is being processed): nothing was done now. */
  duplicate: boolean;
  record: IngestionRecord;
}

/** The service person ingestions act as unless configured. */
export const INGEST_ACTOR: Actor = { person: 'ingest' };
const DEFAULT_LEASE_MS = 15 * 60_000;

/**
 * The one decision point for "does this ingestion need a person's approval?" (then the
 * merge becomes an approval request in `shared/approvals`, bound to the ingest branch's
 * commit and the target's head, which a person other than the ingest person approves).
 */
export async function ingestNeedsApproval(lake: Lake, target: string, gate: IngestGate): Promise<boolean> {
  return gate === 'protected' && (await lake.catalog.isProtected(target));
}

/** The identity of an event: bucket, key, version id and sequencer (hex SHA-256, 16 digits). */
export function ingestionId(event: ObjectCreatedEvent): string {
  return createHash('sha256')
    .update(
      [
        event.bucket,
        event.key,
        event.versionId ?? 'null',
        event.sequencer.toUpperCase(),
        ...(event.eTag ? [event.eTag] : []),
      ].join('\u0000'),
    )
    .digest('hex')
    .slice(0, 16);
}

/**
 * Ingests one uploaded object: `landing/<ns>/<table>/<file>` is appended to `<ns>.<table>`
 * on a fresh branch `ingest/<ns>.<table>/<id>` made from the target, checked against the
 * table's constraints by the import, and merged into the target (or, behind the gate,
 * left for approval). Every outcome is recorded ({@link IngestionLog}) and audited as the
 * ingest service person.
 *
 * Delivery is at-least-once and unordered, so:
 * - an event already processed (same bucket, key, version id, sequencer) is a no-op that
 *   returns the first outcome (`duplicate: true`); one being processed elsewhere throws
 *   CONFLICT, so the delivery is retried later;
 * - an event older (by sequencer) than one already processed for the same key is skipped
 *   and recorded as `skipped`, saying which newer event superseded it;
 * - the branch name is derived from the event, and the import commit is marked with the
 *   event id, so a processor that died after importing is taken over without importing
 *   twice, and a second merge of merged work is "up to date".
 *
 * Refusals (key outside `landing/`, bad names, unknown formats) and failed imports
 * (constraint violations, unreadable files) are recorded outcomes, not errors: the
 * target is untouched and, for failed imports, the ingest branch is kept. Only
 * infrastructure failures throw (after releasing the claim, so a retry starts over).
 */
export async function ingestObject(
  lake: Lake,
  event: ObjectCreatedEvent,
  options: IngestOptions,
): Promise<IngestOutcome> {
  const now = options.now ?? (() => new Date());
  const actor = options.actor ?? INGEST_ACTOR;
  const target = options.target ?? 'main';
  const gate = options.gate ?? 'none';
  const log = new IngestionLog(lake.stores.store);
  const audit = new AuditLog(lake.stores.store, lake.stores.objects);
  const id = ingestionId(event);
  const started = now().toISOString();
  const base = {
    id,
    bucket: event.bucket,
    key: event.key,
    versionId: event.versionId ?? null,
    sequencer: event.sequencer,
    person: actor.person,
    started,
  };
  const auditTarget = `s3://${event.bucket}/${event.key}`;

  const claim = await log.claim(id, now(), options.leaseMs ?? DEFAULT_LEASE_MS);
  if (!claim.claimed) {
    const done = finishedRecord(claim.claim);
    await audit.append({
      ...actorFields(actor),
      action: 'ingest',
      target: auditTarget,
      outcome: done ? 'ok' : 'error',
      request: base,
      details: { id, duplicate: true, ...(done ? { status: done.status } : { inProgressSince: claim.claim.started }) },
    });
    if (done) return { duplicate: true, record: done };
    throw conflict(`event ${id} (${auditTarget}) is being ingested by another worker since ${claim.claim.started}`, {
      ingestion: id,
    });
  }

  let recorded = false;
  const finish = async (
    status: IngestionStatus,
    fields: Partial<IngestionRecord> = {},
    error?: unknown,
  ): Promise<IngestOutcome> => {
    const record: IngestionRecord = {
      ...base,
      ...fields,
      status,
      ...(error !== undefined ? { error: errorFields(error) } : {}),
      finished: now().toISOString(),
    };
    await log.finish(record);
    recorded = true; // from here on a failure must not release the claim: the outcome stands
    await audit.append({
      ...actorFields(actor),
      action: 'ingest',
      target: auditTarget,
      outcome: AUDIT_OUTCOME[status],
      request: base,
      details: {
        id,
        status,
        ...(record.table ? { table: record.table } : {}),
        ...(record.rows !== undefined ? { rows: record.rows } : {}),
        ...(record.commit ? { commit: record.commit } : {}),
        ...(record.error ? { error: record.error.code } : {}),
      },
    });
    return { duplicate: false, record };
  };

  try {
    let landing: LandingTarget;
    try {
      compareSequencers(event.sequencer, event.sequencer); // validates it
      landing = parseLandingKey(event.key);
    } catch (e) {
      if (!isAirlockError(e)) throw e;
      return await finish('refused', {}, e);
    }
    const { newer } = await log.advanceKey(event.bucket, event.key, event.sequencer, id, compareSequencers);
    if (newer) {
      return await finish(
        'skipped',
        { table: landing.table },
        new AirlockError(
          'CONFLICT',
          `a newer upload of ${event.key} (sequencer ${newer.sequencer}, ingestion ${newer.id}) was already processed; this older event (sequencer ${event.sequencer}) is skipped`,
        ),
      );
    }
    const branch = `ingest/${landing.table}/${id.slice(0, 12)}`;
    const fields: Partial<IngestionRecord> = { table: landing.table, branch, target };

    // The ingest branch: fresh, or the one a dead processor of this same event left.
    let imported: { commit: string; rows: number } | undefined;
    try {
      await lake.catalog.createBranch(branch, target, actor);
    } catch (e) {
      if (!isConflict(e) || e.details.branch !== branch) throw e;
      imported = await importedBy(lake, branch, id);
    }
    if (!imported) {
      const file = join(lake.stores.stagingDir, `ingest-${randomUUID()}${landing.extension}`);
      try {
        await options.source.download({ bucket: event.bucket, key: event.key, versionId: base.versionId }, file);
        const result = await lake.importTable(actor, {
          table: landing.table,
          file,
          branch,
          mode: 'append',
          message: `Ingest s3://${event.bucket}/${event.key} into ${landing.table} [ingestion ${id}]`,
        });
        imported = { commit: result.commit, rows: result.rows };
      } catch (e) {
        if (!isAirlockError(e) || e.code === 'INTERNAL') throw e;
        return await finish('failed', fields, e);
      } finally {
        rmSync(file, { force: true });
      }
    }
    Object.assign(fields, imported);

    const message = `Merge ingestion ${id} (${event.key}) into ${target}`;
    if (await ingestNeedsApproval(lake, target, gate)) {
      try {
        const input = await prepareMergeApproval(lake.catalog, actor, branch, target, message);
        // An approval request for the same binding that is still pending is returned, not duplicated.
        const approval = await openApprovals(lake).approvals.request(actor, input);
        return await finish('awaiting_approval', { ...fields, approvalId: approval.id });
      } catch (e) {
        if (!isAirlockError(e) || e.code === 'INTERNAL') throw e;
        return await finish('failed', fields, e);
      }
    }
    try {
      const merged = await lake.catalog.merge(branch, target, { actor, message });
      return await finish('merged', { ...fields, ...(merged.commit ? { mergeCommit: merged.commit } : {}) });
    } catch (e) {
      if (!isAirlockError(e) || e.code === 'INTERNAL') throw e;
      return await finish('failed', fields, e);
    }
  } catch (e) {
    if (!recorded) await log.release(id).catch(() => undefined);
    throw e;
  }
}

/** The import a previous processor of this event made on its branch (the head commit carries the event id), if any. */
async function importedBy(
  lake: Lake,
  branch: string,
  id: string,
): Promise<{ commit: string; rows: number } | undefined> {
  const [head] = await lake.catalog.history(branch, 1);
  if (!head?.message.includes(`[ingestion ${id}]`)) return undefined;
  return { commit: head.id, rows: await rowsAdded(lake, head) };
}

async function rowsAdded(lake: Lake, commit: Commit): Promise<number> {
  const count = async (ref: string) => (await lake.catalog.listTables(ref)).reduce((n, t) => n + t.rowCount, 0);
  const parent = commit.parents[0];
  return (await count(commit.id)) - (parent ? await count(parent) : 0);
}

const AUDIT_OUTCOME: Record<IngestionStatus, string> = {
  merged: 'ok',
  awaiting_approval: 'approval_required',
  failed: 'error',
  refused: 'error',
  skipped: 'ok',
};

function actorFields(actor: Actor): { person: string; agent?: string } {
  return actor.agent ? { person: actor.person, agent: actor.agent } : { person: actor.person };
}

function errorFields(error: unknown): { code: string; message: string } {
  return isAirlockError(error)
    ? { code: error.code, message: error.message }
    : { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

function finishedRecord(claim: EventClaim): IngestionRecord | undefined {
  return claim.state === 'done' ? claim.record : undefined;
}
