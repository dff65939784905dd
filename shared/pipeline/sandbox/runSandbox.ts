import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { chmod, copyFile, link, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ControlMessage, encodeRequest, type SandboxMode } from './protocol.js';
import { isolationSupport, type IsolationSupport } from './isolation.js';

/** Resource limits of one sandboxed step process. */
export interface SandboxLimits {
  /**
   * Memory cap in MB. Enforced twice: as V8's heap limit (`--max-old-space-size`) and as
   * a cap on the process's resident memory, polled by the parent, because Arrow buffers
   * and other ArrayBuffers live outside the V8 heap and the heap flag alone would let a
   * step allocate until the machine swaps. Default 512.
   */
  memoryMb: number;
  /** Wall-clock limit from spawn to exit; the process is SIGKILLed after it. Default 60 000. */
  timeoutMs: number;
  /** Cap on the output's Arrow IPC bytes; the process is killed past it. Default 1 GiB. */
  maxOutputBytes: number;
  /** Cap on returned log lines (the rest is counted, not kept). Default 1000. */
  maxLogLines: number;
}

/** Limits used for every field a caller leaves out. */
export const DEFAULT_SANDBOX_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  memoryMb: 512,
  timeoutMs: 60_000,
  maxOutputBytes: 1024 * 1024 * 1024,
  maxLogLines: 1000,
});

/** Why the parent killed a step process. */
export type KillReason = 'timeout' | 'memory' | 'output';

/** Everything a finished step process left behind, before interpretation. */
export interface RawSandboxResult {
  control: ControlMessage[];
  stdout: Buffer;
  logs: string[];
  stderrTail: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  killed?: KillReason;
  peakRssMb: number;
  /** From the request being sent to the process's end: the step, its I/O and its exit. */
  durationMs: number;
  /** From the spawn to the process's end; includes start-up and, for a pooled process, its wait in the pool. */
  sinceSpawnMs: number;
  /**
   * The harness reported `ok` and every output byte it announced had arrived, so the
   * result was taken then and the process killed without waiting for it to exit
   * (`exitCode` and `signal` are then null): its teardown is off the step's critical path.
   */
  complete: boolean;
  isolation: IsolationSupport;
}

const MAX_LINE = 4000;
const READY_LINE = `${JSON.stringify({ type: 'ready' } satisfies ControlMessage)}\n`;
const PAGE = 4096;

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** The pids of a process and its descendants (Linux; just the pid elsewhere). */
async function processTree(pid: number): Promise<number[]> {
  const out: number[] = [];
  const stack = [pid];
  for (let guard = 0; stack.length > 0 && guard < 64; guard++) {
    const p = stack.pop() as number;
    out.push(p);
    const kids = await readFile(`/proc/${p}/task/${p}/children`, 'utf8').catch(() => '');
    for (const k of kids.split(' ')) if (k.trim()) stack.push(Number(k));
  }
  return out;
}

/**
 * Whether waiting processes can start at the lowest CPU priority and be raised back when
 * bound: lowering a niceness needs root (CAP_SYS_NICE), so elsewhere they start at normal
 * priority rather than leave a step running at the lowest.
 */
const CAN_RAISE_PRIORITY =
  process.platform === 'linux' && typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Restores the normal CPU priority of a process tree: the root first (so a child it forks
 * from now on inherits it), then every thread of every process in it (Linux priorities
 * are per thread).
 */
async function normalPriority(root: number): Promise<void> {
  const set = (id: number) => {
    try {
      setPriority(id, 0);
    } catch {
      /* gone already */
    }
  };
  set(root);
  for (const pid of await processTree(root)) {
    const tids = await readdir(`/proc/${pid}/task`).catch(() => [String(pid)]);
    for (const tid of tids) set(Number(tid));
  }
}

async function treeRssBytes(pid: number): Promise<number> {
  let total = 0;
  const stack = [pid];
  for (let guard = 0; stack.length > 0 && guard < 64; guard++) {
    const p = stack.pop() as number;
    try {
      const statm = await readFile(`/proc/${p}/statm`, 'utf8');
      total += Number(statm.split(' ')[1] ?? 0) * PAGE;
      const kids = await readFile(`/proc/${p}/task/${p}/children`, 'utf8').catch(() => '');
      for (const k of kids.split(' ')) if (k.trim()) stack.push(Number(k));
    } catch {
      /* the process is gone */
    }
  }
  return total;
}

/**
 * A sandboxed step process bound to its bundle: loading it, then waiting for its request.
 * Starting a process ahead of its inputs hides the runtime's start-up behind the work
 * that prepares them (reading the inputs from the lake, a preceding step).
 */
export interface SandboxProcess {
  /** The pid of the outermost process of the sandbox (its process group), for tests and diagnostics. */
  readonly pid: number | undefined;
  /**
   * Feeds the framed request and collects stdout, logs and control messages until the
   * process ends. The wall-clock limit runs from this call. Call at most once.
   */
  send(mode: SandboxMode, params: Record<string, string>, inputs: SandboxInput[]): Promise<RawSandboxResult>;
  /** Kills the process if it is still running and removes its working directory. Idempotent. */
  dispose(): Promise<void>;
}

/** One named input of a step as Arrow IPC stream bytes. */
export interface SandboxInput {
  name: string;
  ipc: Uint8Array;
}

/**
 * What a sandbox process is spawned with and cannot change later: its heap limit and
 * the CPU-time rlimit derived from the wall-clock limit.
 */
export interface SandboxProfile {
  memoryMb: number;
  timeoutMs: number;
}

/**
 * A sandbox process spawned with every layer of the sandbox but no step yet: the Node
 * runtime is up and waits, holding nothing, for the one bundle it will ever load. It may
 * read exactly one path, `<its empty working directory>/step.mjs`, which does not exist
 * until {@link IdleSandbox.bind} links the bundle there. A bound process serves one
 * step and exits; it is never bound twice.
 */
export interface IdleSandbox {
  readonly pid: number | undefined;
  readonly profile: Readonly<SandboxProfile>;
  /** Resolves once the runtime has started and waits for its bundle (rejects if it died first). */
  readonly booted: Promise<void>;
  /** False once the process has exited or been bound or disposed. */
  readonly available: boolean;
  /**
   * Places the bundle at the one path the process may read and tells it to import it.
   * `limits.memoryMb` must be the profile's; the wall-clock limit runs from here until the
   * step has loaded, then from {@link SandboxProcess.send}. Call at most once.
   */
  bind(bundleFile: string, limits: SandboxLimits): Promise<SandboxProcess>;
  /** Kills the process and removes its working directory. Idempotent. */
  dispose(): Promise<void>;
}

/** The file descriptor of the bind channel in the child (duplex: "booted" out, "bind" in). */
const BIND_FD = 4;

/**
 * The whole program a sandbox process starts with (`node -e`, so no file needs to be
 * readable before the bundle). With a runtime to preload, it first reads
 * `[u32 LE length][ESM source]` from the channel and evaluates it (from a `data:` URL: no
 * file) under the runtime's key; then it reports that it is up, waits for the parent's
 * signal and imports the bundle (whose harness reads the request on stdin). If the parent
 * goes away first, the channel ends and the process exits.
 */
function bootstrap(script: string, runtimeKey: string | undefined): string {
  const url = pathToFileURL(script).href;
  return [
    `const c = new (require('node:net').Socket)({ fd: ${BIND_FD}, readable: true, writable: true });`,
    `const key = ${JSON.stringify(runtimeKey ?? null)};`,
    'let buf = Buffer.alloc(0), need = key ? -1 : 0, runtime = Promise.resolve(), started = false;',
    "c.on('error', () => process.exit(70));",
    "c.on('end', () => { if (!started) process.exit(0); });",
    'const go = () => {',
    "  if (started) return; started = true; c.removeAllListeners(); c.on('error', () => {}); c.destroy();",
    `  runtime.then(() => import(${JSON.stringify(url)})).catch((e) => { console.error(String(e && e.stack || e)); process.exit(70); });`,
    '};',
    "c.on('data', (d) => {",
    '  if (need === 0) return go();',
    '  buf = Buffer.concat([buf, d]);',
    '  if (need < 0 && buf.length >= 4) need = buf.readUInt32LE(0);',
    '  if (need < 0 || buf.length < 4 + need) return;',
    "  const source = buf.subarray(4, 4 + need).toString('base64'); const rest = buf.length - 4 - need;",
    '  need = 0; buf = Buffer.alloc(0);',
    "  runtime = import('data:text/javascript;base64,' + source).then((m) => { globalThis[Symbol.for(key)] = m; if (!started) c.write('b'); });",
    '  runtime.catch(() => process.exit(70));',
    '  if (rest > 0) go();',
    '});',
    "if (!key) c.write('b');",
  ].join('\n');
}

/**
 * Spawns a bundle-agnostic sandbox process (see {@link IdleSandbox}). Layers: Node's
 * permission model reading one path only (and, without --allow-child-process,
 * --allow-worker, --allow-addons, --allow-wasi: no processes, threads, addons or WASI),
 * an empty environment, an empty working directory, the heap limit, a CPU-time rlimit,
 * and the OS isolation {@link isolationSupport} found (network and PID namespaces, the
 * `nobody` uid when the parent is root). With `preload` (see `sandboxRuntime`), the
 * process evaluates the trusted runtime while it waits; `booted` resolves after that.
 */
export async function spawnIdleSandbox(
  profile: SandboxProfile,
  preload?: { key: string; source: string },
  options: { background?: boolean } = {},
): Promise<IdleSandbox> {
  const spawnedAt = performance.now();
  const isolation = await isolationSupport();
  // An empty working directory, traversable but not listable by the step's uid: relative
  // paths lead nowhere, and the bundle is placed here at bind time.
  const cwd = await mkdtemp(join(tmpdir(), 'airlock-step-'));
  await chmod(cwd, 0o711);
  const script = join(cwd, 'step.mjs');
  const nodeArgs = [
    '--experimental-permission',
    `--allow-fs-read=${script}`,
    `--max-old-space-size=${Math.max(16, Math.floor(profile.memoryMb))}`,
    '--no-warnings',
    '-e',
    bootstrap(script, preload?.key),
  ];
  // A CPU-time rlimit is the backstop for a parent that dies before its timer fires: an
  // orphaned step that spins is still killed by the kernel.
  const cpuSeconds = Math.ceil(profile.timeoutMs / 1000) * 2 + 5;
  const rlimit = isolation.cpuLimit ? ['prlimit', `--cpu=${cpuSeconds}:${cpuSeconds + 2}`, '--'] : [];
  // A process spawned ahead for a pool starts at the lowest CPU priority, so its start-up
  // takes only CPU that running steps leave; binding it restores the normal priority.
  const background = options.background === true && CAN_RAISE_PRIORITY;
  const nice = background ? ['nice', '-n', '19'] : [];
  const [cmd, ...args] = [...nice, ...rlimit, ...isolation.prefix, process.execPath, ...nodeArgs] as [
    string,
    ...string[],
  ];
  const child = spawn(cmd, args, {
    cwd,
    env: {}, // no credentials, tokens or paths from the parent
    stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    // Its own process group, so one signal reaches every process of the sandbox: after
    // `setpriv` changes the uid the kernel clears unshare's parent-death signal, and
    // killing `unshare` alone would leave the step running.
    detached: true,
  });

  let killed: KillReason | undefined;
  const kill = (reason: KillReason) => {
    if (killed) return;
    killed = reason;
    killGroup(child.pid);
  };
  let timer: NodeJS.Timeout | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let peakRss = 0;

  const outChunks: Buffer[] = [];
  let outBytes = 0;
  let maxOutputBytes = Number.POSITIVE_INFINITY;
  // Set once the harness reports `ok` with the size of its output; the result is complete
  // when that many bytes have arrived.
  let okBytes: number | undefined;
  let onComplete: (() => void) | undefined;
  const completed = new Promise<void>((resolve) => {
    onComplete = resolve;
  });
  const checkComplete = () => {
    if (okBytes !== undefined && outBytes === okBytes) onComplete?.();
  };
  child.stdout.on('data', (c: Buffer) => {
    outBytes += c.byteLength;
    if (outBytes > maxOutputBytes) {
      kill('output');
      return;
    }
    outChunks.push(c);
    checkComplete();
  });

  const logs: string[] = [];
  let maxLogLines = DEFAULT_SANDBOX_LIMITS.maxLogLines;
  let dropped = 0;
  let partial = '';
  let tail = '';
  const pushLine = (line: string) => {
    if (logs.length < maxLogLines) logs.push(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
    else dropped++;
  };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    tail = (tail + s).slice(-16_384);
    const parts = (partial + s).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) pushLine(p);
    if (partial.length > MAX_LINE * 4) {
      pushLine(partial);
      partial = '';
    }
  });

  const controlStream = child.stdio[3] as NodeJS.ReadableStream;
  let controlText = '';
  controlStream.setEncoding('utf8');
  let sent = false;
  controlStream.on('data', (s: string) => {
    if (controlText.length < 4 * 1024 * 1024) controlText += s;
    // Loaded in time: waiting for the request costs the step none of its budget.
    if (!sent && controlText.startsWith(READY_LINE)) clearTimeout(timer);
    if (sent && okBytes === undefined && controlText.endsWith('\n')) {
      const last = controlText.slice(controlText.lastIndexOf('\n', controlText.length - 2) + 1);
      try {
        const m = JSON.parse(last) as ControlMessage;
        if (m.type === 'ok' && Number.isSafeInteger(m.bytes)) {
          okBytes = m.bytes;
          checkComplete();
        }
      } catch {
        /* not a whole message: the exit decides */
      }
    }
  });
  child.stdin.on('error', () => undefined); // the child may exit before reading everything
  const channel = child.stdio[BIND_FD] as unknown as Duplex;
  channel.on('error', () => undefined);
  if (preload) {
    const source = Buffer.from(preload.source);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(source.byteLength, 0);
    channel.write(len);
    channel.write(source);
  }

  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve({ code: c, signal: s }));
  }).finally(() => {
    ended = true;
    clearTimeout(timer);
    if (watchdog) clearInterval(watchdog);
    killGroup(child.pid); // anything the step left behind in its group
  });
  exited.catch(() => undefined); // observed by send; a disposed process's failure is moot
  let markBooted: () => void = () => undefined;
  const booted = new Promise<void>((resolve, reject) => {
    markBooted = resolve;
    channel.once('data', () => resolve());
    void exited.then(
      () => reject(new Error('the sandbox process exited before it started')),
      (e: unknown) => reject(e),
    );
  });
  booted.catch(() => undefined);

  let cleaned: Promise<void> | undefined;
  const cleanUp = () => {
    cleaned ??= rm(cwd, { recursive: true, force: true });
    return cleaned;
  };
  const dispose = async () => {
    clearTimeout(timer);
    if (watchdog) clearInterval(watchdog);
    if (!ended) killGroup(child.pid);
    await exited.catch(() => undefined);
    await cleanUp();
  };

  let bound = false;
  let disposed = false;
  let limitsOf: SandboxLimits = { ...DEFAULT_SANDBOX_LIMITS, ...profile };
  const boundProcess: SandboxProcess = {
    pid: child.pid,
    async send(mode, params, inputs) {
      sent = true;
      clearTimeout(timer);
      const started = performance.now();
      if (!killed && !ended) timer = setTimeout(() => kill('timeout'), limitsOf.timeoutMs);
      for (const chunk of encodeRequest(mode, params, inputs)) child.stdin.write(chunk);
      child.stdin.end();
      // The process's exit, or — sooner — a complete result (then after the poll phase, so
      // log lines that arrived in the same batch of I/O are read first).
      const end = await Promise.race([
        exited.then((r) => ({ ...r, complete: false })),
        completed.then(
          () =>
            new Promise<{ code: null; signal: null; complete: true }>((r) =>
              setImmediate(() => r({ code: null, signal: null, complete: true })),
            ),
        ),
      ]);
      const { code, signal } = end;
      const finishedAt = performance.now();
      if (end.complete && !ended) {
        clearTimeout(timer);
        if (watchdog) clearInterval(watchdog);
        killGroup(child.pid);
        void exited.catch(() => undefined).then(cleanUp);
      } else {
        await cleanUp();
      }
      if (partial) pushLine(partial);
      if (dropped > 0) logs.push(`… ${dropped} more log lines not kept (limit ${maxLogLines})`);

      const control: ControlMessage[] = [];
      for (const line of controlText.split('\n')) {
        if (!line.trim()) continue;
        try {
          control.push(JSON.parse(line) as ControlMessage);
        } catch {
          /* a malformed control line is ignored; a missing result is reported by the caller */
        }
      }
      const result: RawSandboxResult = {
        control,
        stdout: outChunks.length === 1 ? (outChunks[0] as Buffer) : Buffer.concat(outChunks),
        logs,
        stderrTail: tail,
        exitCode: code,
        signal,
        peakRssMb: Math.round(peakRss / (1024 * 1024)),
        durationMs: finishedAt - started,
        sinceSpawnMs: finishedAt - spawnedAt,
        complete: end.complete,
        isolation,
      };
      if (killed) result.killed = killed;
      return result;
    },
    dispose,
  };
  return {
    pid: child.pid,
    profile: Object.freeze({ ...profile }),
    booted,
    get available() {
      return !bound && !disposed && !ended;
    },
    async bind(bundleFile, limits) {
      if (bound || disposed) throw new Error('a sandbox process is bound to one step only');
      if (limits.memoryMb !== profile.memoryMb)
        throw new Error('the step asks for another memory limit than the process has');
      bound = true;
      markBooted(); // whoever waits for the start-up need not wait for the step
      limitsOf = limits;
      maxOutputBytes = limits.maxOutputBytes;
      maxLogLines = limits.maxLogLines;
      // Until the step module has loaded, the whole budget bounds start-up; `send` re-arms it.
      timer = setTimeout(() => kill('timeout'), limits.timeoutMs);
      const memLimit = limits.memoryMb * 1024 * 1024;
      let polling = false;
      if (process.platform === 'linux' && child.pid !== undefined && !ended) {
        watchdog = setInterval(() => {
          if (polling || child.pid === undefined) return;
          polling = true;
          void treeRssBytes(child.pid).then((rss) => {
            polling = false;
            peakRss = Math.max(peakRss, rss);
            if (rss > memLimit) kill('memory');
          });
        }, 20);
      }
      // The one path the process may read: a hard link to the bundle (a copy across file
      // systems), readable by the step's uid although the bundle cache is private.
      await link(bundleFile, script).catch(() => copyFile(bundleFile, script));
      await chmod(script, 0o644);
      if (background && child.pid !== undefined) await normalPriority(child.pid);
      channel.end('g');
      return boundProcess;
    },
    async dispose() {
      disposed = true;
      await dispose();
    },
  };
}

/**
 * Spawns the bundle in the sandbox and returns at once; the process loads the bundle and
 * waits for its request (see {@link SandboxProcess.send}). A step whose module has not
 * loaded within `limits.timeoutMs` of the spawn is killed as timed out; once loaded, it
 * may wait for its request as long as its owner likes (and must be disposed).
 */
export async function startSandboxProcess(bundleFile: string, limits: SandboxLimits): Promise<SandboxProcess> {
  const idle = await spawnIdleSandbox(limits);
  try {
    return await idle.bind(bundleFile, limits);
  } catch (e) {
    await idle.dispose();
    throw e;
  }
}

/**
 * Spawns the bundle in the sandbox, feeds it the framed request, and collects stdout,
 * logs and control messages. Interpreting the outcome is the caller's job.
 */
export async function runSandboxProcess(
  bundleFile: string,
  mode: SandboxMode,
  params: Record<string, string>,
  inputs: SandboxInput[],
  limits: SandboxLimits,
): Promise<RawSandboxResult> {
  const sandbox = await startSandboxProcess(bundleFile, limits);
  return sandbox.send(mode, params, inputs);
}
