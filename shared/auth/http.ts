import { AsyncLocalStorage } from 'node:async_hooks';
import type { Actor } from '../catalog/index.js';
import { AirlockError, isDenied } from '../errors/index.js';
import type { Lake, QueryOptions } from '../lake/Lake.js';
import type { QuerySink } from '../query/index.js';
import type { AuthActor } from './Authority.js';
import type { GuardedLake } from './GuardedLake.js';

/** The actor of the request being served (set by {@link bearerActor}, read by {@link guardedHttpLake}). */
const requestScope = new AsyncLocalStorage<{ actor?: AuthActor }>();

/** An `AirlockError` answered with HTTP 401: no or bad credentials (`details.authentication`). */
export function unauthenticated(message: string): AirlockError {
  return new AirlockError('DENIED', message, { details: { authentication: true } });
}

/**
 * The `actorFor` of an HTTP app that requires `Authorization: Bearer <token>`: a missing,
 * malformed, unknown, expired or revoked token is refused with 401 (and audited by the
 * guard); the token itself is never echoed or logged.
 */
export function bearerActor(guard: GuardedLake): (request: Request) => Promise<AuthActor> {
  return async (request) => {
    const header = request.headers.get('authorization');
    if (!header) throw unauthenticated('this API needs a bearer token: send Authorization: Bearer <token>');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw unauthenticated('the Authorization header must be: Bearer <token>');
    let actor: AuthActor;
    try {
      actor = await guard.authenticate(m[1] as string);
    } catch (e) {
      if (isDenied(e)) throw unauthenticated(e.message);
      throw e;
    }
    const scope = requestScope.getStore();
    if (scope) scope.actor = actor;
    return actor;
  };
}

/** Wraps a fetch-style app so each request has its own actor scope (needed by {@link guardedHttpLake}). */
export function withRequestScope<A extends { fetch(request: Request): Response | Promise<Response> }>(
  app: A,
): { fetch(request: Request): Promise<Response> } {
  return { fetch: (request) => requestScope.run({}, async () => app.fetch(request)) };
}

/** Runs `fn` in a fresh request scope (Lambda handlers). */
export function inRequestScope<T>(fn: () => Promise<T>): Promise<T> {
  return requestScope.run({}, fn);
}

function currentActor(): AuthActor {
  const actor = requestScope.getStore()?.actor;
  if (!actor) throw new AirlockError('DENIED', 'no authenticated actor for this request');
  return actor;
}

/**
 * The lake as the HTTP routes (and MCP tools) see it: every operation goes through the
 * guard. Methods that take an actor pass it on; catalog reads that take none use the
 * request's authenticated actor (see {@link withRequestScope}), and fail closed without
 * one. Everything else (stores, owner, internal catalog calls of the pipeline runner)
 * passes through unchanged.
 */
export function guardedHttpLake(guard: GuardedLake): Lake {
  const lake = guard.lake;
  const catalog = new Proxy(lake.catalog, {
    get(target, prop, receiver) {
      switch (prop) {
        case 'listBranches':
          return () => guard.listBranches(currentActor());
        case 'listTags':
          return () => guard.listTags(currentActor());
        case 'listTables':
          return (ref: string) => guard.listTables(currentActor(), { ref });
        case 'getTable':
          return (ref: string, table: string) => guard.showTable(currentActor(), { table, ref });
        case 'history':
          return (ref: string, limit?: number) =>
            guard.log(currentActor(), { ref, ...(limit !== undefined ? { limit } : {}) });
        case 'diff':
          return (from: string, to: string) => guard.diff(currentActor(), { from, to });
        case 'createBranch':
          return (name: string, from: string, actor: Actor) => guard.createBranch(actor, { name, from });
        case 'deleteBranch':
          return (name: string, actor: Actor) => guard.deleteBranch(actor, { name });
        case 'restoreBranch':
          return (name: string, actor: Actor) => guard.restoreBranch(actor, { name });
        case 'createTag':
          return (name: string, ref: string, actor: Actor) => guard.createTag(actor, { name, ref });
        case 'merge':
          return (source: string, into: string, o: { actor: Actor; message?: string; dryRun?: boolean }) =>
            guard.merge(o.actor, {
              source,
              into,
              ...(o.message ? { message: o.message } : {}),
              ...(o.dryRun ? { dryRun: true } : {}),
            });
        case 'revert':
          return (commit: string, branch: string, o: { actor: Actor; message?: string }) =>
            guard.revert(o.actor, { commit, branch, ...(o.message ? { message: o.message } : {}) });
        default: {
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        }
      }
    },
  });
  return new Proxy(lake, {
    get(target, prop, receiver) {
      switch (prop) {
        case 'guard': // the MCP endpoint calls the guard itself (shared/mcp/handleMcpRequest.ts)
          return guard;
        case 'catalog':
          return catalog;
        case 'query':
          return (actor: AuthActor, o: QueryOptions) => guard.query(actor, o);
        case 'streamQuery':
          return (actor: AuthActor, o: QueryOptions, sink: QuerySink) => guard.streamQuery(actor, o, sink);
        case 'queryCaps':
          return (actor: AuthActor, scope: { person?: string }) => guard.showCaps(actor, scope);
        case 'setQueryCaps':
          return (actor: AuthActor, scope: { person?: string }, caps: Record<string, number>) =>
            guard.setCaps(actor, scope, caps);
        case 'unsetQueryCaps':
          return (actor: AuthActor, scope: { person?: string }, names: string[]) =>
            guard.unsetCaps(actor, scope, names);
        case 'importTable':
          return (actor: AuthActor, o: Parameters<Lake['importTable']>[1]) => guard.importTable(actor, o);
        case 'exportTable':
          return (actor: AuthActor, o: { table: string; ref: string; file: string }) => guard.exportTable(actor, o);
        case 'dropTable':
          return (actor: AuthActor, o: { table: string; branch: string }) => guard.dropTable(actor, o);
        case 'addColumn':
          return (actor: AuthActor, o: Parameters<Lake['addColumn']>[1]) => guard.addColumn(actor, o);
        default: {
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        }
      }
    },
  });
}
