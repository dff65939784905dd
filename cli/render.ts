import type { BranchInfo, Commit, MergeResult, TableDiff, TableInfo, TableVersion } from '../shared/catalog/index.js';

/** Renders rows as an aligned text table. */
export function textTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

export const short = (id: string | null | undefined) => (id ? id.slice(0, 12) : '-');

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function renderBranches(branches: BranchInfo[]): string {
  return textTable(
    ['BRANCH', 'HEAD', 'PROTECTED', 'UPDATED'],
    branches.map((b) => [b.name, short(b.head), b.protected ? 'yes' : '', b.updated]),
  );
}

export function renderTables(tables: TableInfo[]): string {
  if (tables.length === 0) return '(no tables)';
  return textTable(
    ['TABLE', 'ROWS', 'SIZE', 'FILES', 'VERSION'],
    tables.map((t) => [t.name, t.rowCount, formatBytes(t.bytes), t.files, short(t.version)]),
  );
}

export function renderTable(name: string, id: string, tv: TableVersion): string {
  const lines = [
    `table    ${name}`,
    `version  ${id}`,
    `rows     ${tv.rowCount}`,
    `size     ${formatBytes(tv.bytes)} in ${tv.files.length} file${tv.files.length === 1 ? '' : 's'}`,
  ];
  if (tv.constraints.unique.length > 0) lines.push(`unique   (${tv.constraints.unique.join(', ')})`);
  lines.push(
    '',
    textTable(
      ['COLUMN', 'TYPE', 'NULLABLE', 'TAGS'],
      tv.schema.fields.map((f) => [f.name, f.type, f.nullable ? 'yes' : 'no', f.tags.join(',')]),
    ),
  );
  return lines.join('\n');
}

export function renderLog(commits: Commit[]): string {
  return commits
    .map((c) => {
      const who = c.agent ? `${c.author} (agent ${c.agent})` : c.author;
      const kind = c.kind === 'commit' ? '' : ` [${c.kind}]`;
      return `commit ${c.id}${kind}\nAuthor: ${who}\nDate:   ${c.time}${c.runId ? `\nRun:    ${c.runId}` : ''}\n\n    ${c.message}\n`;
    })
    .join('\n');
}

export function renderDiff(diff: TableDiff[]): string {
  if (diff.length === 0) return 'no differences';
  return diff
    .map((d) => {
      const sign = d.status === 'added' ? '+' : d.status === 'removed' ? '-' : '~';
      const rows = `+${d.rowsAdded} -${d.rowsRemoved} rows`;
      const schema = d.schemaChanges.length
        ? `; schema: ${d.schemaChanges.map((c) => `${c.change} ${c.column}${c.to ? ` ${c.to}` : ''}`).join(', ')}`
        : '';
      return `${sign} ${d.table.padEnd(24)} ${d.status.padEnd(8)} ${rows}${schema}`;
    })
    .join('\n');
}

export function renderMerge(m: MergeResult): string {
  const what = m.dryRun ? 'Would' : '';
  switch (m.status) {
    case 'up-to-date':
      return `'${m.target}' already contains ${short(m.sourceCommit)} from '${m.source}': nothing to merge`;
    case 'conflict':
      return [
        `${m.dryRun ? 'Merge would conflict' : 'Merge conflicts'}: '${m.source}' into '${m.target}'`,
        ...m.conflicts.map((c) => `  ${c.table}: ${c.reason}`),
      ].join('\n');
    case 'fast-forward':
      return `${what ? 'Would fast-forward' : 'Fast-forwarded'} '${m.target}' ${short(m.targetHead)} → ${short(m.sourceCommit)}\n${renderDiff(m.changes)}`;
    case 'merged':
      return `${what ? 'Would merge' : 'Merged'} '${m.source}' into '${m.target}'${m.commit ? ` as ${short(m.commit)}` : ''}\n${renderDiff(m.changes)}`;
  }
}
