import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../shared/catalog/index.js';
import { Lake } from '../shared/lake/Lake.js';
import {
  type CodeStepExecutor,
  type CodeStepRequest,
  LocalCodeStepExecutor,
  PipelineRunner,
  type RunSummary,
  type StoredRunEvent,
} from '../shared/pipeline/run/index.js';
import { DEFAULT_DENY_POLICY } from '../shared/pipeline/sandbox/index.js';
import { tempDir } from './support/cli.js';
import { liveSandboxes } from './support/sandboxes.js';

const ML = join(import.meta.dirname, 'fixtures', 'pipelines', 'ml');
const alice: Actor = { person: 'alice' };
const LIMITS = { timeoutMs: 20_000, memoryMb: 256 };

/** A fresh lake with raw.events (ids 1..20) on branch dev. */
async function lakeWithEvents(): Promise<{ lake: Lake; dir: string; runner: PipelineRunner }> {
  const dir = tempDir('airlock-run-');
  const { lake } = await Lake.init({ backend: 'local', dir: join(dir, 'lake') });
  await lake.catalog.createBranch('dev', 'main', alice);
  const csv = join(dir, 'events.csv');
  writeFileSync(csv, `id,amount\n${Array.from({ length: 20 }, (_, i) => `${i + 1},${i + 1}.5`).join('\n')}\n`);
  await lake.importTable(alice, { table: 'raw.events', file: csv, branch: 'dev' });
  return { lake, dir, runner: runnerOf(lake) };
}

function runnerOf(lake: Lake): PipelineRunner {
  return new PipelineRunner({
    catalog: lake.catalog,
    store: lake.stores.store,
    objects: lake.stores.objects,
    stagingDir: lake.stores.stagingDir,
  });
}

/** A pipeline folder holding the given files. */
function pipeline(files: Record<string, string>, base?: string): string {
  const dir = tempDir('airlock-pipe-');
  if (base) cpSync(base, dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

async function scalar(lake: Lake, sql: string, ref: string): Promise<unknown> {
  const r = await lake.query(alice, { sql, ref });
  return Object.values(r.rows[0] ?? {})[0];
}

async function headOf(lake: Lake, branch: string): Promise<string> {
  return (await lake.catalog.head(branch)).commit as string;
}

describe('a pipeline run', { timeout: 240_000 }, () => {
  let lake: Lake;
  let runner: PipelineRunner;
  beforeAll(async () => {
    ({ lake, runner } = await lakeWithEvents());
  });
  afterAll(async () => lake?.close());

  it('executes the DAG on run/<id>, commits each output after its expectations, and publishes both in one merge', async () => {
    const before = await headOf(lake, 'dev');
    const events: StoredRunEvent[] = [];
    const run = await runner.start(
      alice,
      { pipelineDir: ML, branch: 'dev', params: { tag: 'r1' } },
      { limits: LIMITS, onEvent: (e) => events.push(e) },
    );
    expect(run.status).toBe('succeeded');
    expect(run.runBranch).toBe(`run/${run.runId}`);
    expect(run.published).toBe(true);
    expect(run.steps.map((s) => [s.name, s.status, s.rows])).toEqual([
      ['validate.sql', 'succeeded', 4],
      ['train.mjs', 'succeeded', 16],
    ]);
    // DAG order: validate finished before train started.
    const order = events.map((e) => `${e.type}:${'step' in e ? e.step : ''}`);
    expect(order.indexOf('step-succeeded:validate.sql')).toBeLessThan(order.indexOf('step-started:train.mjs'));
    // The step's own log line is kept with its event.
    expect(run.steps[1]?.logs.join('\n')).toContain('train: 20 events, 4 held out');
    // Both outputs are on dev, from this run.
    expect(await scalar(lake, "SELECT count(*) FROM ml.train WHERE run_tag = 'r1'", 'dev')).toBe(16);
    expect(await scalar(lake, "SELECT count(*) FROM ml.validate WHERE run_tag = 'r1'", 'dev')).toBe(4);
    // ONE merge commit on dev; its first parent is the state before the run (no intermediate state in dev's history).
    const head = await lake.catalog.docs.getCommit(await headOf(lake, 'dev'));
    expect(head.kind).toBe('merge');
    expect(head.runId).toBe(run.runId);
    expect(head.parents[0]).toBe(before);
    expect((await lake.catalog.resolve('dev~1')).commit.id).toBe(before);
    // The run branch is removed once published (restorable); the run is listed.
    expect((await lake.catalog.listBranches()).map((b) => b.name)).not.toContain(run.runBranch);
    expect((await runner.list()).map((r) => r.runId)).toContain(run.runId);
    // The run recorded what it read from dev.
    expect(Object.keys(run.reads)).toEqual(['raw.events']);
  });

  it('--dry-run executes every step and publishes nothing', async () => {
    const before = await headOf(lake, 'dev');
    const run = await runner.start(
      alice,
      { pipelineDir: ML, branch: 'dev', params: { tag: 'dry' }, dryRun: true },
      { limits: LIMITS },
    );
    expect(run).toMatchObject({ status: 'succeeded', published: false, dryRun: true, mergeStatus: 'merged' });
    expect(await headOf(lake, 'dev')).toBe(before);
    expect(await scalar(lake, "SELECT count(*) FROM ml.train WHERE run_tag = 'dry'", run.runBranch)).toBe(16);
  });

  it('fails on a step error: dev untouched, run branch kept with the finished step, runs show names the step and its logs', async () => {
    const before = await headOf(lake, 'dev');
    const dir = pipeline(
      {
        'train.mjs': `export default { output: 'ml.train', inputs: { v: 'ml.validate' },
          run({ v }) { console.log('about to fail with', v.numRows, 'rows'); throw new Error('model diverged'); } };`,
      },
      ML,
    );
    const run = await runner.start(
      alice,
      { pipelineDir: dir, branch: 'dev', params: { tag: 'bad' } },
      { limits: LIMITS },
    );
    expect(run.status).toBe('failed');
    expect(run.published).toBe(false);
    expect(run.error).toMatchObject({ step: 'train.mjs' });
    const failed = run.steps.find((s) => s.name === 'train.mjs');
    expect(failed?.error).toMatchObject({ reason: 'step_error' });
    expect(failed?.error?.message).toContain('model diverged');
    expect(failed?.logs.join('\n')).toContain('about to fail with 4 rows');
    expect(await headOf(lake, 'dev')).toBe(before);
    expect(await scalar(lake, "SELECT count(*) FROM ml.validate WHERE run_tag = 'bad'", run.runBranch)).toBe(4);
    expect(await runner.show(run.runId)).toEqual(run);

    // Fix the step and resume: only the unfinished step runs again, then everything publishes together.
    writeFileSync(
      join(dir, 'train.mjs'),
      `export default { output: 'ml.train', inputs: { v: 'ml.validate' }, run({ v }) { return v; } };`,
    );
    const events: StoredRunEvent[] = [];
    const resumed = await runner.resume(alice, run.runId, { limits: LIMITS, onEvent: (e) => events.push(e) });
    expect(resumed.status).toBe('succeeded');
    expect(resumed.attempts).toBe(2);
    expect(events.filter((e) => e.type === 'step-started').map((e) => (e as { step: string }).step)).toEqual([
      'train.mjs',
    ]);
    expect(await scalar(lake, "SELECT count(*) FROM ml.train WHERE run_tag = 'bad'", 'dev')).toBe(4);
    await expect(runner.resume(alice, run.runId)).rejects.toThrow(/already succeeded/);
  });

  it('fails when an expectation does not hold, naming it and what was found', async () => {
    const before = await headOf(lake, 'dev');
    const dir = pipeline({
      'big.sql': '-- output: ml.big\n-- expect: min_rows(1000), unique(k)\nSELECT id % 3 AS k FROM raw.events',
    });
    const run = await runner.start(alice, { pipelineDir: dir, branch: 'dev' }, { limits: LIMITS });
    expect(run.status).toBe('failed');
    const step = run.steps[0];
    expect(step?.error?.reason).toBe('expectation_failed');
    expect(step?.error?.message).toMatch(/min_rows\(1000\) \(20 rows\)/);
    expect(step?.error?.message).toMatch(/unique\(k\) \(3 duplicated keys/);
    expect(await headOf(lake, 'dev')).toBe(before);
  });

  it("checks a step's output against the target table's constraints", async () => {
    // ml.validate exists on dev with id NOT NULL (from the step's not_null expectation).
    const shown = await lake.catalog.getTable('dev', 'ml.validate');
    expect(shown.version.schema.fields.find((f) => f.name === 'id')?.nullable).toBe(false);
    const dir = pipeline({
      'validate.sql': '-- output: ml.validate\nSELECT CAST(NULL AS BIGINT) AS id, 1.5 AS amount, $tag AS run_tag',
    });
    const before = await headOf(lake, 'dev');
    const run = await runner.start(
      alice,
      { pipelineDir: dir, branch: 'dev', params: { tag: 'x' } },
      { limits: LIMITS },
    );
    expect(run.status).toBe('failed');
    expect(run.steps[0]?.error?.reason).toBe('schema_mismatch');
    expect(run.steps[0]?.error?.message).toMatch(/does not fit ml\.validate.*null/i);
    expect(await headOf(lake, 'dev')).toBe(before);
  });

  it('refuses a bad pipeline before anything runs, and records no run', async () => {
    const runsBefore = (await runner.list(100)).length;
    const before = await headOf(lake, 'dev');
    const cases: Array<[Record<string, string>, RegExp, Record<string, string>?]> = [
      [{}, /has no steps/],
      [
        { 'a.sql': '-- output: ml.x\nSELECT 1 AS id', 'b.sql': '-- output: ml.x\nSELECT 2 AS id' },
        /a\.sql and b\.sql both write ml\.x/,
      ],
      [
        { 'a.sql': '-- output: ml.a\nSELECT * FROM ml.b', 'b.sql': '-- output: ml.b\nSELECT * FROM ml.a' },
        /cycle: a\.sql → b\.sql → a\.sql/,
      ],
      [{ 'a.sql': '-- output: ml.a\nSELECT * FROM ml.a' }, /reads its own output/],
      [{ 'a.sql': '-- output: ml.a\nSELECT * FROM nope.missing' }, /nope\.missing, which does not exist on 'dev'/],
      [{ 'a.sql': '-- output: ml.a\nSELECT $day AS d' }, /uses \$day: pass --param day=…/],
      [{ 'a.sql': '-- output: ml.a\nDELETE FROM raw.events' }, /SELECT/],
      [
        { 'a.mjs': "import fs from 'node:fs';\nexport default { output: 'ml.a', inputs: {}, run() { return []; } };" },
        /fs/,
      ],
      [{ 'a.sql': '-- output: ml.a\nSELECT 1 AS x' }, /parameter names are identifiers/, { 'bad-name': '1' }],
    ];
    for (const [files, message, params] of cases) {
      await expect(
        runner.start(
          alice,
          { pipelineDir: pipeline(files), branch: 'dev', ...(params ? { params } : {}) },
          { limits: LIMITS },
        ),
        JSON.stringify(files),
      ).rejects.toThrow(message);
    }
    await expect(runner.start(alice, { pipelineDir: ML, branch: 'nope' })).rejects.toThrow(/unknown branch 'nope'/);
    await expect(runner.start(alice, { pipelineDir: '/no/such/dir', branch: 'dev' })).rejects.toThrow(/does not exist/);
    expect((await runner.list(100)).length).toBe(runsBefore);
    expect(await headOf(lake, 'dev')).toBe(before);
  });
});

describe('concurrent runs and isolation', { timeout: 240_000 }, () => {
  let lake: Lake;
  let runner: PipelineRunner;
  beforeAll(async () => {
    ({ lake, runner } = await lakeWithEvents());
  });
  afterAll(async () => lake?.close());

  it('two runs started together on one branch: one publishes both its outputs, the other conflicts; never a mix', async () => {
    const other = await Lake.open(lake.stores.location);
    try {
      const before = await headOf(lake, 'dev');
      const [a, b] = await Promise.all([
        runner.start(alice, { pipelineDir: ML, branch: 'dev', params: { tag: 'a' } }, { limits: LIMITS }),
        runnerOf(other).start(alice, { pipelineDir: ML, branch: 'dev', params: { tag: 'b' } }, { limits: LIMITS }),
      ]);
      const statuses = [a.status, b.status].sort();
      expect(statuses).toEqual(['conflict', 'succeeded']);
      const winner = a.status === 'succeeded' ? 'a' : 'b';
      const loser = a.status === 'succeeded' ? b : a;
      expect(loser.error?.tables?.sort()).toEqual(['ml.train', 'ml.validate']);
      expect(loser.published).toBe(false);
      const tags = await lake.query(alice, {
        sql: 'SELECT DISTINCT run_tag FROM ml.validate UNION ALL SELECT DISTINCT run_tag FROM ml.train',
        ref: 'dev',
      });
      expect(tags.rows.map((r) => r.run_tag)).toEqual([winner, winner]);
      const head = await lake.catalog.docs.getCommit(await headOf(lake, 'dev'));
      expect(head.parents[0]).toBe(before);
    } finally {
      await other.close();
    }
  });

  /** Runs the ML pipeline and, when its first step has committed, changes dev. */
  async function runWhileDevMoves(
    change: () => Promise<unknown>,
    isolation: 'snapshot' | 'serializable',
  ): Promise<RunSummary> {
    let moved: Promise<unknown> | undefined;
    const run = await runner.start(
      alice,
      { pipelineDir: ML, branch: 'dev', params: { tag: isolation }, isolation },
      {
        limits: LIMITS,
        onEvent: (e) => {
          if (e.type === 'step-succeeded' && e.step === 'validate.sql') moved = change();
        },
      },
    );
    await moved;
    return run;
  }

  it('merges three-way when the branch moved on other tables since the run began', async () => {
    const csv = join(tempDir(), 'x.csv');
    writeFileSync(csv, 'k\n1\n');
    const run = await runWhileDevMoves(
      () => lake.importTable(alice, { table: 'other.t', file: csv, branch: 'dev' }),
      'snapshot',
    );
    expect(run).toMatchObject({ status: 'succeeded', mergeStatus: 'merged' });
    expect(await scalar(lake, 'SELECT count(*) FROM other.t', 'dev')).toBe(1);
    expect(await scalar(lake, "SELECT count(*) FROM ml.train WHERE run_tag = 'snapshot'", 'dev')).toBe(16);
  });

  it('conflicts (status conflict, branch untouched) when the branch changed a table the run writes', async () => {
    let headAfterChange = '';
    const run = await runWhileDevMoves(async () => {
      const v = await lake.catalog.getTable('dev', 'ml.validate');
      await lake.catalog.commit(
        'dev',
        [{ kind: 'put', table: 'ml.validate', base: v.id, version: { ...v.version, op: 'overwrite' } }],
        {
          actor: alice,
          message: 'concurrent edit',
        },
      );
      headAfterChange = await headOf(lake, 'dev');
    }, 'snapshot');
    expect(run.status).toBe('conflict');
    expect(run.error?.tables).toEqual(['ml.validate']);
    expect(await headOf(lake, 'dev')).toBe(headAfterChange);
    expect((await lake.catalog.listBranches()).map((b) => b.name)).toContain(run.runBranch);
  });

  it('--isolation serializable also conflicts when a table the run only read changed; snapshot does not', async () => {
    const csv = join(tempDir(), 'more.csv');
    writeFileSync(csv, 'id,amount\n1000,1.0\n');
    const appendEvents = () => lake.importTable(alice, { table: 'raw.events', file: csv, branch: 'dev' });
    const serializable = await runWhileDevMoves(appendEvents, 'serializable');
    expect(serializable.status).toBe('conflict');
    expect(serializable.error?.tables).toEqual(['raw.events']);
    expect(serializable.error?.message).toMatch(/serializable/);
    const snapshot = await runWhileDevMoves(appendEvents, 'snapshot');
    expect(snapshot.status).toBe('succeeded');
  });
});

// Every attack runs twice: in a process spawned for the step, and in a ready process
// from a pool (bound to the step's bundle when the step starts).
describe.each([
  ['spawned for the step', false],
  ['from a pool of ready processes', true],
])('sandboxed steps inside a run, process %s', { timeout: 240_000 }, (_kind, pooled) => {
  let lake: Lake;
  let runner: PipelineRunner;
  let executor: LocalCodeStepExecutor | undefined;
  const secret = 'AKIA-TEST-SECRET-123';
  beforeAll(async () => {
    process.env.AIRLOCK_TEST_SECRET = secret;
    ({ lake, runner } = await lakeWithEvents());
    if (pooled) {
      executor = new LocalCodeStepExecutor({ pool: { size: 2, limits: { timeoutMs: 60_000, memoryMb: 128 } } });
      runner = new PipelineRunner(
        {
          catalog: lake.catalog,
          store: lake.stores.store,
          objects: lake.stores.objects,
          stagingDir: lake.stores.stagingDir,
        },
        executor,
      );
    }
    // Allow every import at bundle time, so each attack reaches the run-time layers.
    await runner.setPolicy({ deny: { packages: [], builtins: [] } });
  });
  afterAll(async () => {
    delete process.env.AIRLOCK_TEST_SECRET;
    await executor?.close();
    await lake?.close();
  });

  const attacks: Array<[string, string, RegExp]> = [
    [
      'reads /etc/passwd',
      "const fs = await import('node:fs'); return [{ x: fs.readFileSync('/etc/passwd', 'utf8') }];",
      /sandbox_violation|ERR_ACCESS_DENIED/,
    ],
    [
      'reads secrets from process.env',
      "const s = process.env.AIRLOCK_TEST_SECRET; if (!s) throw new Error('no secret visible'); return [{ s }];",
      /no secret visible/,
    ],
    [
      'spawns a process',
      "const cp = await import('node:child_process'); cp.execFileSync('/bin/true'); return [{ ok: true }];",
      /sandbox/,
    ],
    [
      'writes a file',
      "const fs = await import('node:fs'); fs.writeFileSync('/tmp/airlock-pwned', 'x'); return [{ ok: true }];",
      /sandbox/,
    ],
    [
      'opens a socket',
      "const net = await import('node:net'); await new Promise((res, rej) => { const s = net.connect(9, '1.1.1.1'); s.on('connect', res); s.on('error', rej); }); return [{ ok: true }];",
      /network|sandbox|ENETUNREACH|connect/,
    ],
    ['loops forever', 'for (;;) {}', /timed out/],
    [
      'allocates without bound',
      'const keep = []; for (;;) keep.push(new Array(100000).fill({ x: Math.random() }));',
      /memory/,
    ],
  ];

  it.each(attacks)(
    'a step that %s fails the run with a clear reason and changes nothing',
    async (_what, body, message) => {
      const before = await headOf(lake, 'dev');
      const dir = pipeline({
        'first.sql': '-- output: ml.first\nSELECT id FROM raw.events',
        'evil.mjs': `export default { output: 'ml.evil', inputs: { f: 'ml.first' }, async run() { ${body} } };`,
      });
      const run = await runner.start(
        alice,
        { pipelineDir: dir, branch: 'dev' },
        // Only the endless loop should meet the clock; a loaded machine must not turn the
        // memory bomb (V8 collects hard before giving up) into a timeout.
        { limits: { timeoutMs: /timed out/.test(message.source) ? 4_000 : 60_000, memoryMb: 128 } },
      );
      expect(run.status).toBe('failed');
      const evil = run.steps.find((s) => s.name === 'evil.mjs');
      expect(evil?.status).toBe('failed');
      expect(`${evil?.error?.reason}: ${evil?.error?.message}`).toMatch(message);
      expect(JSON.stringify(run)).not.toContain(secret);
      expect(await headOf(lake, 'dev')).toBe(before);
      const tables = (await lake.catalog.listTables('dev')).map((t) => t.name);
      expect(tables).not.toContain('ml.evil');
      expect(tables).not.toContain('ml.first');
      if (pooled) expect(executor?.sandboxPool?.idleCount).toBeLessThanOrEqual(2);
    },
  );

  it("refuses, before it runs, a step importing a package the lake's policy denies, naming the import", async () => {
    const dir = pipeline({
      'node_modules/tiny-pad/package.json': '{"name":"tiny-pad","version":"1.0.0","type":"module","main":"index.js"}',
      'node_modules/tiny-pad/index.js': "export default (s, n) => String(s).padStart(n, '0');",
      'pad.mjs':
        "import pad from 'tiny-pad';\nexport default { output: 'ml.pad', inputs: { e: 'raw.events' }, run({ e }) { return e.toArray().map((r) => ({ id: pad(r.id, 4) })); } };",
    });
    // Allowed: packages installed in the pipeline folder can be imported.
    const ok = await runner.start(alice, { pipelineDir: dir, branch: 'dev' }, { limits: LIMITS });
    expect(ok.status).toBe('succeeded');
    expect(await scalar(lake, 'SELECT min(id) FROM ml.pad', 'dev')).toBe('0001');
    // Denied by name: refused before anything runs, no run recorded.
    await runner.setPolicy({ deny: { packages: ['tiny-pad'], builtins: [...DEFAULT_DENY_POLICY.builtins] } });
    const count = (await runner.list(100)).length;
    await expect(runner.start(alice, { pipelineDir: dir, branch: 'dev' }, { limits: LIMITS })).rejects.toThrow(
      /tiny-pad/,
    );
    expect((await runner.list(100)).length).toBe(count);
    await runner.setPolicy({ deny: { packages: [], builtins: [] } });
  });
});

/** The local executor, recording when each step's sandbox starts, receives its inputs, ends and is disposed. */
class RecordingExecutor implements CodeStepExecutor {
  readonly events: string[] = [];
  private readonly inner = new LocalCodeStepExecutor();
  run(request: CodeStepRequest) {
    this.events.push(`cold:${basename(request.bundle.step)}`);
    return this.inner.run(request);
  }
  start(request: Pick<CodeStepRequest, 'bundle' | 'limits'>) {
    const name = basename(request.bundle.step);
    const events = this.events;
    events.push(`start:${name}`);
    const started = this.inner.start(request);
    return {
      async run(inputs: Record<string, Uint8Array>, params: Record<string, string>) {
        events.push(`send:${name}`);
        try {
          return await started.run(inputs, params);
        } finally {
          events.push(`done:${name}`);
        }
      },
      async dispose() {
        events.push(`dispose:${name}`);
        await started.dispose();
      },
    };
  }
}

describe('sandboxes started ahead of their steps', { timeout: 240_000 }, () => {
  const chain = (failFirst: boolean) =>
    pipeline({
      'a.mjs': `export default { output: 'chain.a', inputs: { e: 'raw.events' }, run({ e }) { ${failFirst ? "throw new Error('a failed');" : ''} return e; } };`,
      'b.mjs': "export default { output: 'chain.b', inputs: { a: 'chain.a' }, run({ a }) { return a; } };",
    });

  /** Runs the chain on a fresh lake through a recording executor. */
  async function recordedRun(failFirst: boolean): Promise<{ run: RunSummary; events: string[]; lake: Lake }> {
    const { lake } = await lakeWithEvents();
    const executor = new RecordingExecutor();
    const runner = new PipelineRunner(
      {
        catalog: lake.catalog,
        store: lake.stores.store,
        objects: lake.stores.objects,
        stagingDir: lake.stores.stagingDir,
      },
      executor,
    );
    const run = await runner.start(alice, { pipelineDir: chain(failFirst), branch: 'dev' }, { limits: LIMITS });
    return { run, events: executor.events, lake };
  }

  it("starts the next step's sandbox while the step before it runs, and hands it that step's inputs", async () => {
    const { run, events, lake } = await recordedRun(false);
    try {
      expect(run.status).toBe('succeeded');
      const at = (e: string) => events.indexOf(e);
      expect(at('start:b.mjs')).toBeGreaterThanOrEqual(0);
      expect(at('start:b.mjs')).toBeLessThan(at('done:a.mjs')); // warmed while a ran
      expect(at('send:b.mjs')).toBeGreaterThan(at('done:a.mjs'));
      expect(events.filter((e) => e.startsWith('cold:'))).toEqual([]);
      expect(events.filter((e) => e.startsWith('dispose:')).sort()).toEqual(['dispose:a.mjs', 'dispose:b.mjs']);
      expect(await scalar(lake, 'SELECT count(*) FROM chain.b', 'dev')).toBe(20);
    } finally {
      await lake.close();
    }
  });

  it('disposes a warmed sandbox that never ran when the run fails before its step', async () => {
    const { run, events, lake } = await recordedRun(true);
    try {
      expect(run.status).toBe('failed');
      expect(run.error?.message).toContain('a failed');
      expect(events).toContain('start:b.mjs');
      expect(events).not.toContain('send:b.mjs');
      expect(events).toContain('dispose:b.mjs');
    } finally {
      await lake.close();
    }
  });
});

describe('an executor keeping a pool across runs', { timeout: 240_000 }, () => {
  it('runs steps of successive runs in pooled processes, one step each, and close() leaves no process', async () => {
    const { lake } = await lakeWithEvents();
    const executor = new LocalCodeStepExecutor({ pool: { size: 2, limits: LIMITS } });
    const pool = executor.sandboxPool;
    try {
      const runner = new PipelineRunner(
        {
          catalog: lake.catalog,
          store: lake.stores.store,
          objects: lake.stores.objects,
          stagingDir: lake.stores.stagingDir,
        },
        executor,
      );
      const dir = pipeline({
        'a.mjs': "export default { output: 'pool.a', inputs: { e: 'raw.events' }, run({ e }) { return e; } };",
        'b.mjs': "export default { output: 'pool.b', inputs: { a: 'pool.a' }, run({ a }) { return a; } };",
      });
      const served = new Set<number>();
      for (let i = 0; i < 2; i++) {
        await pool?.ready();
        const waiting = pool?.idlePids() ?? [];
        expect(waiting.length).toBe(2);
        for (const pid of waiting) expect(served.has(pid)).toBe(false); // never a process that served a step
        const run = await runner.start(alice, { pipelineDir: dir, branch: 'dev' }, { limits: LIMITS });
        expect(run.status).toBe('succeeded');
        for (const pid of waiting) served.add(pid);
        // Both pooled processes were bound to the run's two steps and are gone.
        expect(pool?.idlePids().filter((p) => waiting.includes(p))).toEqual([]);
        expect(pool?.idleCount).toBeLessThanOrEqual(2);
      }
      expect(await scalar(lake, 'SELECT count(*) FROM pool.b', 'dev')).toBe(20);
    } finally {
      await executor.close();
      await lake.close();
    }
    expect(await liveSandboxes()).toEqual([]);
  });
});
