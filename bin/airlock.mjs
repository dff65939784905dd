#!/usr/bin/env node
// The `airlock` command. Runs the bundled CLI (built by `npm install` / `npm run build`);
// from a source checkout without a build it falls back to running the TypeScript via tsx.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The AWS SDK warns on Node 20; keep CLI output clean (it is documented in the README).
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const text = typeof warning === 'string' ? warning : (warning?.message ?? '');
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
  if (type === 'NodeVersionSupportWarning' || /Node\.js .*(no longer|end of support)|NodeVersionSupport/i.test(text))
    return;
  emitWarning(warning, ...rest);
};

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist', 'cli.mjs');
let mod;
if (existsSync(bundle)) {
  mod = await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(pathToFileURL(join(root, 'cli', 'main.ts')).href);
}
const code = await mod.main(process.argv.slice(2));
process.exitCode = code;
