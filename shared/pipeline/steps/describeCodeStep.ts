import { basename } from 'node:path';
import { invalid } from '../../errors/index.js';
import {
  type BundleStepOptions,
  bundleStep,
  describeStepBundle,
  type SandboxLimits,
  type StepBundle,
} from '../sandbox/index.js';
import { type Expectation, parseExpectation } from './expectations.js';
import { checkTableName } from './tableName.js';

/** One declared input of a code step, after normalisation (`'ns.t'` → `{ table: 'ns.t' }`). */
export interface CodeStepInput {
  table: string;
  /** Columns to read (projection pushdown); all columns when absent. */
  columns?: string[];
  /**
   * A SQL predicate to push down (`amount > 0`). Written by the step author: the query
   * engine must parse it as one expression and bind it, never splice it into a query.
   */
  filter?: string;
}

/** A code step's static declaration plus its bundle, ready to run. */
export interface CodeStep {
  kind: 'code';
  file: string;
  /** The step's name: its file name (`train.mjs`). */
  name: string;
  output: string;
  /** Inputs by the names `run` receives them under. */
  inputs: Record<string, CodeStepInput>;
  expect: Expectation[];
  /** The sandbox bundle the declaration was read from; run this same bundle. */
  bundle: StepBundle;
}

/** Options of {@link describeCodeStep}: bundling options plus limits for the describe run. */
export interface DescribeCodeStepOptions extends BundleStepOptions {
  limits?: Partial<SandboxLimits>;
}

const INPUT_NAME = /^[A-Za-z_$][A-Za-z0-9_$]{0,62}$/;
const COLUMN = /^[a-z_][a-z0-9_]{0,62}$/;
const MAX_FILTER = 4000;

/**
 * Validates the declaration a sandboxed step reported. It came from untrusted code, so
 * every field is checked for type and shape here, with a message naming the field.
 *
 * @throws AirlockError `INVALID`.
 */
export function validateCodeStepSpec(
  file: string,
  spec: unknown,
): { output: string; inputs: Record<string, CodeStepInput>; expect: Expectation[] } {
  const name = basename(file);
  if (spec === null || typeof spec !== 'object')
    throw invalid(`${name}: the default export is not an object`, { file });
  const s = spec as Record<string, unknown>;
  if (s.hasRun !== true) {
    throw invalid(`${name}: the default export has no run(inputs, { params }) function`, { file });
  }
  const output = checkTableName(s.output, `${name}: 'output'`);
  if (s.inputs === null || typeof s.inputs !== 'object' || Array.isArray(s.inputs)) {
    throw invalid(`${name}: 'inputs' must be an object mapping names to tables, e.g. { events: 'raw.events' }`, {
      file,
    });
  }
  const inputs: Record<string, CodeStepInput> = {};
  for (const [key, value] of Object.entries(s.inputs as Record<string, unknown>)) {
    const at = `${name}: inputs.${key}`;
    if (!INPUT_NAME.test(key))
      throw invalid(`${name}: input name '${key.slice(0, 80)}' is not an identifier`, { file });
    if (typeof value === 'string') {
      inputs[key] = { table: checkTableName(value, at) };
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw invalid(`${at} must be 'ns.table' or { table, columns?, filter? }`, { file });
    }
    const v = value as Record<string, unknown>;
    const unknownKeys = Object.keys(v).filter((k) => !['table', 'columns', 'filter'].includes(k));
    if (unknownKeys.length > 0) throw invalid(`${at} has unknown field(s) ${unknownKeys.join(', ')}`, { file });
    const input: CodeStepInput = { table: checkTableName(v.table, `${at}.table`) };
    if (v.columns !== undefined) {
      if (
        !Array.isArray(v.columns) ||
        v.columns.length === 0 ||
        !v.columns.every((c) => typeof c === 'string' && COLUMN.test(c))
      ) {
        throw invalid(`${at}.columns must be a non-empty array of column names`, { file });
      }
      if (new Set(v.columns).size !== v.columns.length) throw invalid(`${at}.columns lists a column twice`, { file });
      input.columns = [...(v.columns as string[])];
    }
    if (v.filter !== undefined) {
      if (typeof v.filter !== 'string' || v.filter.trim() === '' || v.filter.length > MAX_FILTER) {
        throw invalid(`${at}.filter must be a non-empty SQL predicate of at most ${MAX_FILTER} characters`, { file });
      }
      input.filter = v.filter;
    }
    inputs[key] = input;
  }
  let expect: Expectation[] = [];
  if (s.expect !== undefined) {
    if (!Array.isArray(s.expect) || !s.expect.every((e) => typeof e === 'string')) {
      throw invalid(`${name}: 'expect' must be an array of strings such as 'not_null(id)'`, { file });
    }
    expect = (s.expect as string[]).map((e) => parseExpectation(e, `${name}: expect`));
  }
  return { output, inputs, expect };
}

/**
 * Reads a code step's declaration (`output`, `inputs`, `expect`) without running any of
 * its code in this process: the step is bundled under the lake's policy and loaded in
 * the sandbox in "describe" mode, which returns the declaration as JSON; the JSON is then
 * validated here. Module top-level code may do anything, which is why even this happens
 * in the sandbox.
 *
 * @throws AirlockError `DENIED` (denied import), `INVALID` (bad declaration, build error,
 *   load error), `LIMIT_EXCEEDED` (top-level code hung or blew up).
 * @example
 * const step = await describeCodeStep('pipes/ml/train.mjs', { pipelineDir: 'pipes/ml' });
 * step.inputs.val // { table: 'ml.validate', columns: ['id'] }
 */
export async function describeCodeStep(file: string, options: DescribeCodeStepOptions = {}): Promise<CodeStep> {
  const bundle = await bundleStep(file, options);
  const { spec } = await describeStepBundle(bundle, options.limits);
  const { output, inputs, expect } = validateCodeStepSpec(bundle.step, spec);
  return { kind: 'code', file: bundle.step, name: basename(bundle.step), output, inputs, expect, bundle };
}
