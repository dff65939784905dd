import { AuditLog } from '../audit/index.js';
import type { Catalog } from '../catalog/index.js';
import type { CatalogStore, ObjectStore } from '../store/ports.js';
import { ApprovalWebhook, type ApprovalWebhookOptions } from './ApprovalWebhook.js';
import { Approvals, type ApprovalsOptions } from './Approvals.js';
import { mergeExecutor } from './mergeExecutor.js';

/** What {@link openApprovals} needs of a lake (a `Lake` has all of it). */
export interface ApprovalsLake {
  catalog: Catalog;
  stores: { store: CatalogStore; objects: ObjectStore };
  owner: string;
}

/**
 * The approvals of a lake, wired as every interface should use them: merges executed by
 * the catalog, requests and decisions audited in the lake's audit trail (unless `audit`
 * is given as `false`, e.g. when the caller's guard already audits them), and new requests
 * POSTed to the lake's webhook. More executors (grant, export…) are added with `register`.
 *
 * @example
 * const approvals = openApprovals(lake, { mayApprove: (a) => roles.has(a.person, 'approver') });
 */
export function openApprovals(
  lake: ApprovalsLake,
  options: Omit<ApprovalsOptions, 'audit'> & {
    audit?: AuditLog | false;
    webhook?: Omit<ApprovalWebhookOptions, 'owner'>;
  } = {},
): { approvals: Approvals; webhook: ApprovalWebhook } {
  const { audit: auditOption, webhook: webhookOptions, executors, ...rest } = options;
  const audit =
    auditOption === false ? undefined : (auditOption ?? new AuditLog(lake.stores.store, lake.stores.objects));
  const webhook = new ApprovalWebhook(lake.stores.store, {
    owner: lake.owner,
    ...(audit ? { audit } : {}),
    ...webhookOptions,
  });
  const approvals = new Approvals(lake.stores.store, {
    ...rest,
    executors: { merge: mergeExecutor(lake.catalog), ...executors },
    notifier: options.notifier ?? webhook,
    ...(audit ? { audit } : {}),
  });
  return { approvals, webhook };
}
