import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { AirlockError } from '../errors/index.js';

/** A listening HTTP server. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:7070`. */
  url: string;
  /** The bound port (useful with `port: 0`, which picks a free one). */
  port: number;
  /**
   * Stops accepting connections and resolves once open requests finished, or after the
   * grace period, when the remaining connections are cut.
   */
  close(): Promise<void>;
}

/** Options of {@link listen}. */
export interface ListenOptions {
  port: number;
  host: string;
  /** How long `close()` lets in-flight requests finish (default 5 s). */
  graceMs?: number;
}

/**
 * Serves a fetch-style app (the one from `createHttpApp`) on Node's HTTP server through
 * `@hono/node-server`, resolving once it listens. A port in use or a host that cannot be
 * bound rejects with an INVALID error that says which.
 *
 * @example
 * const server = await listen(createHttpApp({ lake, actorFor }), { port: 0, host: '127.0.0.1' });
 * await fetch(`${server.url}/v1/health`);
 * await server.close();
 */
export function listen(
  app: { fetch(request: Request): Response | Promise<Response> },
  options: ListenOptions,
): Promise<RunningServer> {
  const graceMs = options.graceMs ?? 5_000;
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) =>
      reject(
        new AirlockError(
          'INVALID',
          `cannot listen on ${options.host}:${options.port}: ${e.code === 'EADDRINUSE' ? 'the port is in use; pick another with --port' : e.message}`,
          { cause: e, details: { host: options.host, port: options.port } },
        ),
      );
    const server = serve(
      { fetch: (request) => app.fetch(request), port: options.port, hostname: options.host },
      (info) => {
        server.off('error', onError);
        const host = info.address.includes(':') ? `[${info.address}]` : info.address;
        resolve({ url: `http://${host}:${info.port}`, port: info.port, close: () => closeServer(server, graceMs) });
      },
    ) as Server;
    server.once('error', onError);
  });
}

function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    cut.unref();
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    // Idle keep-alive connections would otherwise hold close() open until they time out.
    server.closeIdleConnections();
  });
}
