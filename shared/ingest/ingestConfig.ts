import { validateRefName } from '../catalog/index.js';
import { invalid } from '../errors/index.js';
import type { IngestGate } from './ingestObject.js';

/** Ingestion settings shared by the Lambda and `airlock serve`. */
export interface IngestConfig {
  target: string;
  person: string;
  gate: IngestGate;
  pollMs: number;
}

/**
 * Reads ingestion settings from the environment: `AIRLOCK_INGEST_TARGET` (branch, default
 * `main`), `AIRLOCK_INGEST_PERSON` (the service person it acts as, default `ingest`),
 * `AIRLOCK_INGEST_GATE` (`protected` | `none`, default `protected`: an upload into a
 * protected branch waits for a person's approval, as any boundary-crossing change does) and, for `airlock serve`,
 * `AIRLOCK_INGEST_POLL_MS` (default 2000; `0` turns the local poller off).
 */
export function ingestConfigFromEnv(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  const target = env.AIRLOCK_INGEST_TARGET || 'main';
  validateRefName('branch', target);
  const person = env.AIRLOCK_INGEST_PERSON || 'ingest';
  if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(person)) {
    throw invalid(`AIRLOCK_INGEST_PERSON '${person.slice(0, 80)}' is not a valid person name`);
  }
  const gate = env.AIRLOCK_INGEST_GATE || 'protected';
  if (gate !== 'none' && gate !== 'protected') {
    throw invalid(`AIRLOCK_INGEST_GATE must be none or protected, got '${gate.slice(0, 40)}'`);
  }
  const pollText = env.AIRLOCK_INGEST_POLL_MS ?? '2000';
  const pollMs = Number(pollText);
  if (!/^\d+$/.test(pollText) || pollMs > 3_600_000) {
    throw invalid(`AIRLOCK_INGEST_POLL_MS must be a whole number of milliseconds (0 = off), got '${pollText}'`);
  }
  return { target, person, gate, pollMs };
}
