import type { Actor } from '../catalog/index.js';
import { conflict, invalid } from '../errors/index.js';
import type { Lake } from '../lake/Lake.js';

/** An approval as the unmask executor reads it (the approvals service's `Approval`, structurally). */
interface UnmaskApproval {
  id: string;
  params: Record<string, unknown>;
  binding: Record<string, string>;
  requester: Actor;
}

function bound(approval: UnmaskApproval) {
  const { table, ref, version } = approval.binding;
  const columns = approval.params.columns;
  if (!table || !ref || !version || !Array.isArray(columns) || columns.some((c) => typeof c !== 'string')) {
    throw invalid(`approval ${approval.id} is not an unmask binding (needs table, ref, version and columns)`);
  }
  return { table, branch: ref, version, columns: columns as string[] };
}

/**
 * Executes an approved removal of the `pii` tag (an agent's request through
 * `GuardedLake.tagColumns`): one schema commit on the bound branch, made as the requester,
 * only while the table is still at the bound version (void otherwise). Register it on the
 * approvals service as the `unmask` executor.
 *
 * @example
 * approvals.register('unmask', unmaskExecutor(lake));
 */
export function unmaskExecutor(lake: Lake) {
  const moved = async (approval: UnmaskApproval): Promise<string[]> => {
    const b = bound(approval);
    const now = await lake.catalog.getTable(b.branch, b.table).then(
      (t) => t.id,
      () => undefined,
    );
    if (now === b.version) return [];
    return [
      now === undefined
        ? `table '${b.table}' no longer exists on '${b.branch}'`
        : `table '${b.table}' on '${b.branch}' moved from version ${b.version.slice(0, 12)} to ${now.slice(0, 12)}`,
    ];
  };
  return {
    moved,
    /** The untag commit landed when the table's current version is its child and the columns carry no pii. */
    async findExecuted(approval: UnmaskApproval): Promise<Record<string, unknown> | undefined> {
      const b = bound(approval);
      const t = await lake.catalog.getTable(b.branch, b.table).catch(() => undefined);
      if (!t || t.version.parent !== b.version) return undefined;
      const tagged = t.version.schema.fields.filter((f) => b.columns.includes(f.name) && f.tags.includes('pii'));
      return tagged.length === 0 ? { table: b.table, branch: b.branch, version: t.id, recovered: true } : undefined;
    },
    async execute(approval: UnmaskApproval, _approver: Actor): Promise<Record<string, unknown>> {
      const b = bound(approval);
      const why = await moved(approval);
      if (why.length > 0) throw conflict(why.join('; '), { approval: approval.id });
      const { tagColumns } = await import('../doctor/tagColumns.js');
      const r = await tagColumns(lake.catalog, approval.requester, {
        branch: b.branch,
        table: b.table,
        columns: b.columns,
        tag: 'pii',
        remove: true,
      });
      return { table: b.table, branch: b.branch, commit: r.commit.id };
    },
  };
}
