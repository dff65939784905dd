/**
 * S3-upload ingestion: an object uploaded to `landing/<namespace>/<table>/<file>` is
 * appended to that table on its own ingest branch and merged into the target (or left for
 * approval), idempotently under at-least-once, out-of-order delivery. The Lambda
 * (`functions/ingest.ts`) feeds it S3 event records; `airlock serve` polls the prefix.
 */
export {
  INGEST_ACTOR,
  ingestNeedsApproval,
  ingestionId,
  ingestObject,
} from './ingestObject.js';
export { IngestionLog } from './ingestionLog.js';
export { decodeEventKey, LANDING_PREFIX, parseLandingKey } from './landingKey.js';
export { startLandingPoller } from './landingPoller.js';
export { parseS3Record } from './s3Events.js';
export { compareSequencers, sequencerFromTime } from './sequencer.js';
export { ingestConfigFromEnv } from './ingestConfig.js';

export type {
  IngestGate,
  IngestOptions,
  IngestOutcome,
  LandingSource,
  ObjectCreatedEvent,
} from './ingestObject.js';
export type { EventClaim, IngestionRecord, IngestionStatus } from './ingestionLog.js';
export type { LandingTarget } from './landingKey.js';
export type { LandingPoller, LandingPollerOptions } from './landingPoller.js';
export type { ParsedRecord, S3EventRecord } from './s3Events.js';
export type { IngestConfig } from './ingestConfig.js';
