import { spawn, spawnSync } from 'node:child_process';

/**
 * What the operating system lets the sandbox add around the Node permission model.
 * Detected once per process by trying each wrapper with `true`.
 */
export interface IsolationSupport {
  /** A fresh Linux network namespace (`unshare -n`): the step has no network at all. */
  network: boolean;
  /** A fresh PID namespace (`unshare -p -f --kill-child`): the step cannot signal other processes. */
  pid: boolean;
  /** Running as an unprivileged uid/gid (`setpriv`, only when the parent is root). */
  unprivilegedUser: boolean;
  /** `prlimit --cpu` is available: a CPU-time rlimit backs up the wall-clock timer. */
  cpuLimit: boolean;
  /** The command prefix placed before `node`. */
  prefix: string[];
  /** Why a layer is missing, for the run's result and logs. */
  warnings: string[];
}

/** The uid/gid the step drops to when the parent runs as root (`nobody`). */
const NOBODY = 65534;

function works(cmd: string[]): boolean {
  const [bin, ...args] = cmd;
  if (!bin) return false;
  const r = spawnSync(bin, [...args, 'true'], { stdio: 'ignore', timeout: 5000 });
  return r.status === 0;
}

let detected: IsolationSupport | undefined;
let detecting: Promise<IsolationSupport> | undefined;

function worksAsync(cmd: string[]): Promise<boolean> {
  const [bin, ...args] = cmd;
  if (!bin) return Promise.resolve(false);
  return new Promise((resolve) => {
    const child = spawn(bin, [...args, 'true'], { stdio: 'ignore', timeout: 5000 });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

/**
 * {@link detectIsolation} without blocking the event loop: the probes run in parallel,
 * as child processes, once per process; the sandbox uses this one.
 */
export function isolationSupport(): Promise<IsolationSupport> {
  if (detected) return Promise.resolve(detected);
  detecting ??= (async () => {
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const drop = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'];
    const full = ['unshare', '-n', '-p', '-f', '--kill-child', '--'];
    const net = ['unshare', '-n', '--'];
    const probes = [
      full,
      net,
      ...(isRoot ? [[...full, ...drop], [...net, ...drop], drop] : []),
      ['prlimit', '--cpu=5', '--'],
    ];
    const results = new Map<string, boolean>();
    if (process.platform === 'linux') {
      await Promise.all(probes.map(async (p) => results.set(p.join(' '), await worksAsync(p))));
    }
    detected ??= decide(isRoot, (cmd) => results.get(cmd.join(' ')) ?? false);
    return detected;
  })();
  return detecting;
}

/**
 * Detects the OS isolation available to sandboxed steps (once, then cached).
 *
 * Why each layer exists — the Node 20 permission model blocks files, child processes,
 * workers and addons, but not:
 * - the network: a step could send its inputs anywhere → network namespace;
 * - signals: `process.kill(process.ppid)` would kill the orchestrator → PID namespace;
 * - root's ambient authority: if a permission-model bug let a step out, it would act as
 *   root → drop to `nobody` when the parent is root.
 * Where a layer is not available (not Linux, no `unshare`, no privilege) the step still
 * runs, and the missing layer is named in `warnings`.
 */
export function detectIsolation(): IsolationSupport {
  if (detected) return detected;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  detected = decide(isRoot, works);
  return detected;
}

/** Picks the layers from what the probes found (`works` answers for one wrapper command). */
function decide(isRoot: boolean, works: (cmd: string[]) => boolean): IsolationSupport {
  const warnings: string[] = [];
  if (process.platform !== 'linux') {
    return {
      network: false,
      pid: false,
      unprivilegedUser: false,
      cpuLimit: false,
      prefix: [],
      warnings: [
        `sandbox: no network or PID isolation on ${process.platform} (Linux namespaces unavailable); steps can open network connections`,
      ],
    };
  }
  let prefix: string[] = [];
  let network = false;
  let pid = false;
  if (works(['unshare', '-n', '-p', '-f', '--kill-child', '--'])) {
    prefix = ['unshare', '-n', '-p', '-f', '--kill-child', '--'];
    network = pid = true;
  } else if (works(['unshare', '-n', '--'])) {
    prefix = ['unshare', '-n', '--'];
    network = true;
    warnings.push(
      'sandbox: no PID namespace (unshare -p not permitted); a step could signal processes of the same user',
    );
  } else {
    warnings.push(
      'sandbox: no network isolation (unshare -n is not permitted here); steps can open network connections — run as root or enable unprivileged user namespaces',
    );
  }
  let unprivilegedUser = false;
  if (isRoot) {
    const drop = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'];
    if (works([...prefix, ...drop])) {
      prefix = [...prefix, ...drop];
      unprivilegedUser = true;
    } else {
      warnings.push(
        'sandbox: running as root and setpriv is unavailable; steps run as root (the permission model still applies)',
      );
    }
  }
  const cpuLimit = works(['prlimit', '--cpu=5', '--']);
  return { network, pid, unprivilegedUser, cpuLimit, prefix, warnings };
}
