import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { notFound } from '../../errors/index.js';
import { type CodeStep, type DescribeCodeStepOptions, describeCodeStep } from './describeCodeStep.js';
import { parseSqlStep, type SqlStep } from './parseSqlStep.js';

/** A step file of a pipeline folder and how it is executed. */
export interface StepFile {
  file: string;
  kind: 'sql' | 'code';
}

/** Either kind of parsed step. */
export type Step = SqlStep | CodeStep;

/**
 * Lists the step files of a pipeline folder (top level only), sorted by name: `*.sql` are
 * SQL steps; `*.ts`, `*.js`, `*.mjs` are code steps, except tests (`*.test.*`,
 * `*.spec.*`) and type declarations (`*.d.ts`). Hidden files and `node_modules` are
 * skipped.
 *
 * @throws AirlockError `NOT_FOUND` when the folder does not exist.
 */
export async function findStepFiles(pipelineDir: string): Promise<StepFile[]> {
  const dir = resolve(pipelineDir);
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: unknown) => {
    throw notFound(`pipeline folder ${pipelineDir} does not exist or cannot be read`, { dir, cause: String(e) });
  });
  const out: StepFile[] = [];
  for (const e of entries) {
    if (!e.isFile() || e.name.startsWith('.')) continue;
    if (/\.(test|spec)\./.test(e.name) || e.name.endsWith('.d.ts')) continue;
    if (e.name.endsWith('.sql')) out.push({ file: join(dir, e.name), kind: 'sql' });
    else if (/\.(ts|js|mjs)$/.test(e.name)) out.push({ file: join(dir, e.name), kind: 'code' });
  }
  return out.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/**
 * Parses every step of a pipeline folder: SQL steps in-process (text only), code steps
 * through {@link describeCodeStep} (in the sandbox). Building the DAG (cycles, two steps
 * writing one table) is the run's job.
 */
export async function loadPipelineSteps(pipelineDir: string, options: DescribeCodeStepOptions = {}): Promise<Step[]> {
  const files = await findStepFiles(pipelineDir);
  const opts = { ...options, pipelineDir: options.pipelineDir ?? pipelineDir };
  return Promise.all(
    files.map(async (f) =>
      f.kind === 'sql' ? parseSqlStep(f.file, await readFile(f.file, 'utf8')) : describeCodeStep(f.file, opts),
    ),
  );
}
