import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Lake } from '../shared/lake/Lake.js';
import { airlock, tempDir } from './support/cli.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'airlock.mjs');

/** Every data file referenced by any table version of any live branch exists. */
async function referencedFilesExist(dir: string): Promise<{ referenced: number; missing: string[] }> {
  const lake = await Lake.open({ backend: 'local', dir });
  try {
    const missing: string[] = [];
    let referenced = 0;
    for (const branch of await lake.catalog.listBranches()) {
      const snapshot = await lake.catalog.snapshot(branch.head);
      for (const { version } of snapshot.tables.values()) {
        for (const file of version.files) {
          referenced++;
          if (!existsSync(join(dir, 'objects', ...file.key.split('/')))) missing.push(file.key);
        }
      }
    }
    return { referenced, missing };
  } finally {
    await lake.close();
  }
}

describe('crash safety', () => {
  it('an import killed with SIGKILL at any moment leaves no reference to a missing file', async () => {
    const dir = join(tempDir(), 'lake');
    await airlock(['init', '--lake', dir]);
    await airlock(['branch', 'create', 'dev', '--lake', dir]);
    const csv = join(tempDir(), 'big.csv');
    const lines = ['id,name,amount'];
    for (let i = 0; i < 200_000; i++) lines.push(`${i},name-${i},${i / 10}`);
    writeFileSync(csv, `${lines.join('\n')}\n`);
    const delays = [150, 400, 800, 1200, 1800, 2600, 3500, 5000];
    let finished = 0;
    for (const delay of delays) {
      const child = spawn(
        process.execPath,
        [BIN, 'table', 'import', 'raw.big', csv, '--branch', 'dev', '--lake', dir],
        {
          stdio: 'ignore',
        },
      );
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const code = await exited;
      clearTimeout(timer);
      if (code === 0) finished++;
      const { missing } = await referencedFilesExist(dir);
      expect(missing).toEqual([]);
    }
    console.log(
      `${delays.length} imports killed at ${delays.join(', ')} ms: ${finished} finished first; no dangling reference`,
    );
    // The lake still works after the crashes: every import that finished is there, and every
    // import whose commit landed is there whole (a process may be killed after its commit,
    // before it exits: it then counts as landed, not finished). Nothing is half-imported.
    const log = await airlock(['log', 'dev', '--json', '--lake', dir]);
    const landed = (log.json as Array<{ message: string }>).filter((c) =>
      c.message.startsWith('Append raw.big'),
    ).length;
    expect(landed).toBeGreaterThanOrEqual(finished);
    const r = await airlock(['query', 'SELECT count(*) AS n FROM raw.big', '--ref', 'dev', '--json', '--lake', dir]);
    if (landed > 0) expect(r.json.rows).toEqual([{ n: landed * 200_000 }]);
    else expect(r.json.error.code).toBe('INVALID');
  }, 300_000);
});
