import type { Lake } from '../lake/Lake.js';
import {
  type IngestOptions,
  type IngestOutcome,
  type ObjectCreatedEvent,
  ingestionId,
  ingestObject,
} from './ingestObject.js';

/** Options of {@link startLandingPoller}. */
export interface LandingPollerOptions extends IngestOptions {
  /** Lists the landing prefix as events (e.g. `listLanding` over S3 / s3rver). */
  list: () => Promise<ObjectCreatedEvent[]>;
  /** Pause between listings (default 2000 ms). */
  intervalMs?: number;
  /** Called with every outcome (not with duplicates). */
  onOutcome?: (outcome: IngestOutcome) => void;
  /** Called when a listing or an ingestion fails (it is retried on the next pass). */
  onError?: (error: unknown) => void;
}

/** A running poller. */
export interface LandingPoller {
  /** Runs one pass now (waits for a pass in progress first); resolves with this pass's outcomes. */
  poll(): Promise<IngestOutcome[]>;
  /** Stops polling and waits for the pass in progress. */
  stop(): Promise<void>;
}

/**
 * Turns uploads into ingestions where no event notification reaches Airlock (locally:
 * `airlock serve` on an s3rver- or MinIO-backed lake). Each pass lists the landing
 * prefix and hands every object not yet seen by this process to {@link ingestObject},
 * oldest first; the catalog-store claims make an object already ingested (by this or any
 * other process, before a restart too) a no-op, so the in-memory set only saves work.
 */
export function startLandingPoller(lake: Lake, options: LandingPollerOptions): LandingPoller {
  const seen = new Set<string>();
  const intervalMs = options.intervalMs ?? 2000;
  let running: Promise<IngestOutcome[]> = Promise.resolve([]);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const pass = async (): Promise<IngestOutcome[]> => {
    const outcomes: IngestOutcome[] = [];
    let events: ObjectCreatedEvent[];
    try {
      events = await options.list();
    } catch (e) {
      options.onError?.(e);
      return outcomes;
    }
    for (const event of events) {
      if (stopped) break;
      const id = ingestionId(event);
      if (seen.has(id)) continue;
      try {
        const outcome = await ingestObject(lake, event, options);
        seen.add(id);
        if (!outcome.duplicate) {
          outcomes.push(outcome);
          options.onOutcome?.(outcome);
        }
      } catch (e) {
        options.onError?.(e);
      }
    }
    return outcomes;
  };
  const poll = () => {
    running = running.then(pass, pass);
    return running;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      void poll().finally(schedule);
    }, intervalMs);
    timer.unref?.();
  };
  schedule();
  return {
    poll,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running.catch(() => undefined);
    },
  };
}
