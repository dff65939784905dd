import type { Actor, Catalog, TableDiff } from '../catalog/index.js';
import { conflict, invalid } from '../errors/index.js';
import type { Approval, ApprovalInput } from './model.js';
import { describeActor } from './model.js';
import type { ApprovalExecutor } from './Approvals.js';

/** How far back a target's first-parent history is searched for an unrecorded approved merge. */
const FIND_DEPTH = 500;

const short = (id: string) => id.slice(0, 12);

/** One line per changed table of a merge plan, e.g. `sales.orders changed: +120 rows, +1 files`. */
export function mergeDiffSummary(changes: readonly TableDiff[]): string {
  if (changes.length === 0) return 'no table changes';
  return changes
    .map((c) => {
      const parts = [`+${c.rowsAdded} -${c.rowsRemoved} rows`, `+${c.filesAdded} -${c.filesRemoved} files`];
      if (c.schemaChanges.length > 0) {
        parts.push(`schema: ${c.schemaChanges.map((s) => `${s.column} ${s.change}`).join(', ')}`);
      }
      return `${c.table} ${c.status}: ${parts.join(', ')}`;
    })
    .join('\n');
}

/**
 * The approval request of a merge: a dry run of merging `source` into `target`, bound to
 * the source commit and the target head it was planned against. CONFLICT when the merge
 * would conflict and INVALID when there is nothing to merge (no approval is worth asking).
 */
export async function prepareMergeApproval(
  catalog: Catalog,
  actor: Actor,
  source: string,
  target: string,
  message?: string,
): Promise<ApprovalInput> {
  const plan = await catalog.merge(source, target, {
    actor,
    message: message ?? `Merge ${source} into ${target}`,
    dryRun: true,
  });
  if (plan.status === 'conflict') {
    throw conflict(
      `merging '${source}' into '${target}' conflicts on ${plan.conflicts.map((c) => c.table).join(', ')}; resolve it before asking for approval`,
      { source, target, tables: plan.conflicts.map((c) => c.table) },
    );
  }
  if (plan.status === 'up-to-date') throw invalid(`'${target}' already contains '${source}': nothing to merge`);
  const tables = plan.changes.map((c) => c.table);
  return {
    action: 'merge',
    target,
    params: { source, message: message ?? `Merge ${source} into ${target}` },
    binding: { source, sourceCommit: plan.sourceCommit, target, targetHead: plan.targetHead },
    summary: `merge ${source} (${short(plan.sourceCommit)}) into ${target} (${short(plan.targetHead)}): ${tables.length} table${tables.length === 1 ? '' : 's'} changed${tables.length ? ` (${tables.join(', ')})` : ''}`,
    diff: { base: plan.base, changes: plan.changes },
  };
}

/** The bound sides of a merge approval (checked: a damaged binding is an error, never "nothing moved"). */
function bound(approval: Approval) {
  const { source, sourceCommit, target, targetHead } = approval.binding;
  if (!source || !sourceCommit || !target || !targetHead) {
    throw invalid(`approval ${approval.id} is not a merge binding (needs source, sourceCommit, target, targetHead)`);
  }
  return { source, sourceCommit, target, targetHead };
}

/**
 * Executes approved merges. The merge runs as the requester (author and agent of the
 * merge commit), says who approved it in its message, never fast-forwards (so the
 * approved merge is one recognisable commit with parents [bound head, bound source]), and
 * applies only while the target's head is still the bound head and the source still the
 * bound commit (`expect`, checked against the head the merge is conditional on).
 */
export function mergeExecutor(catalog: Catalog): ApprovalExecutor {
  return {
    async moved(approval) {
      const b = bound(approval);
      const out: string[] = [];
      const [source, target] = await Promise.all([
        catalog.resolve(b.source).then(
          (r) => r.commit.id,
          () => undefined,
        ),
        catalog.head(b.target).then(
          (h) => h.commit ?? undefined,
          () => undefined,
        ),
      ]);
      if (source !== b.sourceCommit) {
        out.push(
          source === undefined
            ? `source '${b.source}' no longer exists (it was at ${short(b.sourceCommit)})`
            : `source '${b.source}' moved from ${short(b.sourceCommit)} to ${short(source)}`,
        );
      }
      if (target !== b.targetHead) {
        out.push(
          target === undefined
            ? `target '${b.target}' no longer exists (it was at ${short(b.targetHead)})`
            : `target '${b.target}' moved from ${short(b.targetHead)} to ${short(target)}`,
        );
      }
      return out;
    },

    async execute(approval, approver) {
      const b = bound(approval);
      const message = typeof approval.params.message === 'string' ? approval.params.message : `Merge ${b.source}`;
      const result = await catalog.merge(b.source, b.target, {
        actor: approval.requester,
        message: `${message}\n\nApproved-by: ${describeActor(approver)} (approval ${approval.id})`,
        noFastForward: true,
        expect: { sourceCommit: b.sourceCommit, targetHead: b.targetHead },
      });
      return { status: result.status, commit: result.commit ?? null, target: b.target, sourceCommit: b.sourceCommit };
    },

    async findExecuted(approval) {
      const b = bound(approval);
      // The approved merge is the commit whose parents are exactly [bound head, bound
      // source]; it is on the target's first-parent history after the bound head.
      const history = await catalog.history(b.target, FIND_DEPTH).catch(() => []);
      for (const c of history) {
        if (c.id === b.targetHead) return undefined;
        if (c.parents[0] === b.targetHead && c.parents[1] === b.sourceCommit) {
          return { status: 'merged', commit: c.id, target: b.target, sourceCommit: b.sourceCommit, recovered: true };
        }
      }
      return undefined;
    },
  };
}
