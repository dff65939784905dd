/**
 * Authority: people, agent tokens, grants, scopes, reader policies (row filters and
 * masks), and THE single enforcement point, {@link GuardedLake}, that every interface
 * calls lake operations through.
 */
export { grantExecutor } from './approvalExecutors.js';
export { exportExecutor, exportFormat, exportKey } from './exportExecutor.js';
export { unmaskExecutor } from './unmaskExecutor.js';
export { AUTH_PARTITION, AuthDirectory, checkName, checkRole, principalText } from './AuthDirectory.js';
export { Authority, parseScope, SCOPE_RIGHTS } from './Authority.js';
export { checkGrant, checkScope, GuardedLake } from './GuardedLake.js';
export {
  BRANCH_RIGHTS,
  branchRightCovers,
  defaultAgentScopes,
  matchesPattern,
  ROLES,
  roleGrants,
  TABLE_RIGHTS,
  tableRightCovers,
} from './model.js';
export {
  DEFAULT_TOKEN_TTL_MS,
  hashSecret,
  MAX_TOKEN_TTL_MS,
  mintToken,
  parseToken,
  parseTtl,
  secretMatches,
} from './tokens.js';

export type { AuthApprovalExecutor } from './approvalExecutors.js';
export type { AuthSettings } from './AuthDirectory.js';
export type { AuthActor, ReaderPolicy, Standing } from './Authority.js';
export type { ApprovalGate, ApprovalRequest, GuardedLakeOptions } from './GuardedLake.js';
export type {
  BranchRight,
  Grant,
  MaskKind,
  Person,
  Principal,
  Role,
  RowFilter,
  Scope,
  StoredGrant,
  TableRight,
  TokenInfo,
  TokenRecord,
} from './model.js';
