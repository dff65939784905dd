import type { Actor } from '../catalog/index.js';
import { invalid } from '../errors/index.js';
import type { AuthDirectory } from './AuthDirectory.js';
import type { Grant, MaskKind, Principal, Role } from './model.js';

/** An approval as the executors read it (the approvals service's `Approval`, structurally). */
interface ApprovalLike {
  id: string;
  action: string;
  target: string;
  params: Record<string, unknown>;
  binding: Record<string, string>;
  requester: Actor;
}

/** The approvals service's executor port, structurally (see `shared/approvals`). */
export interface AuthApprovalExecutor {
  moved(approval: ApprovalLike): Promise<string[]>;
  execute(approval: ApprovalLike, approver: Actor): Promise<Record<string, unknown>>;
}

/**
 * Executes an approved grant change (requested by an admin's agent through the guard): the
 * operation recorded in `params.operation` is applied as it was asked, recorded as made by
 * the requester's person with the approver named. Register it on the approvals service as
 * the `grant` executor. Grant changes bind to nothing that can move, so they never void.
 *
 * @example
 * approvals.register('grant', grantExecutor(guard.directory));
 */
export function grantExecutor(directory: AuthDirectory): AuthApprovalExecutor {
  return {
    moved: async () => [],
    async execute(approval, approver) {
      const p = approval.params;
      const by = `${approval.requester.person} (approved by ${approver.person})`;
      switch (p.operation) {
        case 'user.add':
          return { ...(await directory.addPerson(String(p.name), p.role as Role, by)) };
        case 'user.role':
          return { ...(await directory.setRole(String(p.name), p.role as Role)) };
        case 'grant.add':
          return { ...(await directory.addGrant(String(p.person), p.grant as Grant, by)) };
        case 'grant.remove':
          await directory.removeGrant(String(p.id));
          return { removed: p.id };
        case 'policy.rows.set':
          return {
            ...(await directory.setRowFilter(String(p.table), p.principal as Principal, String(p.predicate), by)),
          };
        case 'policy.rows.remove':
          await directory.removeRowFilter(String(p.table), p.principal as Principal);
          return { removed: p.table };
        case 'policy.masks.set':
          return { maskKind: (await directory.setMaskKind(p.kind as MaskKind)).maskKind };
        default:
          throw invalid(`approval ${approval.id}: unknown grant operation '${String(p.operation)}'`);
      }
    },
  };
}
