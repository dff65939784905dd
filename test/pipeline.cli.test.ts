import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { Lake } from '../shared/lake/Lake.js';
import { PipelineRunner } from '../shared/pipeline/run/index.js';
import { airlock, lakeState, tempDir } from './support/cli.js';

const ML = join(import.meta.dirname, 'fixtures', 'pipelines', 'ml');
const BIN = join(import.meta.dirname, '..', 'bin', 'airlock.mjs');

/** A lake with raw.events (ids 1..20) on branch dev; returns its --lake args. */
async function lakeWithEvents(): Promise<string[]> {
  const dir = tempDir('airlock-run-cli-');
  const lake = ['--lake', join(dir, 'lake')];
  const csv = join(dir, 'events.csv');
  writeFileSync(csv, `id,amount\n${Array.from({ length: 20 }, (_, i) => `${i + 1},${i + 1}.5`).join('\n')}\n`);
  expect((await airlock(['init', ...lake])).code).toBe(0);
  expect((await airlock(['branch', 'create', 'dev', ...lake])).code).toBe(0);
  expect((await airlock(['table', 'import', 'raw.events', csv, '--branch', 'dev', ...lake])).code).toBe(0);
  return lake;
}

/** The id of a run that is still running and whose first.sql step succeeded (read in-process). */
async function runningPastFirstStep(dir: string): Promise<string | undefined> {
  const lake = await Lake.open({ backend: 'local', dir });
  try {
    const runs = await new PipelineRunner({
      catalog: lake.catalog,
      store: lake.stores.store,
      objects: lake.stores.objects,
      stagingDir: lake.stores.stagingDir,
    }).list();
    return runs.find(
      (r) => r.status === 'running' && r.steps.some((s) => s.name === 'first.sql' && s.status === 'succeeded'),
    )?.runId;
  } finally {
    await lake.close();
  }
}

describe('airlock run / runs (CLI contract)', { timeout: 240_000 }, () => {
  let lake: string[];
  beforeAll(async () => {
    lake = await lakeWithEvents();
  }, 120_000);

  it('run --json prints {runId, status, branch, runBranch}; runs list and runs show report it', async () => {
    const r = await airlock(['run', ML, '--branch', 'dev', '--param', 'tag=cli', '--json', ...lake]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ status: 'succeeded', branch: 'dev', published: true });
    expect(r.json.runBranch).toBe(`run/${r.json.runId}`);
    expect(r.json.runId).toMatch(/^\d{8}-\d{6}-[0-9a-f]{6}$/);
    const list = await airlock(['runs', 'list', '--json', ...lake]);
    expect(list.json[0]).toMatchObject({ runId: r.json.runId, status: 'succeeded' });
    const show = await airlock(['runs', 'show', r.json.runId, ...lake]);
    expect(show.stdout).toContain('validate.sql → ml.validate');
    expect(show.stdout).toContain('published to dev');
    const q = await airlock([
      'query',
      "SELECT count(*) AS n FROM ml.train WHERE run_tag = 'cli'",
      '--ref',
      'dev',
      '--json',
      ...lake,
    ]);
    expect(q.json.rows).toEqual([{ n: 16 }]);
  });

  it('a failed run exits 1 with status failed and leaves the branch untouched', async () => {
    const dir = tempDir('airlock-lake-');
    const before = await lakeState(lake[1] as string);
    const r = await airlock(
      ['run', ML, '--branch', 'dev', '--param', 'tag=x', '--param', 'fail=true', '--json', ...lake],
      {
        cwd: dir,
      },
    );
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ status: 'failed', branch: 'dev', error: { step: 'train.mjs' } });
    const after = (await lakeState(lake[1] as string)) as { heads: string[][] };
    expect(after.heads.find(([b]) => b === 'dev')).toEqual(
      (before as { heads: string[][] }).heads.find(([b]) => b === 'dev'),
    );
    const show = await airlock(['runs', 'show', r.json.runId, ...lake]);
    expect(show.stdout).toMatch(/✗ train\.mjs → ml\.train {2}step_error: .*boom/);
  });

  it('refuses bad usage with exit 2 and unknown runs with a clear error', async () => {
    const noBranch = await airlock(['run', ML, '--json', ...lake]);
    expect(noBranch.code).toBe(2);
    expect(noBranch.json.error.message).toMatch(/--branch/);
    expect((await airlock(['run', ML, '--branch', 'dev', '--isolation', 'bogus', ...lake])).code).toBe(2);
    const badParam = await airlock(['run', ML, '--branch', 'dev', '--param', 'novalue', '--json', ...lake]);
    expect(badParam.code).toBe(2);
    expect(badParam.json.error.message).toMatch(/name=value/);
    const unknown = await airlock(['run', 'resume', 'nope', '--json', ...lake]);
    expect(unknown.code).toBe(1);
    expect(unknown.json.error).toMatchObject({ code: 'NOT_FOUND' });
    expect((await airlock(['runs', 'show', 'nope', ...lake])).stderr).toMatch(/unknown run 'nope'/);
  });

  it('two runs started at the same moment by two processes: exit 0 and exit 3, never a mix of outputs', async () => {
    const [a, b] = await Promise.all([
      airlock(['run', ML, '--branch', 'dev', '--param', 'tag=p1', '--json', ...lake]),
      airlock(['run', ML, '--branch', 'dev', '--param', 'tag=p2', '--json', ...lake]),
    ]);
    expect([a.code, b.code].sort()).toEqual([0, 3]);
    expect([a.json.status, b.json.status].sort()).toEqual(['conflict', 'succeeded']);
    const winner = a.code === 0 ? 'p1' : 'p2';
    const q = await airlock([
      'query',
      'SELECT (SELECT min(run_tag) FROM ml.validate) AS v, (SELECT max(run_tag) FROM ml.train) AS t',
      '--ref',
      'dev',
      '--json',
      ...lake,
    ]);
    expect(q.json.rows).toEqual([{ v: winner, t: winner }]);
  });

  it('a run killed with SIGKILL mid-run leaves the branch untouched; run resume finishes only the unfinished step', async () => {
    const pipe = tempDir('airlock-pipe-');
    writeFileSync(join(pipe, 'first.sql'), '-- output: ml.first\nSELECT id, amount FROM raw.events');
    writeFileSync(
      join(pipe, 'slow.mjs'),
      `export default { output: 'ml.slow', inputs: { f: 'ml.first' },
        run({ f }) { const end = Date.now() + 15000; while (Date.now() < end) {} return f; } };`,
    );
    mkdirSync(join(pipe, 'unused'), { recursive: true });
    const before = (await lakeState(lake[1] as string)) as { heads: string[][] };
    const child = spawn(process.execPath, [BIN, 'run', pipe, '--branch', 'dev', '--json', ...lake], {
      stdio: 'ignore',
      detached: true,
    });
    // Wait until the first step has committed on the run branch, then kill the whole process group.
    let runId: string | undefined;
    for (let i = 0; i < 600 && !runId; i++) {
      await sleep(100);
      runId = await runningPastFirstStep(lake[1] as string);
    }
    expect(runId, 'the run reached its second step').toBeDefined();
    process.kill(-(child.pid as number), 'SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));

    const after = (await lakeState(lake[1] as string)) as { heads: string[][] };
    expect(after.heads.find(([b]) => b === 'dev')).toEqual(before.heads.find(([b]) => b === 'dev'));
    const shown = await airlock(['runs', 'show', runId as string, '--json', ...lake]);
    expect(shown.json.status).toBe('running');

    const resumed = await airlock(['run', 'resume', runId as string, ...lake]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('… slow.mjs');
    expect(resumed.stderr).not.toContain('… first.sql');
    const final = await airlock(['runs', 'show', runId as string, '--json', ...lake]);
    expect(final.json).toMatchObject({ status: 'succeeded', published: true, attempts: 2 });
    const q = await airlock(['query', 'SELECT count(*) AS n FROM ml.slow', '--ref', 'dev', '--json', ...lake]);
    expect(q.json.rows).toEqual([{ n: 20 }]);
  });
});

describe('airlock demo', { timeout: 240_000 }, () => {
  it('tells the whole story: an agent acting for a person, approvals, two concurrent pipeline runs where main shows both outputs of the first, the audit trail', async () => {
    const dir = join(tempDir('airlock-demo-test-'), 'lake');
    const r = await airlock(['demo', '--json', '--lake', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.steps).toContain('pipeline-runs');
    const statuses = (r.json.runs as Array<{ status: string; agent: string }>).map((x) => [x.agent, x.status]);
    // Agents' runs into the protected main wait for a person; ann approved the first one's publish.
    expect(statuses).toEqual([
      ['agent-a', 'awaiting_approval'],
      ['agent-b', 'failed'],
    ]);
    expect(r.json.approvals).toEqual([
      expect.objectContaining({ action: 'merge', status: 'executed' }),
      expect.objectContaining({ action: 'run', status: 'executed' }),
    ]);
    expect(r.json.audit.ok).toBe(true);
    expect(r.json.audit.entries).toBeGreaterThan(20);
    const verify = await airlock(['audit', 'verify', '--json', '--lake', dir]);
    expect(verify.code, verify.stderr).toBe(0);
    const q = await airlock([
      'query',
      'SELECT (SELECT min(made_by) FROM report.by_country) AS a, (SELECT max(made_by) FROM report.top) AS b',
      '--json',
      '--lake',
      dir,
    ]);
    expect(q.json.rows).toEqual([{ a: 'agent-a', b: 'agent-a' }]);
  });
});

describe('airlock policy imports', { timeout: 240_000 }, () => {
  it("denies a package by name for the lake's pipelines; a run importing it is refused before it runs, naming the import", async () => {
    const lake = await lakeWithEvents();
    const pipe = tempDir('airlock-pipe-');
    mkdirSync(join(pipe, 'node_modules', 'tiny-pad'), { recursive: true });
    writeFileSync(
      join(pipe, 'node_modules', 'tiny-pad', 'package.json'),
      '{"name":"tiny-pad","type":"module","main":"index.js"}',
    );
    writeFileSync(
      join(pipe, 'node_modules', 'tiny-pad', 'index.js'),
      "export default (s) => String(s).padStart(4, '0');",
    );
    writeFileSync(
      join(pipe, 'pad.mjs'),
      "import pad from 'tiny-pad';\nexport default { output: 'ml.pad', inputs: { e: 'raw.events' }, run({ e }) { return e.toArray().map((r) => ({ id: pad(r.id) })); } };",
    );
    const shown = await airlock(['policy', 'imports', '--json', ...lake]);
    expect(shown.json.deny.packages).toEqual([]);
    expect(shown.json.deny.builtins).toContain('child_process');
    const set = await airlock(['policy', 'imports', '--deny-package', 'tiny-pad', '--json', ...lake]);
    expect(set.json).toMatchObject({ changed: true, deny: { packages: ['tiny-pad'] } });
    const refused = await airlock(['run', pipe, '--branch', 'dev', '--json', ...lake]);
    expect(refused.code).toBe(4);
    expect(refused.json.error.message).toMatch(/tiny-pad/);
    expect((await airlock(['runs', 'list', '--json', ...lake])).json).toEqual([]);
    expect((await airlock(['policy', 'imports', '--deny-builtin', 'nosuch', ...lake])).code).toBe(2);
    expect(
      (await airlock(['policy', 'imports', '--allow-package', 'tiny-pad', '--json', ...lake])).json.deny.packages,
    ).toEqual([]);
    const ran = await airlock(['run', pipe, '--branch', 'dev', '--json', ...lake]);
    expect(ran.json.status).toBe('succeeded');
  });
});
