import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAirlockError } from '../shared/errors/index.js';
import { describedFile } from '../shared/pipeline/sandbox/bundleStep.js';
import {
  describeCodeStep,
  findStepFiles,
  formatExpectation,
  loadPipelineSteps,
  parseExpectationList,
  parseSqlStep,
  validateCodeStepSpec,
} from '../shared/pipeline/steps/index.js';

const DESCRIBE = resolve('test/fixtures/pipelines/describe');

async function invalidMessage(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    if (isAirlockError(e) && e.code === 'INVALID') return e.message;
    throw e;
  }
  throw new Error('expected an INVALID error');
}

describe('parseSqlStep', () => {
  it('reads the output, expectations, params and input tables of the design example', async () => {
    const step = await parseSqlStep(
      'validate.sql',
      `-- output: ml.validate
-- expect: not_null(id), unique(id), min_rows(1)
SELECT id, amount, $tag AS run_tag FROM raw.events WHERE id % 5 = 0
`,
    );
    expect(step.output).toBe('ml.validate');
    expect(step.expect.map(formatExpectation)).toEqual(['not_null(id)', 'unique(id)', 'min_rows(1)']);
    expect(step.params).toEqual(['tag']);
    expect(step.inputs).toEqual(['raw.events']);
    expect(step.sql).toBe('SELECT id, amount, $tag AS run_tag FROM raw.events WHERE id % 5 = 0');
  });

  it('finds tables in joins, subqueries and unions, and ignores CTE names, strings and comments', async () => {
    const step = await parseSqlStep(
      'q.sql',
      `-- output: a.b
-- a plain comment: not a header
WITH recent AS (SELECT * FROM raw.events WHERE day > $since)
SELECT r.id, '$notparam FROM fake.table' AS s -- FROM other.hidden
FROM recent r JOIN dim.users u ON u.id = r.user_id
WHERE r.id IN (SELECT id FROM ml.held)
UNION ALL SELECT id, 'x' FROM raw.archive`,
    );
    expect(step.inputs).toEqual(['dim.users', 'ml.held', 'raw.archive', 'raw.events']);
    expect(step.params).toEqual(['since']);
  });

  it('collects expectations from several -- expect: lines, including composite unique keys', async () => {
    const step = await parseSqlStep(
      'q.sql',
      '-- output: a.b\n-- expect: unique(a, b)\n-- expect: max_rows(10)\nSELECT 1 AS a',
    );
    expect(step.expect).toEqual([
      { kind: 'unique', columns: ['a', 'b'] },
      { kind: 'max_rows', count: 10 },
    ]);
  });

  it('refuses a step without an output header', async () => {
    expect(await invalidMessage(() => parseSqlStep('x.sql', 'SELECT 1'))).toMatch(/x\.sql: missing '-- output:/);
  });

  it('refuses a step with two output headers, naming both lines', async () => {
    const msg = await invalidMessage(() => parseSqlStep('x.sql', '-- output: a.b\n-- output: a.c\nSELECT 1'));
    expect(msg).toMatch(/given 2 times \(lines 1, 2\)/);
  });

  it('refuses an output that is not namespace.table', async () => {
    expect(await invalidMessage(() => parseSqlStep('x.sql', '-- output: justname\nSELECT 1'))).toMatch(
      /x\.sql:1: '-- output:': invalid table name 'justname'/,
    );
  });

  it('refuses a malformed or unknown expectation with the line', async () => {
    expect(
      await invalidMessage(() => parseSqlStep('x.sql', '-- output: a.b\n-- expect: not_null(id\nSELECT 1')),
    ).toMatch(/x\.sql:2: unbalanced parentheses/);
    expect(
      await invalidMessage(() => parseSqlStep('x.sql', '-- output: a.b\n-- expect: positive(id)\nSELECT 1')),
    ).toMatch(/x\.sql:2: unknown expectation 'positive'/);
    expect(
      await invalidMessage(() => parseSqlStep('x.sql', '-- output: a.b\n-- expect: min_rows(-1)\nSELECT 1')),
    ).toMatch(/min_rows takes one non-negative integer/);
  });

  it('suggests the right header for a look-alike', async () => {
    expect(await invalidMessage(() => parseSqlStep('x.sql', '-- outputs: a.b\nSELECT 1'))).toMatch(
      /did you mean '-- output:'/,
    );
  });

  it('refuses a header placed after the query', async () => {
    expect(
      await invalidMessage(() => parseSqlStep('x.sql', '-- output: a.b\nSELECT 1\n-- expect: min_rows(1)')),
    ).toMatch(/x\.sql:3: the '-- expect:' header must come before the query/);
  });

  it('refuses two statements and anything that is not a SELECT', async () => {
    expect(await invalidMessage(() => parseSqlStep('x.sql', '-- output: a.b\nSELECT 1; SELECT 2'))).toMatch(
      /exactly one SELECT statement, found 2/,
    );
    expect(await invalidMessage(() => parseSqlStep('x.sql', '-- output: a.b\nDELETE FROM raw.events'))).toMatch(
      /single SELECT/,
    );
    expect(await invalidMessage(() => parseSqlStep('x.sql', '-- output: a.b\nSELEC 1'))).toMatch(/does not parse/);
  });
});

describe('parseExpectationList', () => {
  it('splits on commas outside parentheses only', () => {
    expect(parseExpectationList('unique(a, b), not_null(a)', 'w').map(formatExpectation)).toEqual([
      'unique(a, b)',
      'not_null(a)',
    ]);
  });
});

describe('code steps', () => {
  let cacheDir: string;
  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'airlock-test-steps-'));
  });
  afterAll(() => rm(cacheDir, { recursive: true, force: true }));

  it('describes the design example in the sandbox, normalising its inputs', async () => {
    const step = await describeCodeStep(join(DESCRIBE, 'train.mjs'), { cacheDir });
    expect(step.output).toBe('ml.train');
    expect(step.inputs).toEqual({
      events: { table: 'raw.events' },
      val: { table: 'ml.validate', columns: ['id'], filter: 'id > 0' },
    });
    expect(step.expect.map(formatExpectation)).toEqual(['not_null(id)', 'unique(id)']);
    expect(step.bundle.file).toMatch(/\.mjs$/);
  });

  it('describes an unchanged step from the declaration kept beside its bundle, and a changed one afresh', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'airlock-test-describe-'));
    try {
      const file = join(dir, 'step.mjs');
      const source = (output: string) => `export default { output: '${output}', inputs: {}, run: () => [] };`;
      await writeFile(file, source('ml.first'));
      const first = await describeCodeStep(file, { cacheDir });
      expect(first.output).toBe('ml.first');
      // Kept under the SHA-256 of the bundle's bytes, beside it.
      const kept = await describedFile(first.bundle.file);
      expect(kept).toMatch(/describe-[0-9a-f]{64}\.json$/);
      // Edit the kept declaration: if the next describe used it, no sandbox ran the code.
      await writeFile(kept, JSON.stringify({ output: 'ml.kept', inputs: {}, hasRun: true }));
      expect((await describeCodeStep(file, { cacheDir })).output).toBe('ml.kept');
      await writeFile(file, source('ml.second'));
      expect((await describeCodeStep(file, { cacheDir })).output).toBe('ml.second');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('validates an untrusted declaration field by field', () => {
    const base = { output: 'a.b', inputs: {}, hasRun: true };
    expect(() => validateCodeStepSpec('s.mjs', { ...base, hasRun: false })).toThrow(/no run\(inputs/);
    expect(() => validateCodeStepSpec('s.mjs', { ...base, output: 'A.B' })).toThrow(
      /'output': invalid table name 'A\.B'/,
    );
    expect(() => validateCodeStepSpec('s.mjs', { ...base, inputs: { e: { table: 'a.b', columns: [] } } })).toThrow(
      /inputs\.e\.columns must be a non-empty array/,
    );
    expect(() => validateCodeStepSpec('s.mjs', { ...base, inputs: { e: { table: 'a.b', where: 'x' } } })).toThrow(
      /unknown field\(s\) where/,
    );
    expect(() => validateCodeStepSpec('s.mjs', { ...base, expect: ['nope'] })).toThrow(
      /cannot parse expectation 'nope'/,
    );
  });

  it('lists step files of a folder, skipping tests', async () => {
    const files = await findStepFiles(DESCRIBE);
    expect(files.map((f) => `${f.kind}:${f.file.split('/').pop()}`)).toEqual(['code:train.mjs', 'sql:validate.sql']);
  });

  it('loads every step of a pipeline folder', async () => {
    const steps = await loadPipelineSteps(DESCRIBE, { cacheDir });
    expect(steps.map((s) => `${s.kind}:${s.output}`)).toEqual(['code:ml.train', 'sql:ml.validate']);
  });
});
