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

/** The OpenAPI document (a plain JSON value). */
export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'Airlock HTTP API',
    version: '0.1.0',
    description:
      'Read a transactional lakehouse catalog over HTTP: branches, tables, history, diffs and read-only SQL ' +
      'over the snapshot of any ref. The JSON bodies are the ones the `airlock` CLI prints with `--json`. ' +
      'Errors are `{"error":{"code","message"}}` with a stable code: INVALID/USAGE 400, DENIED 403, ' +
      'NOT_FOUND 404, CONFLICT 409, request body too large 413, other LIMIT_EXCEEDED 429, ' +
      'APPROVAL_REQUIRED 202, INTERNAL 500. Int64 values are JSON numbers when safe, else strings.',
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
