import { AirlockError, invalid } from '../../errors/index.js';
import {
  DEFAULT_SANDBOX_LIMITS,
  type IdleSandbox,
  type SandboxLimits,
  type SandboxProcess,
  type SandboxProfile,
  spawnIdleSandbox,
} from './runSandbox.js';
import { sandboxRuntime } from './bundleStep.js';

/** Options of {@link SandboxPool}. */
export interface SandboxPoolOptions {
  /** How many idle processes the pool keeps ready (e.g. the runner's concurrency + 1). At least 1. */
  size: number;
  /**
   * The limits the pooled processes are spawned for (heap limit, CPU-time backstop). A step
   * asking for another memory limit, or a longer timeout, gets a freshly spawned process
   * and the pool switches to its limits. Default: spawn nothing until the first step, then
   * use its limits.
   */
  limits?: Partial<SandboxLimits>;
  /**
   * How long the pool must have had no process handed out (no step bound, running or
   * being disposed) before it spawns replacements, in ms. A run's work after its last step
   * (validation, Parquet, commit) and the next run arriving soon after keep the pool from
   * spawning while they need the CPU. Default {@link DEFAULT_REFILL_DELAY_MS}.
   */
  refillDelayMs?: number;
}

/** Default {@link SandboxPoolOptions.refillDelayMs}. */
export const DEFAULT_REFILL_DELAY_MS = 250;

/** Counters of a pool since it was created (diagnostics, tests, benchmarks). */
export interface SandboxPoolStats {
  /** Processes handed out by {@link SandboxPool.acquire}. */
  acquired: number;
  /** Of those, how many came from the pool ready. */
  pooled: number;
  /** Of those, how many were spawned for the step (the pool had none fitting). */
  spawnedOnDemand: number;
  /** Processes the pool spawned in the background to refill. */
  refillSpawns: number;
}

/** What {@link SandboxPool.acquire} hands out: a process bound to the step's bundle. */
export interface PooledSandboxProcess extends SandboxProcess {
  /** True when the process came from the pool ready; false when it was spawned for this step. */
  readonly pooled: boolean;
}

/**
 * A bounded set of ready, bundle-agnostic sandbox processes, kept by a long-lived owner
 * (an executor shared by many runs: `airlock serve`, a Lambda container, a benchmark), so
 * that the runtime's start-up is off the critical path of a step.
 *
 * Each process is spawned with the full sandbox (see {@link spawnIdleSandbox}), evaluates
 * the trusted runtime (harness + apache-arrow, see `sandboxRuntime`) and waits;
 * {@link acquire} binds it to one step's bundle — the bundle is linked to the one path the
 * process may read — and hands it out for good: it serves that step and exits, and is
 * never returned to the pool. The pool spawns replacements only when it is idle — no
 * process handed out for {@link SandboxPoolOptions.refillDelayMs} — one at a time, at the
 * lowest CPU priority, and stops as soon as a step takes a process: so at most `size`
 * processes wait, and a refill never competes with a run on its critical path (size the
 * pool to cover a typical run's code steps). {@link close} kills the waiting ones; handed-out processes
 * belong to their acquirer, who disposes them.
 *
 * @example
 * const pool = new SandboxPool({ size: 3, limits: { memoryMb: 512 } });
 * const proc = await pool.acquire(bundle.file, limits); // loads the bundle now
 * try { const raw = await proc.send('run', params, inputs); } finally { await proc.dispose(); }
 * await pool.close();
 */
export class SandboxPool {
  readonly size: number;
  private profile: SandboxProfile | undefined;
  private readonly idle: IdleSandbox[] = [];
  private spawning: Promise<void> | undefined;
  private closed = false;
  private readonly refillDelayMs: number;
  /** Handed-out processes not yet over (bound, running, or being disposed). */
  private active = 0;
  private refillTimer: NodeJS.Timeout | undefined;
  private readonly counters: SandboxPoolStats = { acquired: 0, pooled: 0, spawnedOnDemand: 0, refillSpawns: 0 };

  constructor(options: SandboxPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw invalid(`sandbox pool size must be a positive integer, not ${options.size}`);
    }
    this.size = options.size;
    const delay = options.refillDelayMs ?? DEFAULT_REFILL_DELAY_MS;
    if (!Number.isFinite(delay) || delay < 0) {
      throw invalid(`sandbox pool refill delay must be a non-negative number of ms, not ${delay}`);
    }
    this.refillDelayMs = delay;
    if (options.limits) {
      this.profile = profileOf({ ...DEFAULT_SANDBOX_LIMITS, ...options.limits });
      this.fill();
    }
  }

  /** Processes waiting in the pool now (spawned, not yet handed out). Never more than `size`. */
  get idleCount(): number {
    this.prune();
    return this.idle.length;
  }

  /** Processes handed out and not yet over; the pool refills only while this is 0. */
  get activeCount(): number {
    return this.active;
  }

  /** True while the pool is spawning replacements in the background. */
  get refilling(): boolean {
    return this.spawning !== undefined;
  }

  /** A copy of the pool's counters. */
  get stats(): SandboxPoolStats {
    return { ...this.counters };
  }

  /** The pids of the waiting processes (for tests and diagnostics). */
  idlePids(): number[] {
    this.prune();
    return this.idle.flatMap((p) => (p.pid === undefined ? [] : [p.pid]));
  }

  /**
   * Resolves once the pool holds `size` processes whose runtime has started (or it is
   * closed). Fills the pool now, even while steps hold processes (an owner's explicit wait).
   */
  async ready(): Promise<void> {
    // Bounded: a machine where spawning fails must not make this spin.
    for (let attempt = 0; attempt < this.size * 3; attempt++) {
      if (this.closed) return;
      await this.spawning;
      this.prune();
      await Promise.all(this.idle.map((p) => p.booted.catch(() => undefined)));
      this.prune();
      if (this.closed || (this.idle.length >= this.size && !this.spawning)) return;
      this.fill(true);
    }
  }

  /**
   * A sandbox process bound to `bundleFile`: a waiting one from the pool when one was
   * spawned for these limits, else a new one (the pool adopts these limits for its next
   * processes). Either way the bundle starts loading now; the pool refills once the step
   * has run (or the process is disposed).
   */
  async acquire(bundleFile: string, limits: SandboxLimits): Promise<PooledSandboxProcess> {
    if (this.closed) throw new AirlockError('INTERNAL', 'the sandbox pool is closed');
    const wanted = profileOf(limits);
    this.prune();
    let chosen: IdleSandbox | undefined;
    const at = this.idle.findIndex((p) => fits(p.profile, wanted));
    if (at >= 0) [chosen] = this.idle.splice(at, 1);
    if (!chosen && !(this.profile && fits(this.profile, wanted))) {
      // Another profile: the waiting processes would never fit the steps to come.
      this.profile = wanted;
      const stale = this.idle.splice(0);
      void Promise.all(stale.map((p) => p.dispose()));
    }
    const pooled = chosen !== undefined;
    this.counters.acquired++;
    this.counters[pooled ? 'pooled' : 'spawnedOnDemand']++;
    // The pool refills only once no step is using it (see scheduleRefill): spawning forks
    // this process, and a start-up would compete with the run for the CPU.
    this.active++;
    this.cancelRefill();
    let over = false;
    const refill = () => {
      if (over) return;
      over = true;
      this.active--;
      this.scheduleRefill();
    };
    let idle: IdleSandbox;
    try {
      idle = chosen ?? (await spawnIdleSandbox(wanted));
    } catch (e) {
      refill();
      throw e;
    }
    try {
      const bound = await idle.bind(bundleFile, limits);
      return {
        pid: bound.pid,
        pooled,
        send: (mode, params, inputs) => bound.send(mode, params, inputs),
        async dispose() {
          await bound.dispose();
          refill();
        },
      };
    } catch (e) {
      await idle.dispose();
      refill();
      throw e;
    }
  }

  /** Kills the waiting processes and stops refilling. Handed-out processes are not touched. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelRefill();
    await this.spawning?.catch(() => undefined);
    const all = this.idle.splice(0);
    await Promise.all(all.map((p) => p.dispose()));
  }

  private prune(): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      if (!(this.idle[i] as IdleSandbox).available) {
        const [gone] = this.idle.splice(i, 1);
        void gone?.dispose();
      }
    }
  }

  /** Refills after {@link refillDelayMs} without any process handed out. */
  private scheduleRefill(): void {
    this.cancelRefill();
    if (this.closed || this.active > 0) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      if (this.active === 0) this.fill();
    }, this.refillDelayMs);
    this.refillTimer.unref();
  }

  private cancelRefill(): void {
    if (this.refillTimer) clearTimeout(this.refillTimer);
    this.refillTimer = undefined;
  }

  /**
   * Spawns replacements one after another (never several at once) until `size` wait, at
   * the lowest CPU priority; stops starting new ones as soon as a step takes a process
   * (the idle timer starts it again once that step is over) unless `evenIfBusy` ({@link ready}).
   */
  private fill(evenIfBusy = false): void {
    if (this.spawning || this.closed || !this.profile) return;
    // Started after the assignment: a loop that ends before its first await must still
    // clear `spawning` (set synchronously, the finally would run before it and leave it set).
    this.spawning = Promise.resolve().then(async () => {
      try {
        while (!this.closed && this.profile) {
          this.prune();
          if (this.idle.length >= this.size || (this.active > 0 && !evenIfBusy)) return;
          const profile = this.profile;
          this.counters.refillSpawns++;
          const idle = await spawnIdleSandbox(profile, await sandboxRuntime(), { background: true });
          if (this.closed || this.profile !== profile) {
            await idle.dispose();
            continue;
          }
          this.idle.push(idle);
          // The next spawn waits for this runtime to start: start-ups would only compete.
          await idle.booted.catch(() => undefined);
        }
      } catch {
        /* a failed spawn leaves the pool short; acquire spawns on demand and reports the error */
      } finally {
        this.spawning = undefined;
      }
    });
  }
}

function profileOf(limits: SandboxLimits): SandboxProfile {
  return { memoryMb: limits.memoryMb, timeoutMs: limits.timeoutMs };
}

/** A process fits a step with the same heap limit and a CPU backstop at least as long. */
function fits(have: SandboxProfile, want: SandboxProfile): boolean {
  return have.memoryMb === want.memoryMb && have.timeoutMs >= want.timeoutMs;
}
