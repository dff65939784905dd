/**
 * The MCP server of a lake: tools for agents (tables, query, branches, import, pipeline
 * runs, diff, propose merge, log) over stdio (`airlock mcp`) and streamable HTTP (`/mcp`
 * of the HTTP app). Every tool reaches the lake through one adapter (`guardedOperations`), which calls the guard of `shared/auth`.
 */
export { createMcpServer, DEFAULT_MCP_MAX_ROWS, MCP_SERVER_INFO, toolError, toolResult } from './createMcpServer.js';
export { handleMcpRequest } from './handleMcpRequest.js';
export { guardedOperations, MAX_INLINE_IMPORT_BYTES } from './mcpOperations.js';
export { serveMcpStdio } from './serveMcpStdio.js';

export type { McpServerOptions } from './createMcpServer.js';
export type { McpHttpOptions } from './handleMcpRequest.js';
export type {
  GuardedOperationsOptions,
  InlineFormat,
  McpImport,
  McpOperations,
  McpRun,
} from './mcpOperations.js';
export type { McpStdioOptions } from './serveMcpStdio.js';
