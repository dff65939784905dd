/**
 * The tamper-evident audit trail: every request's entry in a SHA-256 hash chain kept in
 * the catalog store, anchored in the object store, verifiable end to end, and free of
 * secrets and SQL literals. The one enforcement point appends; `airlock audit` reads.
 */
export { AuditLog, MAX_DETAILS_BYTES } from './AuditLog.js';
export { parseActor, parseSince } from './auditQuery.js';
export {
  AUDIT_ANCHOR_PREFIX,
  AUDIT_PARTITION,
  anchorKey,
  auditSeqKey,
  entryHash,
  GENESIS_HASH,
  requestHash,
  seqOfKey,
} from './hashChain.js';
export { REDACTED_LITERAL, redactSql } from './redactSql.js';
export { isSecretName, looksLikeSecret, REDACTED, redactDetails, redactSecretsInText } from './redactSecrets.js';
export { verifyAuditChain } from './verifyAuditChain.js';

export type { AuditLogOptions, AuditRecord, AuditRetryPolicy } from './AuditLog.js';
export type { AuditLogQuery } from './auditQuery.js';
export type { AuditAnchor, AuditEntry, AuditOutcome } from './hashChain.js';
export type { RedactLimits } from './redactSecrets.js';
export type {
  AuditHead,
  AuditProblem,
  AuditTamperKind,
  AuditVerification,
  ChainSource,
} from './verifyAuditChain.js';
