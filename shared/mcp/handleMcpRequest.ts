import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { GuardedLake } from '../auth/index.js';
import type { Actor } from '../catalog/index.js';
import { AirlockError } from '../errors/index.js';
import { Lake } from '../lake/Lake.js';
import { createMcpServer } from './createMcpServer.js';
import { guardedOperations } from './mcpOperations.js';

/** Options of {@link handleMcpRequest}. */
export interface McpHttpOptions {
  /**
   * The HTTP app's lake (owned by the caller): the guarded lake of `shared/auth/http.ts`
   * (whose `guard` the tools call), or a plain {@link Lake}, which gets a guard of its own.
   */
  lake: object;
  /** The HTTP app's authentication seam: the same function as for `/v1/…`. */
  actorFor(request: Request): Actor | Promise<Actor>;
  /** Where unexpected failures are reported. */
  log?: (message: string, error: unknown) => void;
}

/** Guards made for plain lakes, one per lake. */
const guards = new WeakMap<Lake, GuardedLake>();

/** The enforcement point every MCP tool call goes through. */
function guardOf(lake: object): GuardedLake {
  const exposed = (lake as { guard?: unknown }).guard;
  if (exposed instanceof GuardedLake) return exposed;
  if (lake instanceof Lake) {
    let guard = guards.get(lake);
    if (!guard) guards.set(lake, (guard = new GuardedLake(lake)));
    return guard;
  }
  throw new AirlockError('INTERNAL', 'the MCP endpoint needs a lake or a guarded lake');
}

/**
 * Answers one request to `/mcp` with the MCP streamable HTTP transport, stateless: every
 * POST builds a server and a transport for that request only and answers with plain JSON
 * (no session, no SSE), so it works the same behind `airlock serve` and a Lambda function
 * URL, where no state survives between requests. The actor comes from `actorFor` before
 * anything runs; a thrown error (e.g. DENIED, 401 without a token) propagates to the HTTP
 * app's error handler. GET (a server-to-client stream) and DELETE (ending a session) have
 * no meaning without sessions: they get 405 with `Allow: POST`, as the spec lets
 * stateless servers answer.
 *
 * @example
 * app.all('/mcp', (c) => handleMcpRequest(c.req.raw, { lake, actorFor }));
 */
export async function handleMcpRequest(request: Request, options: McpHttpOptions): Promise<Response> {
  if (request.method !== 'POST') {
    return new Response(
      JSON.stringify({
        jsonrpc: '2.0',
        error: { code: -32000, message: 'Method not allowed: this MCP server is stateless; send JSON-RPC with POST' },
        id: null,
      }),
      { status: 405, headers: { allow: 'POST', 'content-type': 'application/json' } },
    );
  }
  const actor = await options.actorFor(request);
  const server = createMcpServer({
    operations: guardedOperations(guardOf(options.lake), { serverPaths: false }),
    actor: () => actor,
    ...(options.log ? { log: options.log } : {}),
  });
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  await server.connect(transport);
  try {
    // With JSON responses the transport resolves once every answer is in the body.
    return await transport.handleRequest(request);
  } finally {
    await server.close();
  }
}
