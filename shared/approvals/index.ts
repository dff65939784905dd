/**
 * Approvals: boundary-crossing actions (an agent's merge into a protected branch, grants,
 * hard deletes, unmasking, export beyond caps) wait for a person. Each approval is bound to
 * the hash of exactly what was asked and the state it was judged on, voids itself when
 * that state moves, and executes exactly once.
 */
export {
  ApprovalWebhook,
  checkWebhookUrl,
  diffSummaryOf,
  redactWebhookUrl,
  webhookBody,
} from './ApprovalWebhook.js';
export { Approvals } from './Approvals.js';
export { mergeDiffSummary, mergeExecutor, prepareMergeApproval } from './mergeExecutor.js';
export { APPROVAL_ACTIONS, approvalHash, describeActor } from './model.js';
export { openApprovals } from './openApprovals.js';

export type {
  ApprovalExecutor,
  ApprovalFilter,
  ApprovalNotifier,
  ApprovalsOptions,
} from './Approvals.js';
export type { ApprovalWebhookBody, ApprovalWebhookOptions, WebhookDelivery } from './ApprovalWebhook.js';
export type { ApprovalsLake } from './openApprovals.js';
export type { Approval, ApprovalAction, ApprovalInput, ApprovalStatus } from './model.js';
