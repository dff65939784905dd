import type { Actor, TableSchema } from '../catalog/index.js';
import type { AuthDirectory } from './AuthDirectory.js';
import {
  BRANCH_RIGHTS,
  type BranchRight,
  branchRightCovers,
  defaultAgentScopes,
  type Grant,
  type MaskKind,
  matchesPattern,
  type Role,
  type TableRight,
  tableRightCovers,
  roleGrants,
} from './model.js';

/**
 * An actor as the enforcement point sees it: the person, the agent, and the scopes of the
 * token the request came with. Interfaces get it from {@link Authority.authenticate} (or
 * build `{person: owner}` for the embedded lake's owner); without `scopes`, a person acts
 * with all of their rights and an agent with {@link defaultAgentScopes}.
 */
export interface AuthActor extends Actor {
  scopes?: string[];
  /** The id of the token the request came with (never its secret). */
  tokenId?: string;
}

/** A person's standing: role and every grant (role bundle + explicit grants). */
export interface Standing {
  person: string;
  role: Role | undefined;
  owner: boolean;
  grants: Grant[];
}

interface ParsedScope {
  right: string;
  pattern?: string;
}

/** What a reader may see of a snapshot: readable tables, masks and row filters. */
export interface ReaderPolicy {
  readable: Set<string>;
  masks: Record<string, Record<string, MaskKind>>;
  rowFilters: Record<string, string>;
  maskKey: string;
}

/**
 * Decides what an actor may do. An agent is never a principal: its rights are its
 * person's grants intersected with its token's scopes. The lake's owner holds the admin
 * role. A person unknown to the lake (and not the owner) holds nothing.
 */
export class Authority {
  /**
   * Standings and reader settings read within the last `cacheMs` (default 1 s): one request
   * asks for them several times, a server asks for them on every request. Changes made
   * through this process clear the cache at once ({@link forget}); changes made by another
   * process are seen within `cacheMs`. Tokens are never cached: a revocation holds at once.
   */
  private readonly cache = new Map<string, { at: number; value: Promise<unknown> }>();
  private readonly cacheMs: number;

  constructor(
    readonly directory: AuthDirectory,
    readonly owner: string,
    options: { cacheMs?: number } = {},
  ) {
    this.cacheMs = options.cacheMs ?? 1000;
  }

  /** Forgets every cached standing and reader setting (after a grant change). */
  forget(): void {
    this.cache.clear();
  }

  private cached<T>(key: string, read: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < this.cacheMs) return hit.value as Promise<T>;
    const value = read();
    this.cache.set(key, { at: now, value });
    value.catch(() => this.cache.delete(key));
    return value;
  }

  /** The actor behind a presented token (DENIED for malformed, unknown, expired, revoked tokens). */
  async authenticate(token: string): Promise<AuthActor> {
    const record = await this.directory.authenticate(token);
    return {
      person: record.person,
      ...(record.agent ? { agent: record.agent } : {}),
      scopes: record.scopes,
      tokenId: record.id,
    };
  }

  /** The person's role and grants. */
  standing(person: string): Promise<Standing> {
    return this.cached(`standing#${person}`, () => this.readStanding(person));
  }

  private async readStanding(person: string): Promise<Standing> {
    const owner = person === this.owner;
    const [record, grants] = await Promise.all([this.directory.person(person), this.directory.grants(person)]);
    const role: Role | undefined = owner ? 'admin' : record?.role;
    return {
      person,
      role,
      owner,
      grants: [
        ...(role ? roleGrants(role) : []),
        ...grants.map(({ on, pattern, right }) => ({ on, pattern, right }) as Grant),
      ],
    };
  }

  /** True when the actor (person's grants ∩ token scopes) holds `right` on `branch`. */
  async canBranch(actor: AuthActor, right: BranchRight, branch: string, standing?: Standing): Promise<boolean> {
    const s = standing ?? (await this.standing(actor.person));
    const held = s.grants.some(
      (g) => g.on === 'branch' && branchRightCovers(g.right, right) && matchesPattern(g.pattern, branch),
    );
    return held && scopesOf(actor).some((sc) => scopeCoversBranch(sc, right, branch));
  }

  /** True when the person holds `right` on `table` (and, for `unmask`, the token scopes allow it). */
  async canTable(actor: AuthActor, right: TableRight, table: string, standing?: Standing): Promise<boolean> {
    const s = standing ?? (await this.standing(actor.person));
    const held = s.grants.some(
      (g) => g.on === 'table' && tableRightCovers(g.right, right) && matchesPattern(g.pattern, table),
    );
    if (!held) return false;
    if (right === 'unmask') return scopesOf(actor).some((sc) => sc.right === '*' || sc.right === 'unmask');
    const wanted: BranchRight = right === 'write' ? 'write' : 'read';
    return scopesOf(actor).some(
      (sc) => sc.right === '*' || (isBranchRight(sc.right) && branchRightCovers(sc.right, wanted)),
    );
  }

  /** True when the actor's token allows starting pipelines (`run` or `*` scope). */
  mayRunPipelines(actor: AuthActor): boolean {
    return scopesOf(actor).some((sc) => sc.right === '*' || sc.right === 'run');
  }

  /** True when the PERSON (ignoring scopes) holds lake admin: admin on every branch. */
  async personIsAdmin(person: string, standing?: Standing): Promise<boolean> {
    const s = standing ?? (await this.standing(person));
    return s.grants.some((g) => g.on === 'branch' && g.right === 'admin' && g.pattern === '*');
  }

  /**
   * May this actor approve an action on `target`? Only a person (an agent never): for a
   * merge, one holding merge on the target branch (approvers and admins do); for any other
   * action (grant, export, unmask, delete), an admin. The approvals
   * service also checks the approver is not the requester.
   */
  async mayApprove(actor: Actor, target: string, action = 'merge'): Promise<boolean> {
    if (actor.agent !== undefined) return false;
    const s = await this.standing(actor.person);
    // Grants, exports, unmasking and deletes are approved by admins; merges by whoever may merge the target.
    if (action !== 'merge') return this.personIsAdmin(actor.person, s);
    return s.grants.some(
      (g) => g.on === 'branch' && branchRightCovers(g.right, 'merge') && matchesPattern(g.pattern, target),
    );
  }

  /**
   * What the actor may see of a snapshot's tables: the readable ones; `pii` columns masked
   * unless the person holds `unmask` on the table (and the token allows it); the row
   * filter set for the person, else for the person's role.
   */
  async readerPolicy(
    actor: AuthActor,
    tables: ReadonlyArray<{ name: string; schema: TableSchema }>,
  ): Promise<ReaderPolicy> {
    const s = await this.standing(actor.person);
    const [filters, settings] = await Promise.all([
      this.cached('rowFilters', () => this.directory.rowFilters()),
      this.cached('settings', () => this.directory.settings()),
    ]);
    const policy: ReaderPolicy = { readable: new Set(), masks: {}, rowFilters: {}, maskKey: settings.maskKey };
    for (const t of tables) {
      if (!(await this.canTable(actor, 'read', t.name, s))) continue;
      policy.readable.add(t.name);
      const pii = t.schema.fields.filter((f) => f.tags.includes('pii'));
      if (pii.length > 0 && !(await this.canTable(actor, 'unmask', t.name, s))) {
        policy.masks[t.name] = Object.fromEntries(pii.map((f) => [f.name, settings.maskKind]));
      }
      const mine = filters.find(
        (f) => f.table === t.name && 'person' in f.principal && f.principal.person === s.person,
      );
      const byRole = filters.find((f) => f.table === t.name && 'role' in f.principal && f.principal.role === s.role);
      const filter = mine ?? byRole;
      if (filter) policy.rowFilters[t.name] = filter.predicate;
    }
    return policy;
  }
}

function isBranchRight(right: string): right is BranchRight {
  return (BRANCH_RIGHTS as readonly string[]).includes(right);
}

function scopesOf(actor: AuthActor): ParsedScope[] {
  const scopes = actor.scopes ?? (actor.agent !== undefined ? defaultAgentScopes(actor.agent) : ['*']);
  return scopes.map(parseScope);
}

/** `right` or `right:pattern`. */
export function parseScope(scope: string): ParsedScope {
  const at = scope.indexOf(':');
  return at < 0 ? { right: scope } : { right: scope.slice(0, at), pattern: scope.slice(at + 1) };
}

function scopeCoversBranch(scope: ParsedScope, right: BranchRight, branch: string): boolean {
  if (scope.right === '*') return scope.pattern === undefined || matchesPattern(scope.pattern, branch);
  if (!isBranchRight(scope.right) || !branchRightCovers(scope.right, right)) return false;
  return scope.pattern === undefined || matchesPattern(scope.pattern, branch);
}

/** Every scope right a token may carry. */
export const SCOPE_RIGHTS = ['*', ...BRANCH_RIGHTS, 'run', 'unmask'] as const;
