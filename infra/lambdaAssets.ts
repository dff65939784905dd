import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssetHashType } from 'aws-cdk-lib';
import { Code } from 'aws-cdk-lib/aws-lambda';
import { buildSync } from 'esbuild';

/** The repository root (this file lives in `<root>/infra`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What goes into one Lambda code asset. */
export interface LambdaAssetSpec {
  /** Names the asset directory (the content hash makes it unique). */
  name: string;
  /** Output file name (without `.mjs`) → entry source, relative to the repository root. */
  entries: Record<string, string>;
  /**
   * Packages shipped as files in the asset's `node_modules` instead of being bundled, with
   * their installed dependencies: native modules (DuckDB, esbuild) and packages that are
   * read from disk at run time (apache-arrow, which the runner re-bundles into every code
   * step; parquet-wasm, which loads its `.wasm` file next to itself).
   */
  packages: string[];
  /** Files copied to the asset root, relative to the repository root. */
  files?: string[];
}

/**
 * Packages the code uses only on the embedded backend (SQLite), never on
 * `AIRLOCK_BACKEND=aws`. They are not shipped; some modules still import them statically
 * (the store index re-exports every adapter), so the bundle gets a stand-in that loads
 * fine and fails clearly if it were ever called.
 */
const NEVER_SHIPPED = ['better-sqlite3'];

/**
 * Builds a Lambda code directory with the locally installed esbuild — no Docker, no
 * network, so `cdk synth` works offline — and returns its path. Each entry becomes one
 * self-contained ESM file (`<name>.mjs`, handler `<name>.handler`) with everything bundled
 * except `packages`, which are copied from this checkout's `node_modules` (so native
 * binaries are those installed here: build on linux-x64 for the x86_64 functions).
 *
 * Directories are content-addressed (`<tmpdir>/airlock-lambda-assets/<name>-<hash>`) and
 * made by an atomic rename, so repeated and concurrent synths reuse them safely.
 */
export function buildLambdaAsset(spec: LambdaAssetSpec): { dir: string; hash: string } {
  const result = buildSync({
    entryPoints: Object.fromEntries(
      Object.entries(spec.entries).map(([out, source]) => [out, join(REPO_ROOT, source)]),
    ),
    outdir: 'lambda',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: spec.packages.flatMap((p) => [p, `${p}/*`]),
    absWorkingDir: REPO_ROOT,
    alias: Object.fromEntries(NEVER_SHIPPED.map((p) => [p, './infra/notShipped.ts'])),
    // CommonJS dependencies inside an ESM bundle still call require() for Node built-ins.
    banner: {
      js: "import { createRequire as __airlockLambdaRequire } from 'node:module'; const require = __airlockLambdaRequire(import.meta.url);",
    },
    legalComments: 'none',
    logLevel: 'silent',
  });
  const packages = packageClosure(spec.packages);
  const files = spec.files ?? [];
  const hash = createHash('sha256');
  for (const out of result.outputFiles) hash.update(basename(out.path)).update(out.contents);
  for (const p of packages) hash.update(`${p}@${packageVersion(p)}\n`);
  for (const f of files) hash.update(f).update(readFileSync(join(REPO_ROOT, f)));
  const digest = hash.digest('hex');
  const dir = join(tmpdir(), 'airlock-lambda-assets', `${spec.name}-${digest.slice(0, 20)}`);
  if (existsSync(join(dir, '.complete'))) {
    utimesSync(dir, new Date(), new Date()); // in use: not stale
    return { dir, hash: digest };
  }
  pruneStale(dirname(dir), spec.name);

  const staging = `${dir}.${process.pid}.${Date.now()}.tmp`;
  mkdirSync(staging, { recursive: true });
  try {
    for (const out of result.outputFiles) writeFileSync(join(staging, basename(out.path)), out.contents);
    writeFileSync(join(staging, 'package.json'), `${JSON.stringify({ type: 'module', private: true }, null, 2)}\n`);
    for (const p of packages) {
      cpSync(join(REPO_ROOT, 'node_modules', p), join(staging, 'node_modules', p), {
        recursive: true,
        dereference: true,
      });
    }
    for (const f of files) cpSync(join(REPO_ROOT, f), join(staging, basename(f)));
    writeFileSync(join(staging, '.complete'), '');
    try {
      renameSync(staging, dir);
    } catch (error) {
      // Another synth built the same content first: use theirs.
      if (!existsSync(join(dir, '.complete'))) throw error;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return { dir, hash: digest };
}

/**
 * The Lambda code for `spec` ({@link buildLambdaAsset}), fingerprinted by the content hash
 * already computed, so CDK does not hash the ~120 MB directory again on every synth.
 */
export function lambdaCode(spec: LambdaAssetSpec): Code {
  const { dir, hash } = buildLambdaAsset(spec);
  return Code.fromAsset(dir, { assetHashType: AssetHashType.CUSTOM, assetHash: hash });
}

/**
 * `names` plus every package they depend on that is installed here (dependencies and the
 * optional ones present, e.g. this platform's DuckDB binding), type-only packages left out.
 */
export function packageClosure(names: string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string, optional: boolean) => {
    if (seen.has(name) || name.startsWith('@types/')) return;
    if (!existsSync(join(REPO_ROOT, 'node_modules', name, 'package.json'))) {
      if (optional) return;
      throw new Error(`Lambda asset: package '${name}' is not installed; run npm install`);
    }
    seen.add(name);
    const pkg = readPackageJson(name);
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, true);
  };
  for (const name of names) visit(name, false);
  return [...seen].sort();
}

interface PackageJson {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readPackageJson(name: string): PackageJson {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as PackageJson;
}

function packageVersion(name: string): string {
  return readPackageJson(name).version ?? '0.0.0';
}

/** A day: older code directories of the same function set are removed when a new one is built. */
const STALE_MS = 24 * 60 * 60 * 1000;

/** Removes `<name>-<hash>` directories not touched for a day (each is ~120 MB). */
function pruneStale(root: string, name: string): void {
  if (!existsSync(root)) return;
  const now = Date.now();
  for (const entry of readdirSync(root)) {
    if (!entry.startsWith(`${name}-`)) continue;
    const path = join(root, entry);
    try {
      if (now - statSync(path).mtimeMs > STALE_MS) rmSync(path, { recursive: true, force: true });
    } catch {
      // Removed by a concurrent synth: nothing to do.
    }
  }
}
