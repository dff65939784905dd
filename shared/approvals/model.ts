/**
 * Approvals' data: what a request for approval records, and the hash that binds it to
 * exactly one action on exactly one state of the lake.
 */
import type { Actor } from '../catalog/index.js';
import { canonicalJson, sha256Hex } from '../catalog/index.js';

/** The boundary-crossing or irreversible actions that wait for a person's approval. */
export type ApprovalAction = 'merge' | 'grant' | 'delete' | 'unmask' | 'export';

/** Every {@link ApprovalAction}, for validation and help texts. */
export const APPROVAL_ACTIONS: readonly ApprovalAction[] = ['merge', 'grant', 'delete', 'unmask', 'export'];

/**
 * Where an approval is in its life:
 * - `pending`: waiting for a person;
 * - `approved`: a person approved and the action is being executed (claimed, no result yet);
 * - `executed`: the action ran, exactly once; `result` says what it produced;
 * - `rejected`: a person said no (`reason`);
 * - `void`: what it was bound to moved before it ran (`reason` names what moved);
 * - `failed`: the action was attempted and failed without effect (`reason`).
 */
export type ApprovalStatus = 'pending' | 'approved' | 'executed' | 'rejected' | 'void' | 'failed';

/** What a caller asks approval for. */
export interface ApprovalInput {
  action: ApprovalAction;
  /** What the action changes, e.g. the target branch of a merge, a person of a grant. */
  target: string;
  /** How to perform it (e.g. the merge's source and message). JSON. */
  params: Record<string, unknown>;
  /**
   * The state it was judged against; if any of it changes, the approval is void. For a
   * merge: `{ source, sourceCommit, target, targetHead }`.
   */
  binding: Record<string, string>;
  /** One line a person reads in a list or a chat message. */
  summary: string;
  /** The exact change shown to the approver (for a merge: the merge dry run's table changes). JSON. */
  diff: unknown;
}

/** A request for approval, as stored and returned. */
export interface Approval extends ApprovalInput {
  id: string;
  /** SHA-256 of the canonical JSON of `{action, target, params, binding}`: what is approved. */
  hash: string;
  requester: Actor;
  status: ApprovalStatus;
  /** Why it was rejected, voided or failed. */
  reason?: string;
  /** Who approved or rejected it (never an agent, never the requester's person). */
  decidedBy?: Actor;
  /** What the execution produced (for a merge: `{ commit, status }`). */
  result?: Record<string, unknown>;
  createdAt: string;
  decidedAt?: string;
  /** Set while `approved`: who claimed the execution and when (a crashed execution is recovered after a lease). */
  claim?: { by: Actor; at: string };
}

/** The hash an approval is bound to: equal inputs give equal hashes, any change gives another. */
export function approvalHash(input: Pick<ApprovalInput, 'action' | 'target' | 'params' | 'binding'>): string {
  return sha256Hex(
    canonicalJson({ action: input.action, target: input.target, params: input.params, binding: input.binding }),
  );
}

/** `person` or `agent X of person`, for messages. */
export function describeActor(actor: Actor): string {
  return actor.agent ? `agent ${actor.agent} of ${actor.person}` : actor.person;
}
