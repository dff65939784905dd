import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, realpath, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';
import { AirlockError, denied, invalid } from '../../errors/index.js';
import {
  DEFAULT_DENY_POLICY,
  type DenyPolicy,
  deniedBy,
  isBareSpecifier,
  isBuiltinSpecifier,
  packageNameOf,
  policyKey,
} from './denyPolicy.js';

/** Options of {@link bundleStep}. */
export interface BundleStepOptions {
  /** The pipeline folder; the step may import files and packages only from inside it. Default: the step's folder. */
  pipelineDir?: string;
  /** The lake's import policy. Default: {@link DEFAULT_DENY_POLICY}. */
  deny?: DenyPolicy;
  /** Where bundles are cached. Default: `<os tmpdir>/airlock-bundles-<uid>`. */
  cacheDir?: string;
}

/** A step bundled with the sandbox harness: one self-contained ESM file. */
export interface StepBundle {
  /** Absolute path of the bundle (`.mjs`); the only file the sandboxed process may read. */
  file: string;
  /** Absolute path of the step source it was built from. */
  step: string;
  /** Content hash (cache key) of the bundle. */
  hash: string;
  /** True when the bundle came from the cache. */
  cached: boolean;
}

/**
 * The folder holding the harness sources. Next to this module when run from source; when
 * this module is inside the CLI bundle (`dist/chunks`), the package's own
 * `shared/pipeline/sandbox`.
 */
const HERE = ((): string => {
  const self = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    self,
    join(self, '..', '..', 'shared', 'pipeline', 'sandbox'),
    join(self, '..', 'shared', 'pipeline', 'sandbox'),
  ];
  return candidates.find((d) => existsSync(join(d, 'harness.ts')) || existsSync(join(d, 'harness.js'))) ?? self;
})();
const HARNESS_FILES = ['harness', 'protocol', 'rowsToTable'];
/** How bundles use the runtime; part of every cache key, so changing it rebuilds bundles. */
const BUNDLE_FORMAT = 'runtime-shim-1';

function harnessEntry(): string {
  for (const ext of ['.ts', '.js', '.mjs']) {
    const f = join(HERE, `harness${ext}`);
    if (existsSync(f)) return f;
  }
  throw new AirlockError('INTERNAL', `sandbox harness not found next to ${HERE}`);
}

let harnessHash: Promise<string> | undefined;
/** Hash of everything trusted that goes into a bundle: harness sources, arrow and esbuild versions. */
function trustedHash(): Promise<string> {
  harnessHash ??= (async () => {
    const h = createHash('sha256').update(`esbuild ${esbuild.version}\n${BUNDLE_FORMAT}\n`);
    for (const name of HARNESS_FILES) {
      for (const ext of ['.ts', '.js']) {
        const f = join(HERE, name + ext);
        if (existsSync(f)) h.update(name + ext).update(await readFile(f));
      }
    }
    const arrowPkg = await readFile(await arrowPackageJson());
    return h.update(arrowPkg).digest('hex');
  })();
  return harnessHash;
}

let arrowPkgPath: Promise<string> | undefined;
function arrowPackageJson(): Promise<string> {
  arrowPkgPath ??= findArrowPackageJson();
  return arrowPkgPath;
}

async function findArrowPackageJson(): Promise<string> {
  // apache-arrow's exports map hides package.json; walk up from its entry point instead.
  let dir = dirname(createRequire(import.meta.url).resolve('apache-arrow'));
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(await readFile(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'apache-arrow') return candidate;
    }
    dir = dirname(dir);
  }
  throw new AirlockError('INTERNAL', 'apache-arrow is not installed next to the sandbox');
}

function within(dir: string, file: string): boolean {
  const rel = relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && !/^[A-Za-z]:/.test(rel));
}

function defaultCacheDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return join(tmpdir(), `airlock-bundles-${uid}`);
}

interface Manifest {
  files: Array<{ path: string; sha256: string }>;
}

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

async function manifestStillValid(manifestFile: string): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as Manifest;
    for (const f of manifest.files) {
      if (sha256(await readFile(f.path)) !== f.sha256) return false;
    }
    return true;
  } catch {
    return false;
  }
}

interface Violation {
  specifier: string;
  importer: string;
  reason: string;
  kind: 'denied' | 'outside';
}

const RUNTIME_NS = 'airlock-runtime';
const RUNTIME_ID = 'airlock:runtime';
const SHIM_NS = 'airlock-runtime-shim';
const INLINE_ID = 'airlock:runtime-inline';

/**
 * The global under which a sandbox process may hold the trusted runtime already loaded
 * (see {@link sandboxRuntime}). Keyed by the runtime's hash, so a bundle only ever uses a
 * preloaded runtime built from exactly the sources it was built against.
 */
async function runtimeKey(): Promise<string> {
  return `airlock.runtime.${(await trustedHash()).slice(0, 32)}`;
}

let preloadable: Promise<{ key: string; source: string } | undefined> | undefined;
/**
 * The trusted runtime (harness + apache-arrow) as ESM source, and the global key a step
 * bundle looks under for it. A pooled sandbox process evaluates it while it waits, so a
 * step bound to it later skips the runtime's evaluation — most of what loading a bundle
 * costs. `undefined` where it cannot be built (no esbuild or harness sources, e.g. in a
 * deployed function): processes then load the copy inlined in every bundle.
 */
export function sandboxRuntime(cacheDir = defaultCacheDir()): Promise<{ key: string; source: string } | undefined> {
  preloadable ??= (async () => {
    try {
      return { key: await runtimeKey(), source: await runtime(cacheDir) };
    } catch {
      return undefined;
    }
  })();
  return preloadable;
}

let runtimeSource: Promise<string> | undefined;
/**
 * The trusted half of every bundle, built once: the harness plus all of apache-arrow as
 * one ESM module. Step bundles load it as a virtual module instead of re-resolving the
 * ~300 files of arrow and its dependencies each time, which keeps a cold bundle fast.
 */
function runtime(cacheDir: string): Promise<string> {
  runtimeSource ??= (async () => {
    const file = join(cacheDir, `runtime-${(await trustedHash()).slice(0, 32)}.mjs`);
    if (existsSync(file)) return readFile(file, 'utf8');
    const result = await esbuild.build({
      stdin: {
        contents: `export { runHarness } from ${JSON.stringify(harnessEntry())};\nexport * from 'apache-arrow';`,
        resolveDir: HERE,
        sourcefile: 'airlock-runtime.mjs',
        loader: 'js',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      write: false,
      logLevel: 'silent',
      legalComments: 'none',
    });
    const text = result.outputFiles[0]?.text;
    if (text === undefined) throw new AirlockError('INTERNAL', 'esbuild produced no sandbox runtime');
    await writeAtomically(file, text);
    return text;
  })();
  runtimeSource.catch(() => {
    runtimeSource = undefined;
  });
  return runtimeSource;
}

export async function writeAtomically(file: string, contents: string | Uint8Array): Promise<void> {
  // Private to this user; a run stages its bundle where the sandbox uid can read it.
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, contents, { mode: 0o644 });
  await rename(tmp, file);
}

/**
 * The policy plugin. Every import of the step and of the packages it pulls in goes
 * through it, because bundling runs in the parent with the parent's file access:
 *
 * - a denied built-in or package is refused (it would give the step a power the lake
 *   forbids; refusing at bundle time names the import before anything runs);
 * - any file that resolves outside the pipeline folder is refused (otherwise
 *   `import secrets from '../../../.aws/credentials.json'` would inline a parent file
 *   into the bundle — an exfiltration path that no run-time layer could see);
 * - `apache-arrow` always resolves to the trusted runtime, so the Tables the step
 *   receives and returns are instances of the same classes the harness uses.
 */
function policyPlugin(opts: {
  pipelineDir: string;
  runtime: string;
  runtimeKey: string;
  deny: DenyPolicy;
  violations: Violation[];
}): esbuild.Plugin {
  const refuse = (v: Violation) => {
    opts.violations.push(v);
    return { errors: [{ text: `import '${v.specifier}' is refused: ${v.reason}` }] };
  };
  return {
    name: 'airlock-step-policy',
    setup(build) {
      build.onLoad({ filter: /.*/, namespace: RUNTIME_NS }, () => ({
        contents: opts.runtime,
        loader: 'js',
        resolveDir: HERE,
      }));
      // The runtime as the step and the harness see it: the copy a pooled process has
      // preloaded under this runtime's key, else the inlined copy, evaluated only then
      // (a `require`d ES module is initialised lazily by esbuild).
      build.onLoad({ filter: /.*/, namespace: SHIM_NS }, () => ({
        contents: `module.exports = globalThis[Symbol.for(${JSON.stringify(opts.runtimeKey)})] ?? require(${JSON.stringify(INLINE_ID)});`,
        loader: 'js',
        resolveDir: HERE,
      }));
      build.onResolve({ filter: /.*/ }, async (args) => {
        if ((args.pluginData as { inner?: boolean } | undefined)?.inner) return undefined;
        if (args.path === INLINE_ID && args.namespace === SHIM_NS) return { path: INLINE_ID, namespace: RUNTIME_NS };
        if (args.namespace === RUNTIME_NS) {
          // The trusted runtime imports only built-ins (the harness's fd-3 channel).
          return isBuiltinSpecifier(args.path)
            ? { path: args.path, external: true }
            : { errors: [{ text: `runtime import ${args.path}` }] };
        }
        if (args.path === RUNTIME_ID) return { path: RUNTIME_ID, namespace: SHIM_NS };
        const reason = deniedBy(args.path, opts.deny);
        if (reason) {
          return refuse({
            specifier: args.path,
            importer: args.importer,
            reason: `denied by the lake's policy (${reason})`,
            kind: 'denied',
          });
        }
        if (isBuiltinSpecifier(args.path)) return { path: args.path, external: true };
        if (isBareSpecifier(args.path) && packageNameOf(args.path) === 'apache-arrow') {
          return { path: RUNTIME_ID, namespace: SHIM_NS };
        }
        const r = await build.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
          pluginData: { inner: true },
        });
        if (r.errors.length > 0) return { errors: r.errors };
        if (r.external || r.path === '') return r;
        const real = await realpath(r.path).catch(() => r.path);
        if (!within(opts.pipelineDir, real)) {
          return refuse({
            specifier: args.path,
            importer: args.importer,
            reason: `it resolves to ${real}, outside the pipeline folder ${opts.pipelineDir} (install packages in ${join(opts.pipelineDir, 'node_modules')})`,
            kind: 'outside',
          });
        }
        return { path: real };
      });
    },
  };
}

/**
 * Bundles a code step with the sandbox harness into one ESM file that the sandbox runs
 * with read access to that file only. Imports are checked by the lake's deny policy and
 * confined to the pipeline folder (see the plugin above): a step that imports a denied
 * built-in or package is refused here, with an error naming the import and the file,
 * before any of its code runs.
 *
 * Bundles are cached by content: the key covers the step source, the harness, the
 * esbuild and apache-arrow versions, the policy and the folders; a hit is re-validated
 * against the SHA-256 of every pipeline-folder file the bundle included, so an edited
 * helper module or an upgraded package in `node_modules` rebuilds it.
 *
 * @throws AirlockError `DENIED` for a denied or out-of-folder import (details: `imports`),
 *   `INVALID` when the step does not compile or an import cannot be resolved.
 * @example
 * const bundle = await bundleStep('pipelines/ml/train.mjs', { deny: { packages: ['left-pad'], builtins: ['child_process'] } });
 */
export async function bundleStep(file: string, options: BundleStepOptions = {}): Promise<StepBundle> {
  const step = await realpath(resolve(file)).catch((e: unknown) => {
    throw invalid(`code step ${file} cannot be read`, { file }, e);
  });
  const pipelineDir = await realpath(resolve(options.pipelineDir ?? dirname(step)));
  if (!within(pipelineDir, step)) {
    throw invalid(`code step ${step} is not inside its pipeline folder ${pipelineDir}`, { file: step });
  }
  const deny = options.deny ?? DEFAULT_DENY_POLICY;
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const source = await readFile(step);
  const key = sha256([await trustedHash(), policyKey(deny), step, pipelineDir, sha256(source)].join('\n')).slice(0, 32);
  const bundleFile = join(cacheDir, `${key}.mjs`);
  const manifestFile = join(cacheDir, `${key}.json`);
  if (existsSync(bundleFile) && (await manifestStillValid(manifestFile))) {
    return { file: bundleFile, step, hash: key, cached: true };
  }

  const runtimeText = await runtime(cacheDir);
  const violations: Violation[] = [];
  const entry = [
    `import { runHarness } from '${RUNTIME_ID}';`,
    `runHarness(() => import(${JSON.stringify(step)}));`,
  ].join('\n');
  let result: esbuild.BuildResult<{ metafile: true; write: false }>;
  try {
    result = await esbuild.build({
      stdin: { contents: entry, resolveDir: HERE, sourcefile: 'airlock-step-entry.mjs', loader: 'js' },
      absWorkingDir: pipelineDir,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      write: false,
      metafile: true,
      logLevel: 'silent',
      // No source map: with --enable-source-maps the child parsed it on every start,
      // doubling start-up; stacks keep function names (mapping them back to the step
      // source in the parent is a follow-up).
      sourcemap: false,
      legalComments: 'none',
      // CommonJS packages that `require()` a built-in need a real `require` in ESM output.
      banner: {
        js: "import { createRequire as __airlockCreateRequire } from 'node:module'; const require = __airlockCreateRequire(import.meta.url);",
      },
      plugins: [policyPlugin({ pipelineDir, runtime: runtimeText, runtimeKey: await runtimeKey(), deny, violations })],
    });
  } catch (e) {
    const name = basename(step);
    if (violations.length > 0) {
      const lines = violations.map(
        (v) => `'${v.specifier}' imported by ${v.importer === '<stdin>' ? step : v.importer}: ${v.reason}`,
      );
      const first = violations[0] as Violation;
      throw denied(`code step ${name} is refused before it runs: it imports ${lines.join('; ')}`, {
        file: step,
        imports: violations.map((v) => ({ import: v.specifier, importer: v.importer, kind: v.kind, reason: v.reason })),
        import: first.specifier,
      });
    }
    const msgs = (e as { errors?: esbuild.Message[] }).errors ?? [];
    const text = msgs
      .map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ${m.text}` : m.text))
      .join('; ');
    throw invalid(`code step ${name} does not build: ${text || String(e)}`, { file: step }, e);
  }
  const out = result.outputFiles[0];
  if (!out) throw new AirlockError('INTERNAL', `esbuild produced no output for ${step}`);

  const files: Manifest['files'] = [];
  for (const input of Object.keys(result.metafile.inputs)) {
    const abs = resolve(pipelineDir, input);
    if (within(pipelineDir, abs) && existsSync(abs)) files.push({ path: abs, sha256: sha256(await readFile(abs)) });
  }
  await writeAtomically(bundleFile, out.contents);
  await writeAtomically(manifestFile, JSON.stringify({ files } satisfies Manifest));
  return { file: bundleFile, step, hash: key, cached: false };
}

/**
 * Where the declaration of a bundle (what describe mode returned) is kept, so later runs
 * of unchanged code need not start a sandbox just to read it. Named after the SHA-256 of
 * the bundle's bytes, so it validates itself: a rebuilt or different bundle has another
 * name, whatever the cache key or the `cached` flag said.
 */
export async function describedFile(bundleFile: string): Promise<string> {
  return join(dirname(bundleFile), `describe-${sha256(await readFile(bundleFile))}.json`);
}
