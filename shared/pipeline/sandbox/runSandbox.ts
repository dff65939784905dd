import { spawn } from 'node:child_process';
import { chmod, copyFile, link, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ControlMessage, encodeRequest, type SandboxMode } from './protocol.js';
import { detectIsolation, type IsolationSupport } from './isolation.js';

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
  durationMs: number;
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
 * A sandboxed step process that has been started and is loading its bundle, waiting for
 * its request. Starting a process ahead of its inputs hides the runtime's start-up behind
 * the work that prepares them (reading the inputs from the lake, a preceding step).
 */
export interface SandboxProcess {
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
 * Spawns the bundle in the sandbox and returns at once; the process loads the bundle and
 * waits for its request (see {@link SandboxProcess.send}). A step whose module has not
 * loaded within `limits.timeoutMs` of the spawn is killed as timed out; once loaded, it
 * may wait for its request as long as its owner likes (and must be disposed).
 */
export async function startSandboxProcess(bundleFile: string, limits: SandboxLimits): Promise<SandboxProcess> {
  const isolation = detectIsolation();
  // An empty working directory: relative paths in the step lead nowhere.
  const cwd = await mkdtemp(join(tmpdir(), 'airlock-step-'));
  let script = bundleFile;
  if (isolation.unprivilegedUser) {
    // The step runs as `nobody`, which cannot reach a private cache folder: stage the
    // bundle in the run's own folder (traversable, not listable) by hard link or copy.
    await chmod(cwd, 0o711);
    script = join(cwd, 'step.mjs');
    await link(bundleFile, script).catch(() => copyFile(bundleFile, script));
    await chmod(script, 0o644);
  }
  const nodeArgs = [
    // The permission model: no file access except reading the bundle itself, and —
    // since --allow-child-process, --allow-worker, --allow-addons and --allow-wasi are
    // absent — no child processes, worker threads, native addons or WASI.
    '--experimental-permission',
    `--allow-fs-read=${script}`,
    `--max-old-space-size=${Math.max(16, Math.floor(limits.memoryMb))}`,
    '--no-warnings',
    script,
  ];
  // A CPU-time rlimit is the backstop for a parent that dies before its timer fires: an
  // orphaned step that spins is still killed by the kernel.
  const cpuSeconds = Math.ceil(limits.timeoutMs / 1000) * 2 + 5;
  const rlimit = isolation.cpuLimit ? ['prlimit', `--cpu=${cpuSeconds}:${cpuSeconds + 2}`, '--'] : [];
  const [cmd, ...args] = [...rlimit, ...isolation.prefix, process.execPath, ...nodeArgs] as [string, ...string[]];
  const child = spawn(cmd, args, {
    cwd,
    env: {}, // no credentials, tokens or paths from the parent
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
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
  // Until the step module has loaded, the whole budget bounds start-up; `send` re-arms it.
  let timer = setTimeout(() => kill('timeout'), limits.timeoutMs);
  let peakRss = 0;
  let polling = false;
  const memLimit = limits.memoryMb * 1024 * 1024;
  const watchdog =
    process.platform === 'linux' && child.pid !== undefined
      ? setInterval(() => {
          if (polling || child.pid === undefined) return;
          polling = true;
          void treeRssBytes(child.pid).then((rss) => {
            polling = false;
            peakRss = Math.max(peakRss, rss);
            if (rss > memLimit) kill('memory');
          });
        }, 20)
      : undefined;

  const outChunks: Buffer[] = [];
  let outBytes = 0;
  child.stdout.on('data', (c: Buffer) => {
    outBytes += c.byteLength;
    if (outBytes > limits.maxOutputBytes) {
      kill('output');
      return;
    }
    outChunks.push(c);
  });

  const logs: string[] = [];
  let dropped = 0;
  let partial = '';
  let tail = '';
  const pushLine = (line: string) => {
    if (logs.length < limits.maxLogLines) logs.push(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
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
  });
  child.stdin.on('error', () => undefined); // the child may exit before reading everything

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

  let cleaned: Promise<void> | undefined;
  const cleanUp = () => {
    cleaned ??= rm(cwd, { recursive: true, force: true });
    return cleaned;
  };

  return {
    async send(mode, params, inputs) {
      sent = true;
      clearTimeout(timer);
      const started = performance.now();
      if (!killed) timer = setTimeout(() => kill('timeout'), limits.timeoutMs);
      for (const chunk of encodeRequest(mode, params, inputs)) child.stdin.write(chunk);
      child.stdin.end();
      const { code, signal } = await exited;
      const durationMs = performance.now() - started;
      await cleanUp();
      if (partial) pushLine(partial);
      if (dropped > 0) logs.push(`… ${dropped} more log lines not kept (limit ${limits.maxLogLines})`);

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
        durationMs,
        isolation,
      };
      if (killed) result.killed = killed;
      return result;
    },
    async dispose() {
      clearTimeout(timer);
      if (watchdog) clearInterval(watchdog);
      if (!ended) killGroup(child.pid);
      await exited.catch(() => undefined);
      await cleanUp();
    },
  };
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
  const started = performance.now();
  const sandbox = await startSandboxProcess(bundleFile, limits);
  const raw = await sandbox.send(mode, params, inputs);
  raw.durationMs = performance.now() - started; // from spawn: nothing overlapped start-up
  return raw;
}
