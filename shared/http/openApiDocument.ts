/**
 * The OpenAPI 3.1 description of the HTTP API, served at `GET /v1/openapi.json`. Written
 * by hand next to the routes it describes; a test checks that its paths and methods are
 * exactly the routes `createHttpApp` serves, so the two cannot drift apart silently.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ref('Error') } },
});
const jsonOk = (description: string, schema: unknown) => ({
  description,
  content: { 'application/json': { schema } },
});

/** Errors any catalog read can answer with. */
const readErrors = {
  '400': errorResponse('INVALID: a malformed ref, table name or parameter'),
  '403': errorResponse('DENIED: the actor may not read this'),
  '404': errorResponse('NOT_FOUND: the ref or table does not exist'),
  '500': errorResponse('INTERNAL: an unexpected failure (details in the server log)'),
};

const refParameter = {
  name: 'ref',
  in: 'query',
  required: false,
  description: 'Branch, tag, full or unique-prefix commit id, `ref@<ISO-8601 time>` or `ref~N`. Default `main`.',
  schema: { type: 'string', default: 'main' },
};

const idempotencyKeyParameter = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Makes a retry safe: the first request with a key (per person) applies and its answer is stored for 24 h; a retry with the same method, path, query and body gets that answer again byte for byte (header `Idempotent-Replayed: true`) and applies nothing. The same key with a different request is refused with 422; a retry while the first is still in flight gets 409. Failed requests (4xx) are stored too; 5xx are not. 1–255 visible ASCII characters, e.g. a UUID.',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};

const pathParameter = (name: string, description: string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});

const branchQueryParameter = (description: string) => ({
  name: 'branch',
  in: 'query',
  required: true,
  description,
  schema: { type: 'string' },
});

const jsonBody = (schema: unknown) => ({ required: true, content: { 'application/json': { schema } } });

/** Errors any mutation can answer with (besides its own successes). */
const writeErrors = {
  '400': errorResponse('INVALID: a malformed body, name or parameter, or data breaking a constraint'),
  '403': errorResponse(
    'DENIED: the actor may not do this (e.g. commit to a protected branch, which changes only by merge)',
  ),
  '404': errorResponse('NOT_FOUND: the ref, branch, table or run does not exist'),
  '409': errorResponse(
    'CONFLICT: a concurrent change won (retry), the name exists, or a request with the same Idempotency-Key is still in progress',
  ),
  '413': errorResponse('LIMIT_EXCEEDED: the request body is larger than the server accepts'),
  '422': errorResponse('INVALID: the Idempotency-Key was already used for a different request'),
  '500': errorResponse('INTERNAL: an unexpected failure (details in the server log)'),
};

/** The answer of an action that waits for a person's approval. */
const awaitingApproval = {
  '202': jsonOk('APPROVAL_REQUIRED: the action waits for a person; nothing changed yet', ref('AwaitingApproval')),
};

/** The OpenAPI document (a plain JSON value). */
export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'Airlock HTTP API',
    version: '0.1.0',
    description:
      'Read and change a transactional lakehouse catalog over HTTP: branches, tags, tables, imports, history, ' +
      'diffs, merges, reverts, caps, pipeline runs and read-only SQL over the snapshot of any ref. The JSON bodies ' +
      'are the ones the `airlock` CLI prints with `--json`. Every mutation honours an `Idempotency-Key` header. ' +
      'Errors are `{"error":{"code","message"}}` with a stable code: INVALID/USAGE 400, DENIED 403, ' +
      'NOT_FOUND 404, CONFLICT 409, request body too large 413, Idempotency-Key reused for another request 422, ' +
      'other LIMIT_EXCEEDED 429, APPROVAL_REQUIRED 202 with `{"status":"awaiting_approval","approvalId"}`, INTERNAL 500. Int64 values are JSON numbers when safe, else strings.',
  },
  paths: {
    '/v1/health': {
      get: {
        operationId: 'health',
        summary: 'Liveness: the server answers (the lake is not touched)',
        responses: { '200': jsonOk('The server is up', ref('Health')) },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'This document',
        responses: { '200': jsonOk('The OpenAPI 3.1 document', { type: 'object' }) },
      },
    },
    '/v1/query': {
      post: {
        operationId: 'query',
        summary: 'Run one read-only SELECT over the snapshot of a ref',
        description:
          "Tables are named `ns.table` and resolve to the exact Parquet files of the ref's snapshot; the engine " +
          'refuses anything else (other files, other statements, side effects) with INVALID. The answer format is ' +
          "the body's `format`, else the `Accept` header (`application/json`, `text/csv`, " +
          '`application/vnd.apache.arrow.stream`), else JSON. CSV and Arrow stream as the engine produces rows; ' +
          'a failure before the first byte gets a proper status and error body, a failure mid-stream aborts the ' +
          'transfer. Rows beyond the row cap are cut: JSON says so in `stats.truncated`, the streamed formats ' +
          'only stop. Request bodies over the size limit are refused with 413.',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: ref('QueryRequest') } },
        },
        responses: {
          '200': {
            description: 'The result',
            headers: {
              'Airlock-Commit': {
                description: 'JSON format only: the commit id whose snapshot was read',
                schema: { type: 'string' },
              },
            },
            content: {
              'application/json': { schema: ref('QueryResult') },
              'text/csv': { schema: { type: 'string' } },
              'application/vnd.apache.arrow.stream': { schema: { type: 'string', format: 'binary' } },
            },
          },
          '400': errorResponse('INVALID: malformed JSON or body, or SQL the engine refuses (with its reason)'),
          '403': readErrors['403'],
          '404': readErrors['404'],
          '413': errorResponse('LIMIT_EXCEEDED: the request body is larger than the server accepts'),
          '429': errorResponse(
            'LIMIT_EXCEEDED: a query cap (maxBytesScanned, timeoutMs, maxConcurrent, dailyBytes) refused it; ' +
              "`details.cap` names it. The caps are those of the caller's person (see `GET /v1/caps`)",
          ),
          '500': readErrors['500'],
        },
      },
    },
    '/v1/caps': {
      get: {
        operationId: 'getCaps',
        summary: "The query caps of the caller's person and where each comes from (as `airlock caps show --json`)",
        description:
          'Cap by cap: the person override if set, else the lake setting, else the safe default. Agents get the ' +
          'caps of their person and share its concurrency and daily budget.',
        responses: {
          '200': jsonOk('The effective caps', ref('EffectiveCaps')),
          '403': readErrors['403'],
          '500': readErrors['500'],
        },
      },
      patch: {
        operationId: 'setCaps',
        summary: 'Set query caps lake-wide or for one person; other caps are kept (as `airlock caps set --json`)',
        description:
          'Values are whole numbers, or strings with units as on the command line (`"50GiB"`, `"30s"`). Only the ' +
          'lake owner (acting without an agent) may change caps until roles exist.',
        parameters: [idempotencyKeyParameter],
        requestBody: jsonBody(ref('SetCapsRequest')),
        responses: {
          '200': jsonOk('The effective caps of the scope after the change', ref('EffectiveCaps')),
          ...writeErrors,
        },
      },
    },
    '/v1/branches': {
      get: {
        operationId: 'listBranches',
        summary: 'Live branches with their heads (as `airlock branch list --json`)',
        responses: {
          '200': jsonOk('The branches', { type: 'array', items: ref('Branch') }),
          '403': readErrors['403'],
          '500': readErrors['500'],
        },
      },
      post: {
        operationId: 'createBranch',
        summary: 'Create a branch (O(1), copies no data; as `airlock branch create --json`)',
        parameters: [idempotencyKeyParameter],
        requestBody: jsonBody(ref('CreateBranchRequest')),
        responses: { '200': jsonOk('The new branch', ref('CreatedBranch')), ...writeErrors },
      },
    },
    '/v1/branches/{name}': {
      delete: {
        operationId: 'deleteBranch',
        summary: 'Delete a branch, recoverable with `airlock branch restore` (as `airlock branch delete --json`)',
        description: 'Names with `/` (e.g. `agent/bob/fix`) are sent percent-encoded: `agent%2Fbob%2Ffix`.',
        parameters: [pathParameter('name', 'The branch'), idempotencyKeyParameter],
        responses: { '200': jsonOk('The deleted branch and its last head', ref('DeletedBranch')), ...writeErrors },
      },
    },
    '/v1/tags': {
      post: {
        operationId: 'createTag',
        summary: 'Tag a ref: an immutable name for its commit (as `airlock tag create --json`)',
        parameters: [idempotencyKeyParameter],
        requestBody: jsonBody(ref('CreateTagRequest')),
        responses: { '200': jsonOk('The tag', ref('Tag')), ...writeErrors },
      },
    },
    '/v1/tables': {
      get: {
        operationId: 'listTables',
        summary: 'Tables at a ref (as `airlock table list --json`)',
        parameters: [refParameter],
        responses: { '200': jsonOk('The tables', { type: 'array', items: ref('TableSummary') }), ...readErrors },
      },
    },
    '/v1/tables/{table}': {
      get: {
        operationId: 'getTable',
        summary: 'Schema, constraints and size of one table (as `airlock table show --json`)',
        parameters: [
          {
            name: 'table',
            in: 'path',
            required: true,
            description: '`namespace.name`',
            schema: { type: 'string' },
          },
          refParameter,
        ],
        responses: { '200': jsonOk('The table', ref('Table')), ...readErrors },
      },
      delete: {
        operationId: 'dropTable',
        summary: 'Drop a table on a branch; history keeps it (as `airlock table drop --json`)',
        parameters: [
          pathParameter('table', '`namespace.name`'),
          branchQueryParameter('The branch to commit the drop to'),
          idempotencyKeyParameter,
        ],
        responses: { '200': jsonOk('The commit', ref('TableCommit')), ...writeErrors },
      },
    },
    '/v1/tables/{table}/import': {
      post: {
        operationId: 'importTable',
        summary: 'Import a file into a table on a branch as one commit (as `airlock table import --json`)',
        description:
          'The body is the file itself (CSV, Parquet, JSON array or JSON lines), streamed to a staging file under ' +
          'its own size cap (413 beyond it); the format comes from `?format=` or the `Content-Type` (`text/csv`, ' +
          '`application/vnd.apache.parquet`, `application/json`, `application/x-ndjson`). A new table gets its ' +
          'schema inferred; an existing one checks the file against its schema and constraints. A bad file changes ' +
          'nothing.',
        parameters: [
          pathParameter('table', '`namespace.name`'),
          branchQueryParameter('The branch to commit to (protected branches change only by merge)'),
          {
            name: 'mode',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: ['append', 'overwrite'], default: 'append' },
          },
          {
            name: 'format',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: ['csv', 'parquet', 'json', 'jsonl'] },
          },
          {
            name: 'notNull',
            in: 'query',
            required: false,
            description: 'New table: columns that must not be null (comma-separated)',
            schema: { type: 'string' },
          },
          {
            name: 'unique',
            in: 'query',
            required: false,
            description: 'New table: unique key columns (comma-separated)',
            schema: { type: 'string' },
          },
          {
            name: 'tag',
            in: 'query',
            required: false,
            description: 'New table: `column=tag`, e.g. `email=pii` (repeatable)',
            schema: { type: 'string' },
          },
          { name: 'message', in: 'query', required: false, description: 'Commit message', schema: { type: 'string' } },
          idempotencyKeyParameter,
        ],
        requestBody: {
          required: true,
          content: {
            'text/csv': { schema: { type: 'string' } },
            'application/vnd.apache.parquet': { schema: { type: 'string', format: 'binary' } },
            'application/json': { schema: { type: 'array', items: { type: 'object' } } },
            'application/x-ndjson': { schema: { type: 'string' } },
          },
        },
        responses: { '200': jsonOk('The import', ref('ImportResult')), ...writeErrors },
      },
    },
    '/v1/tables/{table}/columns': {
      post: {
        operationId: 'addColumn',
        summary: 'Add a nullable column; no data is rewritten (as `airlock table add-column --json`)',
        parameters: [pathParameter('table', '`namespace.name`'), idempotencyKeyParameter],
        requestBody: jsonBody(ref('AddColumnRequest')),
        responses: { '200': jsonOk('The commit', ref('AddedColumn')), ...writeErrors },
      },
    },
    '/v1/log': {
      get: {
        operationId: 'log',
        summary: 'First-parent history of a ref, newest first (as `airlock log --json`)',
        parameters: [
          refParameter,
          {
            name: 'limit',
            in: 'query',
            required: false,
            description: 'At most this many commits',
            schema: { type: 'integer', minimum: 1, maximum: 1000, default: 20 },
          },
        ],
        responses: { '200': jsonOk('The commits', { type: 'array', items: ref('LogEntry') }), ...readErrors },
      },
    },
    '/v1/diff': {
      get: {
        operationId: 'diff',
        summary: 'Tables added, removed and changed between two refs (as `airlock diff --json`)',
        parameters: [
          { name: 'from', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'to', in: 'query', required: true, schema: { type: 'string' } },
        ],
        responses: {
          '200': jsonOk('Per-table differences', { type: 'array', items: ref('TableDiff') }),
          ...readErrors,
        },
      },
    },
    '/v1/merge': {
      post: {
        operationId: 'merge',
        summary: 'Merge a ref into a branch in one atomic transaction (as `airlock merge --json`)',
        description:
          'Three-way against the merge base; concurrent appends to the same table union, any other overlapping ' +
          'change is a conflict that names the tables (409 with the merge result, nothing changed). `dryRun` ' +
          'reports what would happen and changes nothing.',
        parameters: [idempotencyKeyParameter],
        requestBody: jsonBody(ref('MergeRequest')),
        responses: {
          '200': jsonOk('Merged, fast-forwarded, up to date, or what a dry run would do', ref('MergeResult')),
          ...awaitingApproval,
          ...writeErrors,
          '409': jsonOk(
            'The merge conflicts (`status: conflict`, the tables named) — or an error body for a concurrent change or an Idempotency-Key in progress',
            { oneOf: [ref('MergeResult'), ref('Error')] },
          ),
        },
      },
    },
    '/v1/revert': {
      post: {
        operationId: 'revert',
        summary: 'A new commit restoring the tables a commit changed (as `airlock revert --json`)',
        parameters: [idempotencyKeyParameter],
        requestBody: jsonBody(ref('RevertRequest')),
        responses: { '200': jsonOk('The revert commit', ref('Reverted')), ...writeErrors },
      },
    },
    '/v1/runs': {
      get: {
        operationId: 'listRuns',
        summary: 'Recent pipeline runs, newest first (as `airlock runs list --json`)',
        parameters: [
          {
            name: 'limit',
            in: 'query',
            required: false,
            schema: { type: 'integer', minimum: 1, maximum: 1000, default: 20 },
          },
        ],
        responses: { '200': jsonOk('The runs', { type: 'array', items: ref('RunSummary') }), ...readErrors },
      },
      post: {
        operationId: 'startRun',
        summary: 'Run a pipeline folder and publish its outputs in one merge, or nothing (as `airlock run --json`)',
        description:
          'The folder is `{"prefix"}` in the lake\'s object store (e.g. `pipelines/daily/`, uploaded with ' +
          '`aws s3 sync`), or `{"path"}` on the server\'s disk where the server allows it (`airlock serve` does, ' +
          'the Lambda does not). Answers when the run finished: `status` succeeded, failed (the branch untouched, ' +
          "the run branch kept), conflict (409), or awaiting_approval (202: an agent's run into a protected " +
          'branch; every output is on the run branch and `approvalId` names the request a person approves to publish it).',
        parameters: [idempotencyKeyParameter],
        requestBody: jsonBody(ref('StartRunRequest')),
        responses: {
          '200': jsonOk('The finished run (succeeded or failed)', ref('RunSummary')),
          '202': jsonOk(
            'The run finished and its publish waits for approval (`status: awaiting_approval`, `approvalId`)',
            {
              oneOf: [ref('RunSummary'), ref('AwaitingApproval')],
            },
          ),
          ...writeErrors,
          '409': jsonOk('The run conflicts with its branch, or an error body (Idempotency-Key in progress)', {
            oneOf: [ref('RunSummary'), ref('Error')],
          }),
        },
      },
    },
    '/v1/runs/{id}': {
      get: {
        operationId: 'showRun',
        summary: 'One run: status, each step with timings, failures with their logs (as `airlock runs show --json`)',
        parameters: [pathParameter('id', 'The run id')],
        responses: { '200': jsonOk('The run', ref('RunSummary')), ...readErrors },
      },
    },
    '/v1/approvals': {
      get: {
        operationId: 'listApprovals',
        summary: 'Approval requests, newest first (as `airlock approvals list --json`)',
        parameters: [
          {
            name: 'status',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: ['pending', 'approved', 'executed', 'rejected', 'void', 'failed'] },
          },
        ],
        responses: { '200': jsonOk('The approvals', { type: 'array', items: ref('Approval') }), ...readErrors },
      },
    },
    '/v1/approvals/{id}': {
      get: {
        operationId: 'showApproval',
        summary: 'One approval: what it is bound to and its exact diff (as `airlock approvals show --json`)',
        parameters: [pathParameter('id', 'The approval id (12 hex characters)')],
        responses: { '200': jsonOk('The approval', ref('Approval')), ...readErrors },
      },
    },
    '/v1/approvals/{id}/approve': {
      post: {
        operationId: 'approve',
        summary: 'Approve and execute, exactly once (as `airlock approvals approve --json`)',
        description:
          "The approver is the bearer token's actor: never an agent, never the requester's person (403). When " +
          'either side moved since the request the approval becomes `void` and the answer (409) says what moved. ' +
          'Approving an executed approval again answers it unchanged.',
        parameters: [pathParameter('id', 'The approval id'), idempotencyKeyParameter],
        responses: { '200': jsonOk('The executed approval, with its result', ref('Approval')), ...writeErrors },
      },
    },
    '/v1/approvals/{id}/reject': {
      post: {
        operationId: 'reject',
        summary: 'Reject a pending approval with a reason (as `airlock approvals reject --json`)',
        parameters: [pathParameter('id', 'The approval id'), idempotencyKeyParameter],
        requestBody: jsonBody({
          type: 'object',
          required: ['reason'],
          properties: { reason: { type: 'string', minLength: 1 } },
          additionalProperties: false,
        }),
        responses: { '200': jsonOk('The rejected approval', ref('Approval')), ...writeErrors },
      },
    },
  },
  components: {
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: {
                type: 'string',
                enum: [
                  'CONFLICT',
                  'DENIED',
                  'APPROVAL_REQUIRED',
                  'NOT_FOUND',
                  'INVALID',
                  'LIMIT_EXCEEDED',
                  'USAGE',
                  'INTERNAL',
                ],
              },
              message: { type: 'string' },
              details: { type: 'object', additionalProperties: true },
            },
          },
        },
      },
      Approval: {
        type: 'object',
        required: [
          'id',
          'action',
          'target',
          'params',
          'binding',
          'hash',
          'summary',
          'requester',
          'status',
          'createdAt',
        ],
        properties: {
          id: { type: 'string' },
          action: { type: 'string', enum: ['merge', 'grant', 'delete', 'unmask', 'export'] },
          target: { type: 'string' },
          params: { type: 'object' },
          binding: { type: 'object', additionalProperties: { type: 'string' } },
          hash: { type: 'string', description: 'SHA-256 of (action, target, params, binding)' },
          summary: { type: 'string' },
          diff: {},
          requester: { type: 'object', properties: { person: { type: 'string' }, agent: { type: 'string' } } },
          status: { type: 'string', enum: ['pending', 'approved', 'executed', 'rejected', 'void', 'failed'] },
          reason: { type: 'string' },
          decidedBy: { type: 'object', properties: { person: { type: 'string' } } },
          result: { type: 'object' },
          createdAt: { type: 'string', format: 'date-time' },
          decidedAt: { type: 'string', format: 'date-time' },
        },
      },
      AwaitingApproval: {
        type: 'object',
        required: ['status', 'approvalId'],
        properties: {
          status: { const: 'awaiting_approval' },
          approvalId: { type: 'string' },
          message: { type: 'string' },
        },
        additionalProperties: true,
      },
      CreateBranchRequest: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string' }, from: { type: 'string', default: 'main' } },
      },
      CreatedBranch: {
        type: 'object',
        required: ['name', 'head', 'from'],
        properties: { name: { type: 'string' }, head: { type: 'string' }, from: { type: 'string' } },
      },
      DeletedBranch: {
        type: 'object',
        required: ['name', 'deleted', 'lastHead'],
        properties: { name: { type: 'string' }, deleted: { const: true }, lastHead: { type: 'string' } },
      },
      CreateTagRequest: {
        type: 'object',
        required: ['name', 'ref'],
        additionalProperties: false,
        properties: { name: { type: 'string' }, ref: { type: 'string' } },
      },
      Tag: {
        type: 'object',
        required: ['name', 'commit'],
        properties: {
          name: { type: 'string' },
          commit: { type: 'string' },
          time: { type: 'string', format: 'date-time' },
        },
        additionalProperties: true,
      },
      ImportResult: {
        type: 'object',
        required: ['table', 'branch', 'mode', 'rows', 'created', 'commit', 'version'],
        properties: {
          table: { type: 'string' },
          branch: { type: 'string' },
          mode: { type: 'string', enum: ['append', 'overwrite'] },
          rows: { type: 'integer' },
          created: { type: 'boolean', description: 'True when the import created the table' },
          commit: { type: 'string' },
          version: { type: 'string', description: 'The table version after the import' },
          renamed: {
            type: 'object',
            description: 'Columns renamed to valid names',
            additionalProperties: { type: 'string' },
          },
        },
      },
      TableCommit: {
        type: 'object',
        required: ['table', 'branch', 'commit'],
        properties: { table: { type: 'string' }, branch: { type: 'string' }, commit: { type: 'string' } },
      },
      AddColumnRequest: {
        type: 'object',
        required: ['column', 'type', 'branch'],
        additionalProperties: false,
        properties: {
          column: { type: 'string' },
          type: { type: 'string', description: 'Int64, Float64, Utf8, Bool, Date32, Timestamp, Decimal(p,s), …' },
          branch: { type: 'string' },
          tags: { type: 'array', items: { type: 'string' }, description: 'e.g. ["pii"]' },
        },
      },
      AddedColumn: {
        type: 'object',
        required: ['table', 'column', 'type', 'commit'],
        properties: {
          table: { type: 'string' },
          column: { type: 'string' },
          type: { type: 'string' },
          commit: { type: 'string' },
        },
      },
      MergeRequest: {
        type: 'object',
        required: ['source', 'into'],
        additionalProperties: false,
        properties: {
          source: { type: 'string', description: 'The ref to merge' },
          into: { type: 'string', description: 'The target branch' },
          dryRun: { type: 'boolean', default: false },
          message: { type: 'string' },
        },
      },
      MergeResult: {
        type: 'object',
        required: ['status', 'source', 'target', 'sourceCommit', 'targetHead'],
        properties: {
          status: { type: 'string', enum: ['merged', 'fast-forward', 'up-to-date', 'conflict'] },
          source: { type: 'string' },
          target: { type: 'string' },
          sourceCommit: { type: 'string' },
          targetHead: { type: 'string', description: 'The target head before the merge' },
        },
        additionalProperties: true,
      },
      RevertRequest: {
        type: 'object',
        required: ['commit', 'branch'],
        additionalProperties: false,
        properties: { commit: { type: 'string' }, branch: { type: 'string' }, message: { type: 'string' } },
      },
      Reverted: {
        type: 'object',
        required: ['commit', 'branch', 'reverted'],
        properties: { commit: { type: 'string' }, branch: { type: 'string' }, reverted: { type: 'string' } },
      },
      SetCapsRequest: {
        type: 'object',
        required: ['caps'],
        additionalProperties: false,
        properties: {
          person: { type: 'string', description: "Set this person's overrides (default: the lake-wide setting)" },
          caps: {
            type: 'object',
            additionalProperties: false,
            properties: Object.fromEntries(
              ['maxRows', 'maxBytesScanned', 'timeoutMs', 'maxConcurrent', 'dailyBytes'].map((c) => [
                c,
                { type: ['integer', 'string'] },
              ]),
            ),
          },
        },
      },
      StartRunRequest: {
        type: 'object',
        required: ['pipeline', 'branch'],
        additionalProperties: false,
        properties: {
          pipeline: {
            oneOf: [
              {
                type: 'object',
                required: ['prefix'],
                additionalProperties: false,
                properties: { prefix: { type: 'string', description: "A folder in the lake's object store" } },
              },
              {
                type: 'object',
                required: ['path'],
                additionalProperties: false,
                properties: { path: { type: 'string', description: "A folder on the server's disk" } },
              },
            ],
          },
          branch: { type: 'string', description: 'The branch the run reads from and publishes to' },
          params: { type: 'object', additionalProperties: { type: 'string' } },
          dryRun: { type: 'boolean', default: false },
          isolation: { type: 'string', enum: ['snapshot', 'serializable'], default: 'snapshot' },
        },
      },
      RunSummary: {
        type: 'object',
        required: ['runId', 'status', 'branch', 'runBranch'],
        properties: {
          runId: { type: 'string' },
          status: { type: 'string', enum: ['running', 'succeeded', 'failed', 'conflict', 'awaiting_approval'] },
          branch: { type: 'string' },
          runBranch: { type: 'string' },
          published: { type: 'boolean' },
          commit: { type: 'string' },
          approvalId: { type: 'string', description: 'The approval publishing waits for (status awaiting_approval)' },
          steps: { type: 'array', items: { type: 'object', additionalProperties: true } },
        },
        additionalProperties: true,
      },
      Health: {
        type: 'object',
        required: ['status'],
        properties: { status: { const: 'ok' } },
      },
      QueryRequest: {
        type: 'object',
        required: ['sql'],
        additionalProperties: false,
        properties: {
          sql: { type: 'string', description: 'Exactly one SELECT; `$name` placeholders bind `params`' },
          ref: { type: 'string', default: 'main', description: refParameter.description },
          params: {
            type: 'object',
            additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
            description: 'Values of `$name` placeholders, bound by the engine (never spliced into the SQL)',
          },
          maxRows: {
            type: 'integer',
            minimum: 1,
            description: "Return at most this many rows (never more than the lake's cap)",
          },
          format: { type: 'string', enum: ['json', 'csv', 'arrow'] },
        },
      },
      QueryResult: {
        type: 'object',
        required: ['columns', 'rows', 'stats'],
        properties: {
          columns: {
            type: 'array',
            items: {
              type: 'object',
              required: ['name', 'type'],
              properties: { name: { type: 'string' }, type: { type: 'string', description: 'DuckDB type' } },
            },
          },
          rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
          stats: {
            type: 'object',
            required: ['rowsReturned', 'bytesScanned'],
            properties: {
              rowsReturned: { type: 'integer' },
              bytesScanned: { type: 'integer', description: 'Bytes of the Parquet files read after pruning' },
              filesScanned: { type: 'integer' },
              filesPruned: { type: 'integer' },
              truncated: { type: 'boolean', description: 'True when rows beyond the row cap were cut' },
              elapsedMs: { type: 'number' },
            },
          },
        },
      },
      EffectiveCaps: {
        type: 'object',
        required: ['person', 'caps', 'sources', 'lake', 'override'],
        properties: {
          person: { type: ['string', 'null'] },
          caps: ref('QueryCaps'),
          sources: {
            type: 'object',
            description: 'Where each cap comes from',
            additionalProperties: { type: 'string', enum: ['person', 'lake', 'default'] },
          },
          lake: { type: 'object', description: 'The caps set lake-wide', additionalProperties: { type: 'integer' } },
          override: {
            type: 'object',
            description: "The person's own overrides",
            additionalProperties: { type: 'integer' },
          },
        },
      },
      QueryCaps: {
        type: 'object',
        required: ['maxRows', 'maxBytesScanned', 'timeoutMs', 'maxConcurrent', 'dailyBytes'],
        properties: {
          maxRows: { type: 'integer', minimum: 1, description: 'Most rows returned (more are cut and flagged)' },
          maxBytesScanned: { type: 'integer', minimum: 1, description: 'Most bytes one query scans' },
          timeoutMs: { type: 'integer', minimum: 1 },
          maxConcurrent: { type: 'integer', minimum: 1, description: 'Most queries at once per person' },
          dailyBytes: { type: 'integer', minimum: 1, description: 'Most bytes scanned per person per UTC day' },
        },
      },
      Branch: {
        type: 'object',
        required: ['name', 'head', 'protected'],
        properties: {
          name: { type: 'string' },
          head: { type: 'string', description: 'Commit id (lowercase hex)' },
          protected: { type: 'boolean' },
          updated: { type: 'string', format: 'date-time' },
          seq: { type: 'integer' },
        },
      },
      TableSummary: {
        type: 'object',
        required: ['name', 'version', 'rowCount'],
        properties: {
          name: { type: 'string' },
          version: { type: 'string' },
          rowCount: { type: 'integer' },
          bytes: { type: 'integer' },
          files: { type: 'integer' },
        },
      },
      Table: {
        type: 'object',
        required: ['name', 'version', 'rowCount', 'schema'],
        properties: {
          name: { type: 'string' },
          version: { type: 'string', description: 'Table version id' },
          rowCount: { type: 'integer' },
          bytes: { type: 'integer' },
          files: { type: 'integer' },
          ref: { type: 'string' },
          schema: {
            type: 'object',
            required: ['fields'],
            properties: {
              fields: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['name', 'type', 'tags'],
                  properties: {
                    name: { type: 'string' },
                    type: { type: 'string', description: 'Arrow type name, e.g. Int64, Utf8, Decimal(18,2)' },
                    nullable: { type: 'boolean' },
                    tags: { type: 'array', items: { type: 'string' } },
                  },
                },
              },
            },
          },
          constraints: {
            type: 'object',
            properties: { unique: { type: 'array', items: { type: 'string' } } },
          },
        },
      },
      LogEntry: {
        type: 'object',
        required: ['id', 'parents', 'author', 'agent', 'message', 'time'],
        properties: {
          id: { type: 'string' },
          parents: { type: 'array', items: { type: 'string' } },
          author: { type: 'string' },
          agent: { type: ['string', 'null'] },
          message: { type: 'string' },
          time: { type: 'string', format: 'date-time' },
          kind: { type: 'string', enum: ['init', 'commit', 'merge', 'revert'] },
          runId: { type: ['string', 'null'] },
        },
      },
      TableDiff: {
        type: 'object',
        required: ['table', 'status'],
        properties: {
          table: { type: 'string' },
          status: { type: 'string', enum: ['added', 'removed', 'changed'] },
          rowsAdded: { type: 'integer' },
          rowsRemoved: { type: 'integer' },
          filesAdded: { type: 'integer' },
          filesRemoved: { type: 'integer' },
          schemaChanges: {
            type: 'array',
            items: {
              type: 'object',
              required: ['column', 'change'],
              properties: {
                column: { type: 'string' },
                change: { type: 'string', enum: ['added', 'removed', 'type', 'nullability', 'tags'] },
                from: { type: 'string' },
                to: { type: 'string' },
              },
            },
          },
          from: { type: ['string', 'null'] },
          to: { type: ['string', 'null'] },
        },
      },
    },
  },
} as const;
