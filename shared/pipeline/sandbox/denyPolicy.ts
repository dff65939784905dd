import { builtinModules } from 'node:module';

/**
 * The lake's import policy for code steps: npm packages and Node built-ins a step may not
 * import. Names are bare (`left-pad`, `@acme/http`, `child_process`); a built-in also
 * matches its `node:` form and its subpaths (`fs` denies `fs/promises` and
 * `node:fs/promises`), a package also matches its subpaths (`lodash` denies `lodash/fp`).
 */
export interface DenyPolicy {
  /** npm package names, scoped or not. `@scope/*` denies every package of a scope. */
  packages: string[];
  /** Node built-in module names, with or without the `node:` prefix. */
  builtins: string[];
}

/**
 * Built-ins denied unless the lake says otherwise. The list is the first layer only: it
 * refuses a step at bundle time with a clear message, before anything runs, but it sees
 * only static imports. The run-time layers (permission model, namespaces) stop the same
 * powers when they are reached some other way, e.g. `import(variable)`.
 *
 * - processes and threads: `child_process`, `cluster`, `worker_threads`
 * - network: `net`, `tls`, `dgram`, `dns`, `http`, `https`, `http2`
 * - files: `fs` (and `fs/promises`)
 * - escape hatches: `vm` (new contexts), `inspector` (debugger port), `module`
 *   (`createRequire`, loader hooks), `v8` (heap snapshots to disk), `wasi`, `repl`,
 *   `trace_events` (writes files)
 *
 * `process` is not listed: it is a global, so denying its import would only give a false
 * sense of safety; the empty environment and the permission model cover it.
 */
export const DEFAULT_DENIED_BUILTINS: readonly string[] = Object.freeze([
  'child_process',
  'cluster',
  'worker_threads',
  'net',
  'tls',
  'dgram',
  'dns',
  'http',
  'https',
  'http2',
  'fs',
  'vm',
  'inspector',
  'module',
  'v8',
  'wasi',
  'repl',
  'trace_events',
]);

/** The policy used when the lake configures none: the default built-ins, no packages. */
export const DEFAULT_DENY_POLICY: DenyPolicy = Object.freeze({
  packages: Object.freeze([]) as unknown as string[],
  builtins: DEFAULT_DENIED_BUILTINS as string[],
}) as DenyPolicy;

const BUILTINS = new Set(builtinModules.map((m) => m.replace(/^node:/, '')));

/** True when `specifier` names a Node built-in (`fs`, `node:fs/promises`, `node:test`…). */
export function isBuiltinSpecifier(specifier: string): boolean {
  if (specifier.startsWith('node:')) return true;
  return BUILTINS.has(specifier) || BUILTINS.has(specifier.split('/')[0] ?? '');
}

/** The package name of a bare specifier: `@a/b/c` → `@a/b`, `x/y` → `x`. */
export function packageNameOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** True when `specifier` is a bare (package or built-in) specifier, not a path. */
export function isBareSpecifier(specifier: string): boolean {
  return !(
    specifier.startsWith('.') ||
    specifier.startsWith('/') ||
    specifier.startsWith('file:') ||
    /^[A-Za-z]:[\\/]/.test(specifier)
  );
}

/**
 * Which rule of `policy` denies `specifier`, or `undefined` when it is allowed.
 *
 * @example
 * deniedBy('node:fs/promises', DEFAULT_DENY_POLICY) // → 'built-in fs'
 * deniedBy('lodash', { packages: ['lodash'], builtins: [] }) // → 'package lodash'
 */
export function deniedBy(specifier: string, policy: DenyPolicy): string | undefined {
  if (isBuiltinSpecifier(specifier)) {
    const name = specifier.replace(/^node:/, '');
    for (const raw of policy.builtins) {
      const rule = raw.replace(/^node:/, '');
      if (name === rule || name.startsWith(`${rule}/`)) return `built-in ${rule}`;
    }
    return undefined;
  }
  if (!isBareSpecifier(specifier)) return undefined;
  const pkg = packageNameOf(specifier);
  for (const rule of policy.packages) {
    if (rule === pkg) return `package ${rule}`;
    if (rule.endsWith('/*') && rule.startsWith('@') && pkg.startsWith(rule.slice(0, -1))) {
      return `package ${rule}`;
    }
  }
  return undefined;
}

/** A stable text form of a policy, part of the bundle cache key. */
export function policyKey(policy: DenyPolicy): string {
  const norm = (xs: readonly string[]) => [...new Set(xs.map((x) => x.replace(/^node:/, '')))].sort();
  return JSON.stringify({ p: norm(policy.packages), b: norm(policy.builtins) });
}
