/**
 * The authority model: people (principals) with a role and grants, agent tokens that bind
 * (person, agent, scopes, expiry), and reader policies (row filters per table per person
 * or role). Roles are fixed bundles of grants; grants add to a role, never subtract.
 */

/** The fixed roles, from least to most powerful. */
export const ROLES = ['reader', 'writer', 'approver', 'admin'] as const;
/** A role: a named bundle of grants (see {@link roleGrants}). */
export type Role = (typeof ROLES)[number];

/** Rights on branch patterns; each implies the ones before it (admin ⊇ merge ⊇ write ⊇ read). */
export const BRANCH_RIGHTS = ['read', 'write', 'merge', 'admin'] as const;
export type BranchRight = (typeof BRANCH_RIGHTS)[number];

/** Rights on table patterns: write ⊇ read; `unmask` shows `pii` columns unmasked. */
export const TABLE_RIGHTS = ['read', 'write', 'unmask'] as const;
export type TableRight = (typeof TABLE_RIGHTS)[number];

/** One grant: a right on a branch pattern or a table pattern (`*` matches any run of characters). */
export type Grant =
  | { on: 'branch'; pattern: string; right: BranchRight }
  | { on: 'table'; pattern: string; right: TableRight };

/** A stored grant to one person. */
export type StoredGrant = Grant & { id: string; person: string; created: string; createdBy: string };

/** A person known to the lake. */
export interface Person {
  name: string;
  role: Role;
  created: string;
  createdBy: string;
}

/**
 * Rights a token may exercise. A scope is `right` or `right:branch-pattern`, with right one
 * of `read`, `write`, `merge`, `admin` (on branches), `run` (start pipelines), `unmask`
 * (see `pii` columns, if the person may) or `*` (everything the person may do).
 */
export type Scope = string;

/** The scopes of an agent token when none are given: read, its own branches, run branches, pipelines. */
export function defaultAgentScopes(agent: string): Scope[] {
  return ['read', `write:agent/${agent}/*`, 'write:run/*', 'run'];
}

/** A token as stored: the secret only as its SHA-256. */
export interface TokenRecord {
  id: string;
  person: string;
  agent?: string;
  scopes: Scope[];
  /** Lowercase hex SHA-256 of the secret part. */
  hash: string;
  created: string;
  expires: string;
  revoked?: string;
}

/** A token as listed: never its hash. */
export type TokenInfo = Omit<TokenRecord, 'hash'>;

/** Who a row filter applies to: one person, or everyone holding a role. */
export type Principal = { person: string } | { role: Role };

/** A row filter: only rows of `table` matching `predicate` are visible to `principal`. */
export interface RowFilter {
  table: string;
  principal: Principal;
  /** A SQL predicate over the table's own columns. */
  predicate: string;
  created: string;
  createdBy: string;
}

/** How masked (`pii`) columns read: a keyed hash of the value, or NULL. */
export type MaskKind = 'hash' | 'null';

/** The grants a role stands for. */
export function roleGrants(role: Role): Grant[] {
  const reader: Grant[] = [
    { on: 'branch', pattern: '*', right: 'read' },
    { on: 'table', pattern: '*', right: 'read' },
  ];
  const writer: Grant[] = [
    { on: 'branch', pattern: '*', right: 'write' },
    { on: 'table', pattern: '*', right: 'write' },
  ];
  switch (role) {
    case 'reader':
      return reader;
    case 'writer':
      return [...reader, ...writer];
    case 'approver':
      return [...reader, ...writer, { on: 'branch', pattern: '*', right: 'merge' }];
    case 'admin':
      return [
        ...reader,
        ...writer,
        { on: 'branch', pattern: '*', right: 'admin' },
        { on: 'table', pattern: '*', right: 'unmask' },
      ];
  }
}

/** True when `name` matches `pattern` (`*` matches any run of characters, including `/`). */
export function matchesPattern(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  const parts = pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`, 's').test(name);
}

/** True when a held branch right covers a wanted one (admin ⊇ merge ⊇ write ⊇ read). */
export function branchRightCovers(held: BranchRight, wanted: BranchRight): boolean {
  return BRANCH_RIGHTS.indexOf(held) >= BRANCH_RIGHTS.indexOf(wanted);
}

/** True when a held table right covers a wanted one (write ⊇ read; unmask only itself). */
export function tableRightCovers(held: TableRight, wanted: TableRight): boolean {
  if (held === wanted) return true;
  return held === 'write' && wanted === 'read';
}
