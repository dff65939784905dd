import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Float64, Int64, type Table, tableFromArrays } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isAirlockError } from '../shared/errors/index.js';
import {
  bundleStep,
  DEFAULT_DENY_POLICY,
  type DenyPolicy,
  deniedBy,
  detectIsolation,
  rowsToTable,
  runCodeStep,
  type PooledSandboxProcess,
  type SandboxFailureDetails,
  SandboxPool,
  type StepBundle,
  startCodeStep,
} from '../shared/pipeline/sandbox/index.js';
import { DEFAULT_SANDBOX_LIMITS, type SandboxLimits } from '../shared/pipeline/sandbox/runSandbox.js';
import { alive, liveSandboxes } from './support/sandboxes.js';

const FIXTURES = resolve('test/fixtures/pipelines/sandbox');
const NO_DENY: DenyPolicy = { packages: [], builtins: [] };
let cacheDir: string;
let scratch: string;

beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'airlock-test-bundles-'));
  scratch = await mkdtemp(join(tmpdir(), 'airlock-test-scratch-'));
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

function bundle(name: string, deny: DenyPolicy = DEFAULT_DENY_POLICY): Promise<StepBundle> {
  return bundleStep(join(FIXTURES, name), { pipelineDir: FIXTURES, deny, cacheDir });
}

/** Runs `fn`, expecting it to reject with an AirlockError; returns it for assertions. */
async function failure(fn: () => Promise<unknown>) {
  try {
    await fn();
  } catch (e) {
    if (!isAirlockError(e)) throw e;
    return {
      code: e.code,
      message: e.message,
      details: e.details as unknown as SandboxFailureDetails & Record<string, unknown>,
    };
  }
  throw new Error('expected a failure, but the call succeeded');
}

function events(n: number): Table {
  return tableFromArrays({
    id: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
    amount: Float64Array.from({ length: n }, (_, i) => i / 2),
  });
}

/** A loopback TCP server that counts the connections it accepts. */
async function countingServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((s) => {
    count++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, connections: () => count };
}

describe('sandbox: happy paths', () => {
  it('passes a few thousand rows through a step that returns its Arrow input', async () => {
    const input = events(5000);
    const result = await runCodeStep({ bundle: await bundle('passthrough.mjs'), inputs: { events: input } });
    expect(result.output.numRows).toBe(5000);
    expect(result.output.getChild('id')?.get(4999)).toBe(4999n);
    expect(result.output.getChild('amount')?.get(4999)).toBe(2499.5);
    expect(result.logs).toContain('rows in: 5000');
  });

  it('converts plain row objects to columns and passes params', async () => {
    const result = await runCodeStep({
      bundle: await bundle('rows.mjs'),
      inputs: { events: events(10) },
      params: { tag: 'nightly' },
    });
    expect(result.output.numRows).toBe(10);
    expect(String(result.output.schema.fields.map((f) => `${f.name}:${f.type}`))).toBe(
      'id:Int64,amount:Float64,tag:Utf8',
    );
    expect(result.output.getChild('amount')?.get(3)).toBe(3);
    expect(result.output.getChild('tag')?.get(9)).toBe('nightly');
  });

  it('runs a TypeScript step that imports apache-arrow itself', async () => {
    const result = await runCodeStep({ bundle: await bundle('arrow-import.ts'), inputs: {}, params: { n: '4' } });
    expect(result.output.getChild('k')?.toArray()).toEqual(Float64Array.from([0, 1, 2, 3]));
  });

  it('reuses a cached bundle when nothing changed', async () => {
    const first = await bundle('passthrough.mjs');
    const second = await bundle('passthrough.mjs');
    expect(second.cached).toBe(true);
    expect(second.file).toBe(first.file);
  });
});

describe('sandbox: step failures are reported with the step’s own words', () => {
  it('reports the thrown message, the stack head and the logs written before it', async () => {
    const f = await failure(async () =>
      runCodeStep({ bundle: await bundle('throws.mjs'), inputs: {}, params: { reason: 'bad input' } }),
    );
    expect(f.code).toBe('INVALID');
    expect(f.details.reason).toBe('step_error');
    expect(f.message).toContain('boom: bad input');
    expect(f.details.stack).toMatch(/explode/);
    expect(f.details.logs).toEqual(['about to fail', 'really']);
  });

  it('refuses a run() result that is not a table', async () => {
    const f = await failure(async () => runCodeStep({ bundle: await bundle('bad-return.mjs'), inputs: {} }));
    expect(f.code).toBe('INVALID');
    expect(f.message).toMatch(/must return an Arrow Table or an array of row objects, but returned number/);
  });
});

describe('sandbox: attacks', () => {
  it('refuses at bundle time a step that imports a denied built-in (fs), naming the import and file', async () => {
    const f = await failure(() => bundle('read-passwd.mjs'));
    expect(f.code).toBe('DENIED');
    expect(f.message).toContain("'node:fs'");
    expect(f.message).toContain('read-passwd.mjs');
  });

  it('stops a step reading /etc/passwd with the permission model when the deny list allows fs', async () => {
    const f = await failure(async () => runCodeStep({ bundle: await bundle('read-passwd.mjs', NO_DENY), inputs: {} }));
    expect(f.code).toBe('DENIED');
    expect(f.details.reason).toBe('sandbox_violation');
    expect(f.message).toContain('ERR_ACCESS_DENIED');
  });

  it('gives a step an empty environment, so a secret in the parent is invisible', async () => {
    process.env.AIRLOCK_SECRET_TEST = 'hunter2';
    try {
      const result = await runCodeStep({ bundle: await bundle('read-env.mjs'), inputs: {} });
      expect(result.output.getChild('secret')?.get(0)).toBeNull();
      expect(result.output.getChild('keys')?.get(0)).toBe(0);
    } finally {
      delete process.env.AIRLOCK_SECRET_TEST;
    }
  });

  it('refuses at bundle time a step that imports child_process', async () => {
    const f = await failure(() => bundle('spawn.mjs'));
    expect(f.code).toBe('DENIED');
    expect(f.message).toMatch(/imports 'node:child_process'.*spawn\.mjs/);
    expect(f.details.import).toBe('node:child_process');
  });

  it('stops a process spawn at run time when the deny list is empty, and no marker file appears', async () => {
    const marker = join(scratch, 'spawned');
    const f = await failure(async () =>
      runCodeStep({ bundle: await bundle('spawn.mjs', NO_DENY), inputs: {}, params: { marker } }),
    );
    expect(f.code).toBe('DENIED');
    expect(f.message).toContain('ERR_ACCESS_DENIED');
    expect(existsSync(marker)).toBe(false);
  });

  it('stops a spawn reached through a computed dynamic import, which the deny list cannot see', async () => {
    const marker = join(scratch, 'spawned-dynamic');
    const f = await failure(async () =>
      runCodeStep({ bundle: await bundle('spawn-dynamic.mjs'), inputs: {}, params: { marker } }),
    );
    expect(f.code).toBe('DENIED');
    expect(f.details.reason).toBe('sandbox_violation');
    expect(existsSync(marker)).toBe(false);
  });

  it('stops a file write, and the file does not exist afterwards', async () => {
    const path = join(scratch, 'written.txt');
    const f = await failure(async () =>
      runCodeStep({ bundle: await bundle('write-file.mjs', NO_DENY), inputs: {}, params: { path } }),
    );
    expect(f.code).toBe('DENIED');
    expect(f.message).toContain('ERR_ACCESS_DENIED');
    expect(existsSync(path)).toBe(false);
  });

  const networkIsolated = detectIsolation().network;

  it.runIf(networkIsolated)('gives a step no network: a TCP connect to a loopback server never arrives', async () => {
    const { server, port, connections } = await countingServer();
    try {
      const f = await failure(async () =>
        runCodeStep({ bundle: await bundle('socket.mjs', NO_DENY), inputs: {}, params: { port: String(port) } }),
      );
      expect(f.code).toBe('DENIED');
      expect(f.message).toMatch(/no network/);
      expect(connections()).toBe(0);
    } finally {
      server.close();
    }
  });

  it.runIf(networkIsolated)('gives a step no network: fetch (no import to deny) never reaches the server', async () => {
    const { server, port, connections } = await countingServer();
    try {
      const f = await failure(async () =>
        runCodeStep({ bundle: await bundle('fetch.mjs'), inputs: {}, params: { port: String(port) } }),
      );
      expect(f.code).toBe('DENIED');
      expect(f.message).toMatch(/no network/);
      expect(connections()).toBe(0);
    } finally {
      server.close();
    }
  });

  it('says in every result whether the network is isolated on this machine, and warns when it is not', async () => {
    const result = await runCodeStep({ bundle: await bundle('read-env.mjs'), inputs: {} });
    expect(result.isolation.network).toBe(networkIsolated);
    if (networkIsolated) expect(result.warnings.join(' ')).not.toMatch(/no network isolation/);
    else expect(result.warnings.join(' ')).toMatch(/no network isolation/);
  });

  it.runIf(detectIsolation().pid || detectIsolation().unprivilegedUser)(
    'cannot signal the parent process',
    async () => {
      const result = await runCodeStep({
        bundle: await bundle('signal-parent.mjs'),
        inputs: {},
        params: { pid: String(process.pid) },
      });
      expect(result.output.getChild('reachable')?.get(0)).toBe(false);
      expect(['ESRCH', 'EPERM']).toContain(result.output.getChild('code')?.get(0));
    },
  );

  it('kills a step that loops forever and says it timed out', async () => {
    const started = Date.now();
    const f = await failure(async () =>
      runCodeStep({ bundle: await bundle('loop.mjs'), inputs: {}, limits: { timeoutMs: 1500 } }),
    );
    expect(f.code).toBe('LIMIT_EXCEEDED');
    expect(f.details.reason).toBe('timeout');
    expect(f.message).toContain('timed out after 1500 ms');
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('stops a step that allocates JavaScript objects without bound', async () => {
    const f = await failure(async () =>
      runCodeStep({ bundle: await bundle('heap-bomb.mjs'), inputs: {}, limits: { memoryMb: 128, timeoutMs: 30_000 } }),
    );
    expect(f.code).toBe('LIMIT_EXCEEDED');
    expect(f.details.reason).toBe('memory');
    expect(f.message).toContain('exceeded memory limit (128 MB)');
  });

  it('stops a step that allocates ArrayBuffers (outside the V8 heap) without bound', async () => {
    const f = await failure(async () =>
      runCodeStep({
        bundle: await bundle('buffer-bomb.mjs'),
        inputs: {},
        limits: { memoryMb: 200, timeoutMs: 30_000 },
      }),
    );
    expect(f.code).toBe('LIMIT_EXCEEDED');
    expect(f.details.reason).toBe('memory');
    expect(f.message).toContain('exceeded memory limit (200 MB)');
  });

  it('refuses a step that imports a file from outside its pipeline folder', async () => {
    const f = await failure(() => bundle('outside-import.mjs'));
    expect(f.code).toBe('DENIED');
    expect(f.message).toMatch(/outside the pipeline folder/);
    expect(f.message).toContain('outside-import.mjs');
  });
});

describe('sandbox: a step started ahead of its inputs', () => {
  it('loads the module first and runs it when the inputs arrive, with the same output and logs', async () => {
    const step = startCodeStep(await bundle('top-level-log.mjs'));
    try {
      const r = await step.run({}, { who: 'early' });
      expect(r.output.getChild('greeting')?.get(0)).toBe('hello early');
      expect(r.logs).toEqual(['module loaded', 'run called']);
    } finally {
      await step.dispose();
    }
  });

  it('spends none of its time budget waiting for the inputs once loaded', async () => {
    const step = startCodeStep(await bundle('top-level-log.mjs'), { timeoutMs: 8000 });
    try {
      await new Promise((r) => setTimeout(r, 9000)); // longer than the budget
      const r = await step.run({}, { who: 'late' });
      expect(r.output.getChild('greeting')?.get(0)).toBe('hello late');
    } finally {
      await step.dispose();
    }
  }, 60_000);

  it('kills a step whose module never finishes loading, as timed out, before any input is sent', async () => {
    const step = startCodeStep(await bundle('load-loop.mjs'), { timeoutMs: 1500 });
    try {
      await new Promise((r) => setTimeout(r, 3000));
      const f = await failure(() => step.run({}, {}));
      expect(f.code).toBe('LIMIT_EXCEEDED');
      expect(f.details.reason).toBe('timeout');
      expect(f.message).toContain('timed out after 1500 ms');
    } finally {
      await step.dispose();
    }
  });

  it('a disposed step can no longer run', async () => {
    const step = startCodeStep(await bundle('top-level-log.mjs'));
    await step.dispose();
    await step.dispose(); // idempotent
    const f = await failure(() => step.run({}, { who: 'nobody' }));
    expect(f.details.reason).toBe('crashed');
  });
});

describe('sandbox: a pool of ready processes', () => {
  const limits: SandboxLimits = { ...DEFAULT_SANDBOX_LIMITS, timeoutMs: 20_000, memoryMb: 256 };

  it('serves one step per process: the pooled process runs the step, exits, and the next step gets another', async () => {
    const pool = new SandboxPool({ size: 1, limits });
    try {
      await pool.ready();
      const [waiting] = pool.idlePids();
      expect(waiting).toBeDefined();
      const b = await bundle('top-level-log.mjs');
      const first = await pool.acquire(b.file, limits);
      expect(first.pooled).toBe(true);
      expect(first.pid).toBe(waiting);
      const raw = await first.send('run', { who: 'pooled' }, []);
      await first.dispose();
      // Taken as soon as the harness reported ok and all its output arrived, or at its exit.
      expect(raw.complete || raw.exitCode === 0).toBe(true);
      expect(raw.control.map((m) => m.type)).toEqual(['ready', 'ok']);
      expect(raw.logs).toEqual(['module loaded', 'run called']);
      expect(alive(waiting as number)).toBe(false);
      await pool.ready();
      const [next] = pool.idlePids();
      expect(next).toBeDefined();
      expect(next).not.toBe(waiting);
      // Through the step API: the same result as a freshly spawned process.
      const step = startCodeStep(b, limits, pool);
      try {
        const r = await step.run({}, { who: 'again' });
        expect(r.output.getChild('greeting')?.get(0)).toBe('hello again');
      } finally {
        await step.dispose();
      }
      expect(alive(next as number)).toBe(false);
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('a pooled process has the runtime (harness + apache-arrow) loaded before its step binds; a spawned one does not', async () => {
    const pool = new SandboxPool({ size: 1, limits });
    try {
      await pool.ready();
      const b = await bundle('runtime-probe.mjs');
      const step = startCodeStep(b, limits, pool);
      try {
        const r = await step.run({}, {});
        expect(r.output.toArray().map((x) => ({ ...x }))).toEqual([{ preloaded: true, same: true }]);
      } finally {
        await step.dispose();
      }
      const cold = await runCodeStep({ bundle: b, inputs: {}, limits });
      expect(cold.output.toArray().map((x) => ({ ...x }))).toEqual([{ preloaded: false, same: false }]);
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('a waiting process starts at the lowest CPU priority (where it can be raised back: root) and its step runs at the normal one', async () => {
    // Lowering a niceness back needs root (CAP_SYS_NICE): elsewhere waiting processes start at normal priority.
    const canRaise = process.getuid?.() === 0;
    const pool = new SandboxPool({ size: 1, limits });
    try {
      await pool.ready();
      const [waiting] = pool.idlePids();
      // Field 19 of /proc/<pid>/stat is the niceness (after the command in parentheses).
      const stat = await readFile(`/proc/${waiting}/stat`, 'utf8');
      expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])).toBe(canRaise ? 19 : 0);
      const step = startCodeStep(await bundle('priority.mjs', NO_DENY), limits, pool);
      try {
        const r = await step.run({}, {});
        expect(r.output.getChild('nice')?.get(0)).toBe(0);
      } finally {
        await step.dispose();
      }
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('a pooled process reads its own bundle and nothing else: not another bundle, the cache, /etc/passwd or its folder', async () => {
    const pool = new SandboxPool({ size: 1, limits });
    try {
      await pool.ready();
      const other = await bundle('passthrough.mjs');
      const probe = await bundle('probe-files.mjs', NO_DENY);
      const paths = ['/etc/passwd', other.file, probe.file, join(cacheDir, 'missing.json')];
      const step = startCodeStep(probe, limits, pool);
      let rows: Array<{ what: string; outcome: string }>;
      try {
        const r = await step.run({}, { paths: JSON.stringify(paths) });
        rows = r.output.toArray().map((x) => ({ what: String(x.what), outcome: String(x.outcome) }));
      } finally {
        await step.dispose();
      }
      expect(rows).toEqual([
        { what: 'own bundle', outcome: 'ok' },
        { what: 'working directory', outcome: 'ERR_ACCESS_DENIED' },
        ...paths.map((p) => ({ what: p, outcome: 'ERR_ACCESS_DENIED' })),
      ]);
    } finally {
      await pool.close();
    }
  }, 120_000);

  it('keeps every other layer for pooled processes: empty environment, no network, no processes, limits', async () => {
    const pool = new SandboxPool({ size: 2, limits });
    process.env.AIRLOCK_SECRET_TEST = 'hunter2';
    try {
      await pool.ready();
      const env = startCodeStep(await bundle('read-env.mjs'), limits, pool);
      try {
        const r = await env.run({}, {});
        expect(r.output.getChild('secret')?.get(0)).toBeNull();
        expect(r.output.getChild('keys')?.get(0)).toBe(0);
      } finally {
        await env.dispose();
      }
      const marker = join(scratch, 'spawned-pooled');
      const spawnStep = startCodeStep(await bundle('spawn.mjs', NO_DENY), limits, pool);
      const spawned = await failure(async () => {
        try {
          return await spawnStep.run({}, { marker });
        } finally {
          await spawnStep.dispose();
        }
      });
      expect(spawned.code).toBe('DENIED');
      expect(existsSync(marker)).toBe(false);
      if (detectIsolation().network) {
        const { server, port, connections } = await countingServer();
        try {
          const net = startCodeStep(await bundle('fetch.mjs'), limits, pool);
          const f = await failure(async () => {
            try {
              return await net.run({}, { port: String(port) });
            } finally {
              await net.dispose();
            }
          });
          expect(f.message).toMatch(/no network/);
          expect(connections()).toBe(0);
        } finally {
          server.close();
        }
      }
      const loop = startCodeStep(await bundle('loop.mjs'), { ...limits, timeoutMs: 1500 }, pool);
      const timedOut = await failure(async () => {
        try {
          return await loop.run({}, {});
        } finally {
          await loop.dispose();
        }
      });
      expect(timedOut.details.reason).toBe('timeout');
      const bomb = startCodeStep(await bundle('buffer-bomb.mjs'), limits, pool);
      const oom = await failure(async () => {
        try {
          return await bomb.run({}, {});
        } finally {
          await bomb.dispose();
        }
      });
      expect(oom.details.reason).toBe('memory');
    } finally {
      delete process.env.AIRLOCK_SECRET_TEST;
      await pool.close();
    }
  }, 180_000);

  it('ready processes of an owner killed with SIGKILL exit by themselves (their channel to it ends)', async () => {
    const { spawn } = await import('node:child_process');
    // One process (`--import tsx`, not the tsx CLI, which runs the script in a child of its own).
    const owner = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'poolOwner.ts')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pids = await new Promise<number[]>((resolve, reject) => {
      let text = '';
      owner.stdout.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.includes('\n')) resolve(JSON.parse(text) as number[]);
      });
      owner.on('error', reject);
      owner.on('exit', () => reject(new Error(`the owner exited early: ${text}`)));
    });
    expect(pids.length).toBe(2);
    expect(pids.every(alive)).toBe(true);
    owner.kill('SIGKILL');
    // Not a timing assertion: wait (generously) for both to be gone, then check.
    for (let i = 0; i < 300 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    expect(pids.filter(alive)).toEqual([]);
  }, 120_000);

  it('never holds more than its size waiting, and close() leaves no process behind', async () => {
    const pool = new SandboxPool({ size: 2, limits });
    const b = await bundle('top-level-log.mjs');
    const handedOut: PooledSandboxProcess[] = [];
    try {
      await pool.ready();
      expect(pool.idleCount).toBe(2);
      expect(await liveSandboxes()).toEqual(pool.idlePids().sort((a, b) => a - b));
      for (let i = 0; i < 3; i++) {
        handedOut.push(await pool.acquire(b.file, limits));
        expect(pool.idleCount).toBeLessThanOrEqual(2);
      }
      // The first two were waiting; the third is a refill or a spawn of its own, as the race goes.
      expect(handedOut.slice(0, 2).map((p) => p.pooled)).toEqual([true, true]);
      await pool.ready();
      expect(pool.idleCount).toBe(2);
      const live = await liveSandboxes();
      expect(live.length).toBe(5); // 3 handed out + 2 waiting
      // A step asking for another memory limit gets its own process; the pool follows it.
      const other = await pool.acquire(b.file, { ...limits, memoryMb: 300 });
      handedOut.push(other);
      expect(other.pooled).toBe(false);
      await pool.ready();
      expect(pool.idleCount).toBe(2);
      const switched = await pool.acquire(b.file, { ...limits, memoryMb: 300 });
      handedOut.push(switched);
      expect(switched.pooled).toBe(true);
    } finally {
      await pool.close();
      await Promise.all(handedOut.map((p) => p.dispose()));
    }
    expect(pool.idleCount).toBe(0);
    expect(await liveSandboxes()).toEqual([]);
    await expect(pool.acquire(b.file, limits)).rejects.toThrow(/closed/);
    expect(() => new SandboxPool({ size: 0 })).toThrow(/positive integer/);
  }, 180_000);

  it('refills only once no process is handed out, never while a step holds one; counts what it hands out', async () => {
    expect(() => new SandboxPool({ size: 1.5 })).toThrow(/positive integer/);
    expect(() => new SandboxPool({ size: 1, refillDelayMs: -1 })).toThrow(/non-negative/);
    const pool = new SandboxPool({ size: 2, limits, refillDelayMs: 20 });
    const b = await bundle('top-level-log.mjs');
    try {
      await pool.ready();
      expect(pool.stats).toEqual({ acquired: 0, pooled: 0, spawnedOnDemand: 0, refillSpawns: 2 });
      const first = await pool.acquire(b.file, limits);
      const second = await pool.acquire(b.file, limits);
      expect([first.pooled, second.pooled]).toEqual([true, true]);
      expect(pool.activeCount).toBe(2);
      await first.send('run', { who: 'a' }, []);
      await first.dispose();
      // One step still holds a process: well past the refill delay, nothing is spawned.
      await new Promise((r) => setTimeout(r, 500));
      expect(pool.activeCount).toBe(1);
      expect(pool.refilling).toBe(false);
      expect(pool.idleCount).toBe(0);
      expect(pool.stats.refillSpawns).toBe(2);
      expect(await liveSandboxes()).toEqual([second.pid].filter((p) => p !== undefined));
      await second.dispose();
      // Now idle: the pool refills on its own, up to its size and no further.
      await vi.waitFor(() => expect(pool.idleCount).toBe(2), { timeout: 60_000, interval: 100 });
      await vi.waitFor(() => expect(pool.refilling).toBe(false), { timeout: 60_000, interval: 100 });
      expect(pool.stats).toEqual({ acquired: 2, pooled: 2, spawnedOnDemand: 0, refillSpawns: 4 });
      expect((await liveSandboxes()).length).toBe(2);
      // A step arriving during the idle delay cancels the refill it would compete with.
      const third = await pool.acquire(b.file, limits);
      await third.dispose();
      const fourth = await pool.acquire(b.file, limits);
      await new Promise((r) => setTimeout(r, 300));
      expect(pool.idleCount).toBe(0);
      expect(pool.stats.refillSpawns).toBe(4);
      await fourth.dispose();
    } finally {
      await pool.close();
    }
    expect(pool.idleCount).toBe(0);
    expect(pool.refilling).toBe(false);
    expect(await liveSandboxes()).toEqual([]);
  }, 180_000);

  it('keeps refilling after an idle refill found the pool already full', async () => {
    const pool = new SandboxPool({ size: 2, limits, refillDelayMs: 20 });
    const b = await bundle('top-level-log.mjs');
    try {
      await pool.ready();
      const held = await pool.acquire(b.file, limits);
      await pool.ready(); // the owner fills it while a step holds a process
      expect(pool.idleCount).toBe(2);
      await held.dispose(); // idle again: the refill finds nothing to do
      await vi.waitFor(() => expect(pool.refilling).toBe(false), { timeout: 10_000, interval: 50 });
      await new Promise((r) => setTimeout(r, 100));
      expect(pool.refilling).toBe(false);
      const taken = [await pool.acquire(b.file, limits), await pool.acquire(b.file, limits)];
      await Promise.all(taken.map((p) => p.dispose()));
      await vi.waitFor(() => expect(pool.idleCount).toBe(2), { timeout: 60_000, interval: 100 });
    } finally {
      await pool.close();
    }
    expect(await liveSandboxes()).toEqual([]);
  }, 180_000);
});

describe('sandbox: npm packages from the pipeline folder', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-test-pipeline-'));
    const pkg = async (name: string, main: string) => {
      await mkdir(join(dir, 'node_modules', name), { recursive: true });
      await writeFile(
        join(dir, 'node_modules', name, 'package.json'),
        JSON.stringify({ name, version: '1.0.0', main: 'index.js' }),
      );
      await writeFile(join(dir, 'node_modules', name, 'index.js'), main);
    };
    await pkg('tiny-pad', "module.exports = (s, n) => String(s).padStart(n, '0');");
    await pkg('sneaky-exec', "const cp = require('child_process'); module.exports = () => cp.execSync('id');");
    const step = (imp: string, call: string) => `import f from '${imp}';
export default { output: 'test.pkg', inputs: {}, run() { return [{ v: String(${call}) }]; } };
`;
    await writeFile(join(dir, 'uses-pad.mjs'), step('tiny-pad', "f('7', 3)"));
    await writeFile(join(dir, 'uses-sneaky.mjs'), step('sneaky-exec', 'f()'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('runs a step importing an allowed package installed in the pipeline folder', async () => {
    const b = await bundleStep(join(dir, 'uses-pad.mjs'), { pipelineDir: dir, cacheDir });
    const result = await runCodeStep({ bundle: b, inputs: {} });
    expect(result.output.getChild('v')?.get(0)).toBe('007');
  });

  it('refuses a step importing a package the lake denies, naming the package and the file', async () => {
    const deny = { packages: ['tiny-pad'], builtins: [...DEFAULT_DENY_POLICY.builtins] };
    const f = await failure(() => bundleStep(join(dir, 'uses-pad.mjs'), { pipelineDir: dir, deny, cacheDir }));
    expect(f.code).toBe('DENIED');
    expect(f.message).toContain("'tiny-pad'");
    expect(f.message).toContain('uses-pad.mjs');
    expect(f.message).toContain('package tiny-pad');
  });

  it('refuses an allowed package that itself requires a denied built-in, naming the package file', async () => {
    const f = await failure(() => bundleStep(join(dir, 'uses-sneaky.mjs'), { pipelineDir: dir, cacheDir }));
    expect(f.code).toBe('DENIED');
    expect(f.message).toContain("'child_process'");
    expect(f.message).toMatch(/sneaky-exec[\\/]index\.js/);
  });

  it('rebuilds a cached bundle when a package it includes changes', async () => {
    const first = await bundleStep(join(dir, 'uses-pad.mjs'), { pipelineDir: dir, cacheDir });
    await writeFile(
      join(dir, 'node_modules', 'tiny-pad', 'index.js'),
      "module.exports = (s, n) => String(s).padStart(n, 'x');",
    );
    const second = await bundleStep(join(dir, 'uses-pad.mjs'), { pipelineDir: dir, cacheDir });
    expect(first.file).toBe(second.file);
    expect(second.cached).toBe(false);
    expect(await readFile(second.file, 'utf8')).toMatch(/padStart\(n, ["']x["']\)/);
  });
});

describe('deny policy', () => {
  it('matches node: forms and subpaths of denied built-ins', () => {
    expect(deniedBy('node:fs/promises', DEFAULT_DENY_POLICY)).toBe('built-in fs');
    expect(deniedBy('child_process', DEFAULT_DENY_POLICY)).toBe('built-in child_process');
    expect(deniedBy('node:path', DEFAULT_DENY_POLICY)).toBeUndefined();
  });

  it('matches packages, their subpaths and whole scopes', () => {
    const policy = { packages: ['lodash', '@evil/*'], builtins: [] };
    expect(deniedBy('lodash/fp', policy)).toBe('package lodash');
    expect(deniedBy('@evil/x', policy)).toBe('package @evil/*');
    expect(deniedBy('lodash-es', policy)).toBeUndefined();
    expect(deniedBy('./lodash', policy)).toBeUndefined();
  });
});

describe('rowsToTable', () => {
  it('builds typed columns with nulls and refuses a column that mixes types', () => {
    const t = rowsToTable([
      { id: 1n, x: 1.5, s: 'a', b: true },
      { id: null, x: null, s: null, b: false },
    ]);
    expect(t.schema.fields.map((f) => String(f.type))).toEqual([
      String(new Int64()),
      String(new Float64()),
      'Utf8',
      'Bool',
    ]);
    expect(t.getChild('id')?.get(1)).toBeNull();
    expect(t.getChild('x')?.get(0)).toBe(1.5);
    expect(t.getChild('x')?.nullCount).toBe(1);
    expect(() => rowsToTable([{ x: 1 }, { x: 'two' }])).toThrow(/column 'x': row 1 holds a string/);
  });
});
