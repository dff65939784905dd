// Bundles the CLI (and later the Lambda handlers) with esbuild. Dependencies stay
// external: they are installed next to the bundle, and native modules cannot be bundled.
import { build } from 'esbuild';

const started = Date.now();
await build({
  entryPoints: { cli: 'cli/main.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  // Chunks keep heavy engines (DuckDB, Arrow, AWS SDK) out of start-up for commands that do not use them.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  logLevel: 'warning',
});
console.log(`built dist/cli.mjs in ${Date.now() - started} ms`);
