import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { Actor } from '../catalog/index.js';
import { exportRows } from '../data/exportTable.js';
import { conflict, invalid } from '../errors/index.js';
import type { Lake } from '../lake/Lake.js';

/** An approval as the export executor reads it (the approvals service's `Approval`, structurally). */
interface ExportApproval {
  id: string;
  params: Record<string, unknown>;
  binding: Record<string, string>;
  requester: Actor;
}

/** The formats an approved export may be written in (by the requested file's extension). */
const FORMATS = new Set(['csv', 'parquet', 'json', 'jsonl', 'ndjson']);

/** The format of an export file name (`csv` of `out.csv`); INVALID for any other extension. */
export function exportFormat(file: string): string {
  const format = extname(file).slice(1).toLowerCase();
  if (!FORMATS.has(format))
    throw invalid(`cannot export to '${file}': use a .csv, .parquet, .json or .jsonl file name`);
  return format;
}

/** Where an approved export is kept in the lake's object store. */
export function exportKey(approvalId: string, table: string, format: string): string {
  return `exports/${approvalId}/${table}.${format}`;
}

const manifestKey = (approvalId: string) => `exports/${approvalId}/manifest.json`;

/** The bound parts of an export approval (a damaged binding is an error, never "nothing moved"). */
function bound(approval: ExportApproval) {
  const { table, ref, version } = approval.binding;
  const commit = approval.params.commit;
  const format = approval.params.format;
  if (!table || !ref || !version || typeof commit !== 'string' || typeof format !== 'string' || !FORMATS.has(format)) {
    throw invalid(`approval ${approval.id} is not an export binding (needs table, ref, version, commit and format)`);
  }
  return { table, ref, version, commit, format };
}

/**
 * Executes approved exports. What was approved is the raw table (no masks, no row filter)
 * at the bound table version: it is written once to the object store under
 * `exports/<approvalId>/<table>.<format>`, with a small manifest beside it recording rows
 * and bytes, from which the requester downloads it (`airlock table export … --approval`).
 * The approval is void when the table's version at the bound ref moved. Register it on
 * the approvals service as the `export` executor.
 *
 * @example
 * approvals.register('export', exportExecutor(lake));
 */
export function exportExecutor(lake: Lake) {
  const objects = lake.stores.objects;
  const findExecuted = async (approval: ExportApproval): Promise<Record<string, unknown> | undefined> => {
    const b = bound(approval);
    if (!(await objects.head(manifestKey(approval.id)))) return undefined;
    const manifest = JSON.parse(Buffer.from(await objects.get(manifestKey(approval.id))).toString('utf8'));
    return { ...(manifest as Record<string, unknown>), table: b.table, version: b.version };
  };
  const moved = async (approval: ExportApproval): Promise<string[]> => {
    const b = bound(approval);
    const now = await lake.catalog.getTable(b.ref, b.table).then(
      (t) => t.id,
      () => undefined,
    );
    if (now === b.version) return [];
    return [
      now === undefined
        ? `table '${b.table}' no longer exists at '${b.ref}' (it was at version ${b.version.slice(0, 12)})`
        : `table '${b.table}' at '${b.ref}' moved from version ${b.version.slice(0, 12)} to ${now.slice(0, 12)}`,
    ];
  };
  return {
    moved,
    findExecuted,
    async execute(approval: ExportApproval, _approver: Actor): Promise<Record<string, unknown>> {
      const b = bound(approval);
      const done = await findExecuted(approval);
      if (done) return done;
      const why = await moved(approval);
      if (why.length > 0) throw conflict(why.join('; '), { approval: approval.id });
      // The bound commit holds exactly the bound version (checked above against the ref).
      const { id, version } = await lake.catalog.getTable(b.commit, b.table);
      if (id !== b.version) throw conflict(`commit ${b.commit.slice(0, 12)} does not hold version ${b.version}`);
      const dir = await mkdtemp(join(tmpdir(), 'airlock-export-'));
      try {
        const file = join(dir, `${b.table}.${b.format}`);
        const paths = await Promise.all(version.files.map((f) => objects.localPath(f.key)));
        const rows = await exportRows(version, paths, file);
        const bytes = (await stat(file)).size;
        const key = exportKey(approval.id, b.table, b.format);
        await objects.putFile(key, file);
        const result = { key, rows, bytes, format: b.format };
        // Written last: its presence says the export object is complete.
        await objects.put(manifestKey(approval.id), Buffer.from(JSON.stringify(result)));
        return { ...result, table: b.table, version: b.version };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
