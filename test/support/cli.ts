import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lake } from '../../shared/lake/Lake.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'airlock.mjs');

/** The outcome of one `airlock` process. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (undefined when it is not JSON). */
  json: any;
}

/** Runs the real `airlock` binary (the built bundle) as a child process. */
export function airlock(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...options.env },
      cwd: options.cwd ?? process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, stdout, stderr, json });
    });
  });
}

/** A fresh temp directory. */
export function tempDir(prefix = 'airlock-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Everything observable about a lake's state: each live branch's head and its tables'
 * versions. Read in-process (the SQLite catalog is safe to share across processes).
 */
export async function lakeState(dir: string): Promise<unknown> {
  const lake = await Lake.open({ backend: 'local', dir });
  try {
    const branches = await lake.catalog.listBranches();
    const tables: Record<string, unknown> = {};
    for (const b of branches) tables[b.name] = await lake.catalog.listTables(b.head);
    return { heads: branches.map((b) => [b.name, b.head]), tables };
  } finally {
    await lake.close();
  }
}
