import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { GuardedLake } from '../shared/auth/index.js';
import { createHttpApp } from '../shared/http/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { defaultSandboxPoolSize, LocalCodeStepExecutor } from '../shared/pipeline/run/index.js';
import { tempDir } from './support/cli.js';
import { liveSandboxes } from './support/sandboxes.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'airlock.mjs');

/** A lake with raw.events (ids 1..20) on dev, and a one-code-step pipeline folder. */
async function lakeAndPipeline(): Promise<{ lake: Lake; dir: string; pipelineDir: string }> {
  const dir = tempDir('airlock-serve-pool-');
  const { lake } = await Lake.init({ backend: 'local', dir: join(dir, 'lake') });
  await lake.catalog.createBranch('dev', 'main', { person: lake.owner });
  const csv = join(dir, 'events.csv');
  writeFileSync(csv, `id,amount\n${Array.from({ length: 20 }, (_, i) => `${i + 1},${i + 1}.5`).join('\n')}\n`);
  await lake.importTable({ person: lake.owner }, { table: 'raw.events', file: csv, branch: 'dev' });
  const pipelineDir = join(dir, 'pipe');
  mkdirSync(pipelineDir);
  writeFileSync(
    join(pipelineDir, 'copy.mjs'),
    "export default { output: 'ml.copy', inputs: { e: 'raw.events' }, run({ e }) { return e; } };",
  );
  return { lake, dir, pipelineDir };
}

/** The sandbox processes a process (not this one) spawned that still run. */
async function sandboxesOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const t of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    for (const k of text.split(' ').filter((x) => x.trim())) {
      const cmd = await readFile(`/proc/${k}/cmdline`, 'utf8').catch(() => '');
      if (cmd.includes('airlock-step-')) out.push(Number(k));
    }
  }
  return out.sort((a, b) => a - b);
}

describe('the pool in a long-lived process', { timeout: 240_000 }, () => {
  it("runs through the HTTP app's guard take pooled processes from the one executor, and close() leaves none", async () => {
    const { lake, pipelineDir } = await lakeAndPipeline();
    // The limits runs through the HTTP API get: the defaults.
    const executor = new LocalCodeStepExecutor({ pool: { size: 2, limits: {} } });
    const pool = executor.sandboxPool;
    try {
      const guard = new GuardedLake(lake, { executor });
      const owner = { person: lake.owner };
      const app = createHttpApp({ lake, actorFor: () => owner, pipelines: { allowLocalPaths: true, runs: guard } });
      for (const branch of ['a', 'b']) {
        await lake.catalog.createBranch(branch, 'dev', owner);
        await pool?.ready();
        const res = await app.request('/v1/runs', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ pipeline: { path: pipelineDir }, branch }),
        });
        expect(res.status).toBe(200);
        expect(((await res.json()) as { status: string }).status).toBe('succeeded');
      }
      expect(pool?.stats).toMatchObject({ acquired: 2, pooled: 2, spawnedOnDemand: 0 });
      expect((await lake.catalog.getTable('b', 'ml.copy')).version.rowCount).toBe(20);
    } finally {
      await executor.close();
      await lake.close();
    }
    expect(pool?.idleCount).toBe(0);
    expect(await liveSandboxes()).toEqual([]);
  });

  it('airlock serve keeps a pool of ready processes and kills them when it stops', async () => {
    const { lake, dir } = await lakeAndPipeline();
    await lake.close();
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--lake', join(dir, 'lake')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await vi.waitFor(() => expect(stderr).toContain('Airlock HTTP API on'), { timeout: 60_000, interval: 100 });
      const pid = child.pid as number;
      // The pool fills to its default size in the background, one process after another.
      await vi.waitFor(async () => expect((await sandboxesOf(pid)).length).toBe(defaultSandboxPoolSize()), {
        timeout: 120_000,
        interval: 200,
      });
      const waiting = await sandboxesOf(pid);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await vi.waitFor(() => expect(waiting.filter((p) => existsSync(`/proc/${p}`))).toEqual([]), {
        timeout: 10_000,
        interval: 100,
      });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
