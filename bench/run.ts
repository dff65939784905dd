/**
 * Runs every benchmark in `bench/` (`*.bench.ts`, `*.bench.mts`), one after another, each
 * in its own process (`npx tsx <file>`) so one bench's engines and caches never skew the
 * next. Stops at the first failure with its exit code. `npm run bench` calls this after a
 * build.
 *
 *   npx tsx bench/run.ts            # all benchmarks, in name order
 *   npx tsx bench/run.ts catalog    # only those whose file name contains "catalog"
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => /\.bench\.m?ts$/.test(f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

if (files.length === 0) {
  console.error(`no benchmark matches ${filters.length > 0 ? filters.join(', ') : 'bench/*.bench.ts'}`);
  process.exit(1);
}

const root = dirname(here);
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const summary: string[] = [];
for (const file of files) {
  const path = relative(root, join(here, file));
  console.log(`\n### ${path}`);
  const started = performance.now();
  const result = spawnSync(npx, ['tsx', path], { cwd: root, stdio: 'inherit', env: process.env });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (result.error || result.status !== 0) {
    const why = result.error
      ? result.error.message
      : result.signal
        ? `signal ${result.signal}`
        : `exit code ${result.status}`;
    console.error(`\n${path} failed after ${seconds} s (${why}); stopping.`);
    process.exit(result.status || 1);
  }
  summary.push(`${path}: ${seconds} s`);
}
console.log(`\nall benchmarks passed:\n${summary.map((s) => `  ${s}`).join('\n')}`);
