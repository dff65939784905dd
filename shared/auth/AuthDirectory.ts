import { randomBytes } from 'node:crypto';
import { conflict, denied, invalid, isConflict, notFound } from '../errors/index.js';
import type { CatalogItem, CatalogStore } from '../store/index.js';
import {
  type Grant,
  type MaskKind,
  type Person,
  type Principal,
  ROLES,
  type Role,
  type RowFilter,
  type StoredGrant,
  type TokenInfo,
  type TokenRecord,
} from './model.js';
import { DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS, mintToken, parseToken, secretMatches } from './tokens.js';

/** The store partition of people, tokens, grants and reader policies. */
export const AUTH_PARTITION = 'auth';
const PERSON = 'person#';
const TOKEN = 'token#';
const GRANT = 'grant#';
const ROWS = 'rows#';
const SETTINGS_KEY = { pk: AUTH_PARTITION, sk: 'settings' };

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** Checks a person or agent name: letters, digits, `._@-`, at most 64 characters. */
export function checkName(kind: 'person' | 'agent', name: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw invalid(`a ${kind} name is 1–64 letters, digits, '.', '_', '@' or '-' (starting with a letter or digit)`, {
      [kind]: name,
    });
  }
  return name;
}

/** Checks a role name. */
export function checkRole(role: string): Role {
  if (!(ROLES as readonly string[]).includes(role)) throw invalid(`unknown role '${role}' (use ${ROLES.join(', ')})`);
  return role as Role;
}

/** The lake-wide settings of masks. */
export interface AuthSettings {
  maskKind: MaskKind;
  /** Secret key of hash masks (stable, so hashes join across queries); never shown. */
  maskKey: string;
}

/**
 * Where people, tokens, grants and row filters live: one partition of the
 * {@link CatalogStore}, so the same code runs on SQLite and DynamoDB. It stores and
 * looks up; it decides nothing (see `Authority`).
 */
export class AuthDirectory {
  constructor(
    private readonly store: CatalogStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  // ------------------------------------------------------------ people
  /** Adds a person; CONFLICT when the name is taken. */
  async addPerson(name: string, role: Role, createdBy: string): Promise<Person> {
    const person: Person = { name: checkName('person', name), role, created: this.time(), createdBy };
    try {
      await this.store.put({ pk: AUTH_PARTITION, sk: PERSON + name, data: { ...person } }, { kind: 'absent' });
    } catch (e) {
      if (isConflict(e)) throw conflict(`a person named '${name}' already exists`, { person: name });
      throw e;
    }
    return person;
  }

  /** Changes a person's role; NOT_FOUND for an unknown person. */
  async setRole(name: string, role: Role): Promise<Person> {
    const person = await this.person(name);
    if (!person) throw notFound(`no person named '${name}' (airlock user add ${name})`, { person: name });
    const next = { ...person, role };
    await this.store.put({ pk: AUTH_PARTITION, sk: PERSON + name, data: { ...next } }, { kind: 'exists' });
    return next;
  }

  async person(name: string): Promise<Person | undefined> {
    const item = await this.store.get({ pk: AUTH_PARTITION, sk: PERSON + name });
    return item ? (item.data as unknown as Person) : undefined;
  }

  async people(): Promise<Person[]> {
    return (await this.all(PERSON)).map((i) => i.data as unknown as Person);
  }

  // ------------------------------------------------------------ tokens
  /**
   * Creates a token for a person (and agent); returns its text once. Only the SHA-256 of
   * the secret is stored. The TTL is finite: default 7 days, at most 90.
   */
  async createToken(options: {
    person: string;
    agent?: string;
    scopes: string[];
    ttlMs?: number;
  }): Promise<{ token: string; info: TokenInfo }> {
    const ttl = options.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
    if (!(ttl > 0 && ttl <= MAX_TOKEN_TTL_MS)) throw invalid('a token lives at most 90 days');
    const minted = mintToken();
    const created = this.now();
    const record: TokenRecord = {
      id: minted.id,
      person: options.person,
      ...(options.agent ? { agent: options.agent } : {}),
      scopes: options.scopes,
      hash: minted.hash,
      created: created.toISOString(),
      expires: new Date(created.getTime() + ttl).toISOString(),
    };
    await this.store.put({ pk: AUTH_PARTITION, sk: TOKEN + minted.id, data: { ...record } }, { kind: 'absent' });
    return { token: minted.text, info: tokenInfo(record) };
  }

  /**
   * The token record behind a presented token text, checked: well-formed, known, secret
   * matching (constant time), not revoked, not expired. Every failure is DENIED with a
   * message that never repeats the text.
   */
  async authenticate(text: string): Promise<TokenRecord> {
    const { id, secret } = parseToken(text);
    const item = await this.store.get({ pk: AUTH_PARTITION, sk: TOKEN + id });
    const record = item?.data as unknown as TokenRecord | undefined;
    // The secret is compared even when the id is unknown, so both take the same time.
    const matches = secretMatches(secret, record?.hash ?? '0'.repeat(64));
    if (!record || !matches) throw denied('the token is not valid (unknown or wrong secret)');
    if (record.revoked) throw denied(`token ${id} was revoked at ${record.revoked}`, { token: id });
    if (Date.parse(record.expires) <= this.now().getTime()) {
      throw denied(`token ${id} expired at ${record.expires}; create a new one (airlock token create)`, {
        token: id,
      });
    }
    return record;
  }

  async token(id: string): Promise<TokenInfo | undefined> {
    const item = await this.store.get({ pk: AUTH_PARTITION, sk: TOKEN + id });
    return item ? tokenInfo(item.data as unknown as TokenRecord) : undefined;
  }

  async tokens(): Promise<TokenInfo[]> {
    return (await this.all(TOKEN)).map((i) => tokenInfo(i.data as unknown as TokenRecord));
  }

  /** Revokes a token (idempotent: revoking twice keeps the first time). */
  async revokeToken(id: string): Promise<TokenInfo> {
    const item = await this.store.get({ pk: AUTH_PARTITION, sk: TOKEN + id });
    if (!item) throw notFound(`no token with id '${id}' (airlock token list)`, { token: id });
    const record = item.data as unknown as TokenRecord;
    if (record.revoked) return tokenInfo(record);
    const next = { ...record, revoked: this.time() };
    await this.store.put({ pk: AUTH_PARTITION, sk: TOKEN + id, data: { ...next } }, { kind: 'exists' });
    return tokenInfo(next);
  }

  // ------------------------------------------------------------ grants
  // A grant's key is `grant#<person>#<id>`: a person's grants are one prefix read, whatever
  // the number of grants in the lake (every request reads them).
  async addGrant(person: string, grant: Grant, createdBy: string): Promise<StoredGrant> {
    const stored: StoredGrant = {
      ...grant,
      id: randomBytes(6).toString('hex'),
      person,
      created: this.time(),
      createdBy,
    };
    await this.store.put(
      { pk: AUTH_PARTITION, sk: grantKey(person, stored.id), data: { ...stored } },
      { kind: 'absent' },
    );
    return stored;
  }

  async grants(person?: string): Promise<StoredGrant[]> {
    const items = await this.all(person === undefined ? GRANT : `${GRANT}${person}#`);
    return items.map((i) => i.data as unknown as StoredGrant);
  }

  /** One grant by id (a scan of the grants: only grant changes look grants up by id). */
  async grant(id: string): Promise<StoredGrant | undefined> {
    return (await this.grants()).find((g) => g.id === id);
  }

  async removeGrant(id: string): Promise<void> {
    const g = await this.grant(id);
    if (!g) throw notFound(`no grant with id '${id}' (airlock grant list)`, { grant: id });
    await this.store.transact([
      { op: 'delete', key: { pk: AUTH_PARTITION, sk: grantKey(g.person, id) }, condition: { kind: 'exists' } },
    ]);
  }

  // ------------------------------------------------------------ row filters
  /** Sets (replaces) the row filter of a table for a principal. */
  async setRowFilter(table: string, principal: Principal, predicate: string, createdBy: string): Promise<RowFilter> {
    const filter: RowFilter = { table, principal, predicate, created: this.time(), createdBy };
    await this.store.put({ pk: AUTH_PARTITION, sk: rowsKey(table, principal), data: { ...filter } });
    return filter;
  }

  async removeRowFilter(table: string, principal: Principal): Promise<void> {
    const key = { pk: AUTH_PARTITION, sk: rowsKey(table, principal) };
    if (!(await this.store.get(key))) {
      throw notFound(`no row filter on ${table} for ${principalText(principal)}`, { table });
    }
    await this.store.transact([{ op: 'delete', key, condition: { kind: 'exists' } }]);
  }

  async rowFilters(): Promise<RowFilter[]> {
    return (await this.all(ROWS)).map((i) => i.data as unknown as RowFilter);
  }

  // ------------------------------------------------------------ settings
  /** The mask settings, created on first use with a random 256-bit mask key. */
  async settings(): Promise<AuthSettings> {
    const item = await this.store.get(SETTINGS_KEY);
    if (item) return item.data as unknown as AuthSettings;
    const fresh: AuthSettings = { maskKind: 'hash', maskKey: randomBytes(32).toString('hex') };
    try {
      await this.store.put({ ...SETTINGS_KEY, data: { ...fresh } }, { kind: 'absent' });
      return fresh;
    } catch (e) {
      if (!isConflict(e)) throw e;
      return (await this.store.get(SETTINGS_KEY))?.data as unknown as AuthSettings; // another writer won
    }
  }

  async setMaskKind(kind: MaskKind): Promise<AuthSettings> {
    const next = { ...(await this.settings()), maskKind: kind };
    await this.store.put({ ...SETTINGS_KEY, data: { ...next } });
    return next;
  }

  private time(): string {
    return this.now().toISOString();
  }

  private async all(prefix: string): Promise<CatalogItem[]> {
    const out: CatalogItem[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.query(AUTH_PARTITION, { prefix, ...(cursor ? { cursor } : {}) });
      out.push(...page.items);
      cursor = page.cursor;
    } while (cursor);
    return out;
  }
}

function tokenInfo(record: TokenRecord): TokenInfo {
  const { hash: _hash, ...info } = record;
  return info;
}

function grantKey(person: string, id: string): string {
  return `${GRANT}${person}#${id}`;
}

function rowsKey(table: string, principal: Principal): string {
  return `${ROWS}${table}#${'person' in principal ? `person:${principal.person}` : `role:${principal.role}`}`;
}

/** `person ann` / `role reader`. */
export function principalText(principal: Principal): string {
  return 'person' in principal ? `person ${principal.person}` : `role ${principal.role}`;
}
