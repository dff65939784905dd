export {
  AirlockError,
  conflict,
  denied,
  invalid,
  isAirlockError,
  isApprovalRequired,
  isConflict,
  isDenied,
  isInvalid,
  isLimitExceeded,
  isNotFound,
  limitExceeded,
  notFound,
} from './AirlockError.js';
export type { AirlockErrorOptions, ErrorCode } from './AirlockError.js';
