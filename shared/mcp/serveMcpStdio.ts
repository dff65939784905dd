import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { GuardedLake } from '../auth/index.js';
import type { Actor } from '../catalog/index.js';
import { createMcpServer } from './createMcpServer.js';
import { guardedOperations } from './mcpOperations.js';

/** Options of {@link serveMcpStdio}. */
export interface McpStdioOptions {
  /** The enforcement point every tool call goes through. */
  guard: GuardedLake;
  /** Who acts for the whole connection (from `AIRLOCK_TOKEN`, or the owner of an embedded lake). */
  actor: Actor;
  /** Whether tools may read files and folders on this machine (true on an embedded lake). */
  serverPaths: boolean;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

/**
 * Serves MCP over stdio until the client closes stdin. Only protocol messages go to
 * stdout; anything else (failures, notes) goes to stderr. Resolves once the connection
 * is closed.
 */
export async function serveMcpStdio(options: McpStdioOptions): Promise<void> {
  const server = createMcpServer({
    operations: guardedOperations(options.guard, { serverPaths: options.serverPaths }),
    actor: () => options.actor,
  });
  const input = (options.input ?? process.stdin) as NodeJS.ReadableStream;
  const transport = new StdioServerTransport(
    input as typeof process.stdin,
    (options.output ?? process.stdout) as typeof process.stdout,
  );
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    input.once('end', () => resolve());
  });
  await server.connect(transport);
  await closed;
  await server.close();
}
