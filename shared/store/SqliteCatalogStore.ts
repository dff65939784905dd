import Database from 'better-sqlite3';
import { AirlockError, conflict, invalid } from '../errors/index.js';
import { assertItem, assertTransaction, keyOfOp, transactionFingerprint } from './itemRules.js';
import { conditionHolds } from './MemoryCatalogStore.js';
import type { CatalogItem, CatalogStore, Condition, ItemKey, QueryOptions, QueryPage, WriteOp } from './ports.js';
import { decodeCursor, encodeCursor, pageLimit, resolveRange } from './ranges.js';
import { type RetryPolicy, type Sleep, withRetry } from './retry.js';

/** The schema version this code writes and reads. Bumped by migrations; a newer lake is refused. */
export const SQLITE_SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
  pk TEXT NOT NULL,
  sk TEXT NOT NULL,
  t TEXT NULL,
  v INTEGER NULL,
  d TEXT NOT NULL,
  PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_by_time ON items (pk, t) WHERE t IS NOT NULL;
CREATE TABLE IF NOT EXISTS tokens (
  token TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  at TEXT NOT NULL
) WITHOUT ROWID;
`;

/** Options of {@link openSqliteCatalogStore}. */
export interface SqliteCatalogStoreOptions {
  /** How long one statement waits for another process's lock before SQLite gives up (default 15 s, at least 10 s). */
  busyTimeoutMs?: number;
  /** Retries after SQLite still reports `SQLITE_BUSY` (e.g. during WAL recovery), on top of the busy timeout. */
  retry?: RetryPolicy;
  /** Injected clock for the retry backoff. */
  sleep?: Sleep;
}

interface Row {
  pk: string;
  sk: string;
  t: string | null;
  v: number | null;
  d: string;
}

const GETMANY_CHUNK = 200;
const BUSY_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 20, maxDelayMs: 500 };

function toItem(row: Row): CatalogItem {
  const item: CatalogItem = { pk: row.pk, sk: row.sk, data: JSON.parse(row.d) as Record<string, unknown> };
  if (row.t !== null) item.t = row.t;
  if (row.v !== null) item.v = row.v;
  return item;
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

function describe(condition: Condition | undefined): string {
  if (!condition) return 'none';
  return condition.kind === 'version' ? `version = ${condition.v}` : condition.kind;
}

/**
 * The embedded {@link CatalogStore}: one SQLite file, safe to share between OS processes.
 *
 * Guarantees:
 * - WAL mode, so readers never block the writer and every read sees every committed write.
 * - Every write runs in a `BEGIN IMMEDIATE` transaction that takes the database's write
 *   lock *before* it reads the condition's item. Without it, two processes could both read
 *   "sequence 42 is free" under a shared lock and both write it — the lost-update race
 *   that conditional appends exist to prevent. With it, the second writer waits (busy
 *   timeout ≥ 10 s), then sees the first writer's row and fails its condition.
 * - `SQLITE_BUSY` never passes silently: it is retried with backoff, then surfaced as an
 *   `INTERNAL` error.
 * - Transactions are all-or-nothing and idempotent per token: the token and the
 *   operations' fingerprint are recorded in the same transaction as the writes, so a
 *   retry after a crash either finds the token (no-op success) or finds nothing applied.
 *   Reusing a token for different operations is `INVALID`.
 */
export class SqliteCatalogStore implements CatalogStore {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly retry: RetryPolicy;
  private readonly sleep: Sleep | undefined;

  /** Opens (creating when missing) the database at `path` (`:memory:` for a private in-memory store). */
  constructor(path: string, options: SqliteCatalogStoreOptions = {}) {
    const busyTimeout = Math.max(10_000, options.busyTimeoutMs ?? 15_000);
    this.retry = options.retry ?? BUSY_RETRY;
    this.sleep = options.sleep;
    this.db = new Database(path, { timeout: busyTimeout });
    try {
      this.db.pragma(`busy_timeout = ${busyTimeout}`);
      this.db.pragma('journal_mode = WAL');
      // FULL: a commit the caller saw succeed survives power loss, not just a process crash.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db
        .transaction(() => {
          this.db.exec(SCHEMA);
          const row = this.db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).get() as
            | { value: string }
            | undefined;
          if (row === undefined) {
            this.db
              .prepare(`INSERT INTO meta (key, value) VALUES ('schema_version', ?)`)
              .run(String(SQLITE_SCHEMA_VERSION));
          } else if (Number(row.value) > SQLITE_SCHEMA_VERSION) {
            throw invalid(
              `the catalog at ${path} has schema version ${row.value}, newer than this Airlock supports (${SQLITE_SCHEMA_VERSION}); upgrade Airlock`,
              { path, schemaVersion: Number(row.value), supported: SQLITE_SCHEMA_VERSION },
            );
          }
        })
        .immediate();
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  /** The `busy_timeout` in force, in milliseconds (for diagnostics such as `airlock doctor`). */
  get busyTimeoutMs(): number {
    return this.db.pragma('busy_timeout', { simple: true }) as number;
  }

  /** The journal mode in force (`wal` once opened on a file). */
  get journalMode(): string {
    return String(this.db.pragma('journal_mode', { simple: true }));
  }

  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Runs `fn`, retrying `SQLITE_BUSY` with backoff; surfaces it as `INTERNAL` when it persists. */
  private async run<T>(what: string, fn: () => T): Promise<T> {
    return withRetry(
      async () => fn(),
      { policy: this.retry, retryable: isBusy, sleep: this.sleep },
      ({ attempts, error }) => {
        throw new AirlockError('INTERNAL', `the SQLite catalog stayed locked during ${what} (${attempts} attempts)`, {
          cause: error,
          details: { attempts },
        });
      },
    );
  }

  async get(key: ItemKey): Promise<CatalogItem | undefined> {
    return this.run('get', () => {
      const row = this.stmt('SELECT pk, sk, t, v, d FROM items WHERE pk = ? AND sk = ?').get(key.pk, key.sk) as
        | Row
        | undefined;
      return row && toItem(row);
    });
  }

  async getMany(keys: readonly ItemKey[]): Promise<CatalogItem[]> {
    if (keys.length === 0) return [];
    const unique = new Map<string, ItemKey>();
    for (const k of keys) unique.set(`${k.pk}\u0000${k.sk}`, k);
    const all = [...unique.values()];
    const found = await this.run('getMany', () =>
      // One deferred read transaction: every chunk reads the same snapshot.
      this.db.transaction(() => {
        const out = new Map<string, CatalogItem>();
        for (let i = 0; i < all.length; i += GETMANY_CHUNK) {
          const chunk = all.slice(i, i + GETMANY_CHUNK);
          const values = chunk.map(() => '(?, ?)').join(', ');
          const rows = this.stmt(`SELECT pk, sk, t, v, d FROM items WHERE (pk, sk) IN (VALUES ${values})`).all(
            ...chunk.flatMap((k) => [k.pk, k.sk]),
          ) as Row[];
          for (const row of rows) out.set(`${row.pk}\u0000${row.sk}`, toItem(row));
        }
        return out;
      })(),
    );
    const result: CatalogItem[] = [];
    for (const k of keys) {
      const item = found.get(`${k.pk}\u0000${k.sk}`);
      if (item) result.push(structuredClone(item));
    }
    return result;
  }

  async query(pk: string, options: QueryOptions = {}): Promise<QueryPage> {
    const limit = pageLimit(options);
    const range = resolveRange(options);
    if (range.empty) return { items: [] };
    const time = options.index === 'time';
    const col = time ? 't' : 'sk';
    const dir = options.reverse ? 'DESC' : 'ASC';
    const where = ['pk = ?'];
    const params: unknown[] = [pk];
    if (time) where.push('t IS NOT NULL');
    if (range.lower) {
      where.push(`${col} ${range.lower.inclusive ? '>=' : '>'} ?`);
      params.push(range.lower.value);
    }
    if (range.upper) {
      where.push(`${col} ${range.upper.inclusive ? '<=' : '<'} ?`);
      params.push(range.upper.value);
    }
    if (options.cursor !== undefined) {
      const after = decodeCursor(options.cursor, time ? ['t', 'sk'] : ['sk']);
      const op = options.reverse ? '<' : '>';
      if (time) {
        where.push(`(t, sk) ${op} (?, ?)`);
        params.push(after.t, after.sk);
      } else {
        where.push(`sk ${op} ?`);
        params.push(after.sk);
      }
    }
    const order = time ? `t ${dir}, sk ${dir}` : `sk ${dir}`;
    const sql = `SELECT pk, sk, t, v, d FROM items WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ?`;
    // One row more than asked tells whether another page exists, so the last page has no cursor.
    const rows = await this.run('query', () => this.stmt(sql).all(...params, limit + 1) as Row[]);
    const page = rows.slice(0, limit).map(toItem);
    const last = page[page.length - 1];
    if (rows.length <= limit || !last) return { items: page };
    const cursor = time ? encodeCursor({ t: last.t as string, sk: last.sk }) : encodeCursor({ sk: last.sk });
    return { items: page, cursor };
  }

  private currentVersion(key: ItemKey): CatalogItem | undefined {
    const row = this.stmt('SELECT v FROM items WHERE pk = ? AND sk = ?').get(key.pk, key.sk) as
      | { v: number | null }
      | undefined;
    if (!row) return undefined;
    const item: CatalogItem = { pk: key.pk, sk: key.sk, data: {} };
    if (row.v !== null) item.v = row.v;
    return item;
  }

  private write(item: CatalogItem): void {
    this.stmt('INSERT OR REPLACE INTO items (pk, sk, t, v, d) VALUES (?, ?, ?, ?, ?)').run(
      item.pk,
      item.sk,
      item.t ?? null,
      item.v ?? null,
      JSON.stringify(item.data),
    );
  }

  async put(item: CatalogItem, condition?: Condition): Promise<void> {
    assertItem(item);
    await this.run('put', () =>
      this.db
        .transaction(() => {
          // Read and write under the same write lock (BEGIN IMMEDIATE): no other process can
          // slip a write to this key between the check and the write.
          const current = this.currentVersion(item);
          if (!conditionHolds(current, condition)) {
            throw conflict(`condition failed on ${item.pk}/${item.sk} (expected ${describe(condition)})`, {
              pk: item.pk,
              sk: item.sk,
              condition: describe(condition),
              actualVersion: current?.v,
              exists: current !== undefined,
            });
          }
          this.write(item);
        })
        .immediate(),
    );
  }

  async transact(ops: readonly WriteOp[], token?: string): Promise<void> {
    assertTransaction(ops);
    if (ops.length === 0) return;
    const fingerprint = token === undefined ? '' : transactionFingerprint(ops);
    await this.run('transact', () =>
      this.db
        .transaction(() => {
          if (token !== undefined) {
            const seen = this.stmt('SELECT fingerprint FROM tokens WHERE token = ?').get(token) as
              | { fingerprint: string }
              | undefined;
            if (seen) {
              if (seen.fingerprint === fingerprint) return; // a retry of a transaction that committed
              throw invalid(`transaction token '${token}' was already used for different operations`, { token });
            }
          }
          // All conditions first, then all writes: a failing check leaves nothing written
          // (and the thrown error rolls the immediate transaction back anyway).
          ops.forEach((op, index) => {
            const key = keyOfOp(op);
            const current = this.currentVersion(key);
            if (!conditionHolds(current, op.condition)) {
              throw conflict(
                `transaction cancelled: condition failed on ${key.pk}/${key.sk} (operation ${index}, expected ${describe(op.condition)})`,
                {
                  pk: key.pk,
                  sk: key.sk,
                  index,
                  reason: 'ConditionalCheckFailed',
                  condition: describe(op.condition),
                  actualVersion: current?.v,
                  exists: current !== undefined,
                },
              );
            }
          });
          for (const op of ops) {
            if (op.op === 'put') this.write(op.item);
            else if (op.op === 'delete')
              this.stmt('DELETE FROM items WHERE pk = ? AND sk = ?').run(op.key.pk, op.key.sk);
          }
          if (token !== undefined) {
            this.stmt('INSERT INTO tokens (token, fingerprint, at) VALUES (?, ?, ?)').run(
              token,
              fingerprint,
              new Date().toISOString(),
            );
          }
        })
        .immediate(),
    );
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/**
 * Opens the embedded catalog store at `path`, creating the file and schema when missing
 * (idempotent, safe when several processes open the same new file at once).
 *
 * @example
 * const store = openSqliteCatalogStore('.airlock/catalog.db');
 */
export function openSqliteCatalogStore(path: string, options?: SqliteCatalogStoreOptions): SqliteCatalogStore {
  return new SqliteCatalogStore(path, options);
}
