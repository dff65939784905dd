/**
 * The audit trail (issue 6, points 4 and 7): appends and verification, redaction of SQL
 * literals and secrets, anchors, "why did this happen" queries, the tamper matrix done
 * directly in the stores (SQLite through its own file, DynamoDB Local through raw client
 * calls), and separate OS processes racing to append to one chain.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteItemCommand, type DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DuckDBInstance } from '@duckdb/node-api';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuditLog,
  type AuditEntry,
  type AuditProblem,
  type AuditVerification,
  auditSeqKey,
  entryHash,
  looksLikeSecret,
  parseActor,
  parseSince,
  REDACTED,
  redactDetails,
  redactSql,
  requestHash,
} from '../shared/audit/index.js';
import { isAirlockError } from '../shared/errors/index.js';
import {
  type CatalogStore,
  ensureBucket,
  ensureDynamoTable,
  type ObjectStore,
  openDynamoCatalogStore,
  openLocalObjectStore,
  openS3ObjectStore,
  openSqliteCatalogStore,
} from '../shared/store/index.js';
import { dynamoClientFor, s3ClientFor, uniqueName } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

const scratch = mkdtempSync(join(tmpdir(), 'airlock-audit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const APPENDER = join(import.meta.dirname, 'fixtures', 'auditAppender.ts');
const TSX = join(import.meta.dirname, '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');

/** A clock that ticks one second per call from a fixed start, so times are predictable. */
function ticking(start = '2024-05-01T00:00:00.000Z'): () => Date {
  let t = Date.parse(start);
  return () => {
    const now = new Date(t);
    t += 1000;
    return now;
  };
}

function failed(result: AuditVerification): AuditProblem {
  if (result.ok) throw new Error(`expected verify to fail, but it passed with ${result.entries} entries`);
  return result.problem;
}

// ---------------------------------------------------------------------------------------
describe('redactSql', () => {
  it('replaces string and number literals with ? and keeps identifiers and operators', () => {
    expect(redactSql("SELECT name FROM crm.customers WHERE email = 'ann@example.com' AND age > 40")).toBe(
      'SELECT name FROM crm.customers WHERE email = ? AND age > ?',
    );
  });

  it('treats doubled quotes as part of one string literal', () => {
    expect(redactSql("SELECT 'O''Brien', 'it''s' || x")).toBe('SELECT ?, ? || x');
  });

  it('understands escape, hex, bit, national and unicode string prefixes', () => {
    expect(redactSql("SELECT E'a\\'b c', X'DEADBEEF', B'1011', N'név', U&'d\\0061t', e'x'")).toBe(
      'SELECT ?, ?, ?, ?, ?, ?',
    );
  });

  it('keeps quoted identifiers, even when they contain digits or doubled quotes', () => {
    expect(redactSql('SELECT "col 42", "a""b" FROM "t1" WHERE "x" = 7')).toBe(
      'SELECT "col 42", "a""b" FROM "t1" WHERE "x" = ?',
    );
  });

  it('redacts every number form and leaves digits inside identifiers alone', () => {
    expect(redactSql('SELECT col1, t2.x, 1.5e10, .5, 0x1F, 0b101, 1_000_000, -3 FROM t3 LIMIT 10 OFFSET 2')).toBe(
      'SELECT col1, t2.x, ?, ?, ?, ?, ?, -? FROM t3 LIMIT ? OFFSET ?',
    );
  });

  it('redacts dollar-quoted strings, with and without a tag, and keeps $1 and $name parameters', () => {
    expect(redactSql('SELECT $$ssn 123-45-6789$$, $tag$it is $x$ here$tag$, $1, $name FROM t')).toBe(
      'SELECT ?, ?, $1, $name FROM t',
    );
  });

  it('drops line and (nested) block comments, which may hold anything', () => {
    expect(
      redactSql('SELECT a -- card 4111 1111 1111 1111\nFROM t /* ann@example.com /* nested */ still */ WHERE b'),
    ).toBe('SELECT a  \nFROM t   WHERE b');
  });

  it('fails safe on an unterminated literal or comment: the rest of the text is dropped', () => {
    expect(redactSql("SELECT * FROM t WHERE a = 'secret and more")).toBe('SELECT * FROM t WHERE a = ?');
    expect(redactSql('SELECT 1 /* secret')).toBe('SELECT ?  ');
    expect(redactSql('SELECT $$secret')).toBe('SELECT ?');
  });

  it('is idempotent', () => {
    const once = redactSql("SELECT * FROM t WHERE a IN (1, 'x', $$y$$) AND b = E'\\''");
    expect(redactSql(once)).toBe(once);
  });

  it("agrees with DuckDB's own parser: no constant DuckDB finds survives redaction", async () => {
    const corpus = [
      "SELECT * FROM t WHERE email = 'ann@example.com' AND age BETWEEN 18 AND 65",
      "SELECT 'O''Brien' AS n, 3.14159 AS pi, 1e-7 AS tiny, 1_000 AS big",
      "SELECT * FROM t WHERE card LIKE '4111%' OR ssn IN ('123-45-6789', '987-65-4321')",
      "SELECT CAST('2024-05-01' AS DATE), DATE '1999-12-31', INTERVAL '17 days'",
      "SELECT $$dollar secret$$ AS a, $q$tagged 'secret'$q$ AS b",
      "SELECT hash('salted-value-xyz'), lower('MiXeD') FROM t WHERE id = 9876543",
      "SELECT E'escaped\\'quote' AS e, 'multi\nline' AS m",
    ];
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      for (const sql of corpus) {
        const reader = await c.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR) AS ast', [sql]);
        const ast = JSON.parse(String(reader.getRowObjects()[0]?.ast)) as { error?: boolean };
        expect(ast.error ?? false).toBe(false);
        const constants: string[] = [];
        const walk = (node: unknown): void => {
          if (Array.isArray(node)) node.forEach(walk);
          else if (node && typeof node === 'object') {
            const n = node as Record<string, unknown>;
            if (n.type === 'VALUE_CONSTANT') {
              const v = (n.value as { value?: unknown } | undefined)?.value;
              if (v !== undefined && v !== null) constants.push(String(v));
            }
            Object.values(n).forEach(walk);
          }
        };
        walk(ast);
        expect(constants.length).toBeGreaterThan(0);
        const redacted = redactSql(sql);
        for (const value of constants) {
          if (value.length >= 2) expect(redacted, `${sql} leaks ${value}`).not.toContain(value);
        }
      }
    } finally {
      c.closeSync();
    }
  });
});

describe('secrets and request hashes', () => {
  it('recognises credentials by their shape', () => {
    for (const secret of [
      'Bearer abcdefgh12345678',
      'airlock_Zk3v9QpL0aXr7TyB2mWn',
      'AKIAIOSFODNN7EXAMPLE',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJl',
      'ghp_0123456789abcdefghijABCDEFGHIJ',
      'postgres://app:hunter2@db.internal/prod',
      'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      '-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----',
    ]) {
      expect(looksLikeSecret(secret), secret).toBe(true);
    }
  });

  it('leaves ordinary text, names and hex digests alone', () => {
    for (const text of [
      'merge agent/bot/fix into main',
      'crm.customers',
      'a'.repeat(64),
      '3f2a9c0b1d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8',
      'data/raw/events/0b6f1c3e-8d9a-4c1b-9e2f-7a6b5c4d3e2f.parquet',
    ]) {
      expect(looksLikeSecret(text), text).toBe(false);
    }
  });

  it('redacts secret-named members whatever their value, SQL members by literal, and shapes anywhere', () => {
    const safe = redactDetails({
      token: 'short',
      headers: { Authorization: 'Basic dXNlcjpwYXNz', accept: 'json' },
      accessToken: 'whatever',
      password: 'pw',
      tokenCount: 3,
      sql: "SELECT * FROM t WHERE ssn = '123-45-6789'",
      note: 'called with airlock_Zk3v9QpL0aXr7TyB2mWn by mistake',
    });
    expect(safe).toEqual({
      token: REDACTED,
      headers: { Authorization: REDACTED, accept: 'json' },
      accessToken: REDACTED,
      password: REDACTED,
      tokenCount: 3,
      sql: 'SELECT * FROM t WHERE ssn = ?',
      note: `called with ${REDACTED} by mistake`,
    });
  });

  it('keeps details small: long strings and arrays are cut and say how much was dropped', () => {
    const safe = redactDetails({ text: 'x'.repeat(5000), list: Array.from({ length: 80 }, (_, i) => i) }) as {
      text: string;
      list: unknown[];
    };
    expect(safe.text).toBe(`${'x'.repeat(1024)}…[+3976 chars]`);
    expect(safe.list).toHaveLength(51);
    expect(safe.list[50]).toBe('…[+30 items]');
  });

  it('hashes requests canonically (key order does not matter) and never hashes a token', () => {
    const a = requestHash({ action: 'query', sql: 'SELECT 1', ref: 'main' });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(requestHash({ ref: 'main', sql: 'SELECT 1', action: 'query' })).toBe(a);
    expect(requestHash({ action: 'query', sql: 'SELECT 2', ref: 'main' })).not.toBe(a);
    expect(requestHash({ q: 1, token: 'alk_one' })).toBe(requestHash({ q: 1, token: 'alk_two' }));
  });

  it('gives a keyed HMAC when a lake secret is passed, so low-entropy values cannot be guessed back', () => {
    const request = { sql: "SELECT * FROM p WHERE ssn = '123-45-6789'" };
    const keyed = requestHash(request, { key: 'lake-secret' });
    expect(keyed).toMatch(/^[0-9a-f]{64}$/);
    expect(keyed).not.toBe(requestHash(request));
    expect(requestHash(request, { key: 'other-secret' })).not.toBe(keyed);
  });

  it('parses --since as a duration ago or an ISO time, and --actor as person[/agent]', () => {
    const now = new Date('2024-05-01T12:00:00.000Z');
    expect(parseSince('2h', now).toISOString()).toBe('2024-05-01T10:00:00.000Z');
    expect(parseSince('7d', now).toISOString()).toBe('2024-04-24T12:00:00.000Z');
    expect(parseSince('2024-04-30', now).toISOString()).toBe('2024-04-30T00:00:00.000Z');
    expect(parseSince('2024-04-30T08:30:00', now).toISOString()).toBe('2024-04-30T08:30:00.000Z');
    expect(() => parseSince('yesterday', now)).toThrow(/--since expects/);
    expect(parseActor('ann')).toEqual({ person: 'ann' });
    expect(parseActor('ann/ci/nightly')).toEqual({ person: 'ann', agent: 'ci/nightly' });
    expect(() => parseActor('/bot')).toThrow(/--actor expects/);
  });
});

// ---------------------------------------------------------------------------------------
/** Direct access to a backend's stored items, bypassing every Airlock rule (the attacker's view). */
interface RawItems {
  read(pk: string, sk: string): Promise<Record<string, unknown> | undefined>;
  write(pk: string, sk: string, data: Record<string, unknown>): Promise<void>;
  remove(pk: string, sk: string): Promise<void>;
}

interface Backend {
  name: string;
  open(): Promise<{ store: CatalogStore; objects: ObjectStore; raw: RawItems; close(): Promise<void> }>;
}

function sqliteRaw(path: string): RawItems & { close(): void } {
  const db = new Database(path);
  db.pragma('busy_timeout = 10000');
  return {
    read: async (pk, sk) => {
      const row = db.prepare('SELECT d FROM items WHERE pk = ? AND sk = ?').get(pk, sk) as { d: string } | undefined;
      return row && (JSON.parse(row.d) as Record<string, unknown>);
    },
    write: async (pk, sk, data) => {
      db.prepare('INSERT OR REPLACE INTO items (pk, sk, t, v, d) VALUES (?, ?, ?, NULL, ?)').run(
        pk,
        sk,
        typeof data.time === 'string' ? data.time : null,
        JSON.stringify(data),
      );
    },
    remove: async (pk, sk) => {
      db.prepare('DELETE FROM items WHERE pk = ? AND sk = ?').run(pk, sk);
    },
    close: () => db.close(),
  };
}

function dynamoRaw(client: DynamoDBClient, table: string): RawItems {
  return {
    read: async (pk, sk) => {
      const out = await client.send(
        new GetItemCommand({ TableName: table, Key: { pk: { S: pk }, sk: { S: sk } }, ConsistentRead: true }),
      );
      const d = out.Item?.d?.S;
      return d === undefined ? undefined : (JSON.parse(d) as Record<string, unknown>);
    },
    write: async (pk, sk, data) => {
      await client.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            pk: { S: pk },
            sk: { S: sk },
            d: { S: JSON.stringify(data) },
            ...(typeof data.time === 'string' ? { t: { S: data.time } } : {}),
          },
        }),
      );
    },
    remove: async (pk, sk) => {
      await client.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: pk }, sk: { S: sk } } }));
    },
  };
}

const backends: Backend[] = [
  {
    name: 'SQLite (raw SQL on catalog.db)',
    open: async () => {
      const dir = mkdtempSync(join(scratch, 'sqlite-'));
      const path = join(dir, 'catalog.db');
      const store = openSqliteCatalogStore(path);
      const objects = openLocalObjectStore(join(dir, 'objects'));
      const raw = sqliteRaw(path);
      return {
        store,
        objects,
        raw,
        close: async () => {
          raw.close();
          await store.close();
          await objects.close();
        },
      };
    },
  },
  {
    name: 'DynamoDB Local + s3rver (raw DynamoDB client calls)',
    open: async () => {
      const emulators = await useEmulators();
      const client = dynamoClientFor(emulators.dynamoEndpoint);
      const tableName = uniqueName('airlock-audit');
      await ensureDynamoTable(client, tableName);
      const store = openDynamoCatalogStore({
        tableName,
        client,
        retry: { maxAttempts: 8, baseDelayMs: 5, maxDelayMs: 100 },
      });
      const s3 = s3ClientFor(emulators.s3Endpoint);
      const bucket = uniqueName('airlock-audit').toLowerCase();
      await ensureBucket(s3, bucket);
      const objects = openS3ObjectStore({ bucket, client: s3, cacheDir: mkdtempSync(join(scratch, 's3-cache-')) });
      return {
        store,
        objects,
        raw: dynamoRaw(client, tableName),
        close: async () => {
          await store.close();
          await objects.close();
        },
      };
    },
  },
];

describe.each(backends)('AuditLog on $name', (backend) => {
  let env: Awaited<ReturnType<Backend['open']>>;
  beforeAll(async () => {
    env = await backend.open();
  }, 240_000);
  afterAll(async () => {
    await env?.close();
  });

  /** A chain of its own (partition + anchor prefix) for one test, with `count` entries, anchored every 10. */
  async function chain(count: number, options: { anchorEvery?: number } = {}) {
    const id = randomUUID().slice(0, 8);
    const partition = `audit#${id}`;
    const warnings: string[] = [];
    const make = () =>
      new AuditLog(env.store, env.objects, {
        partition,
        anchorPrefix: `audit-${id}/anchors/`,
        anchorEvery: options.anchorEvery ?? 10,
        now: ticking(),
        onAnchorProblem: (message) => warnings.push(message),
      });
    const audit = make();
    const entries: AuditEntry[] = [];
    for (let i = 1; i <= count; i++) {
      entries.push(
        await audit.append({
          person: i % 3 === 0 ? 'bob' : 'ann',
          ...(i % 2 === 0 ? { agent: 'bot' } : {}),
          action: i % 5 === 0 ? 'merge' : 'query',
          target: 'main',
          outcome: i % 7 === 0 ? 'denied' : 'ok',
          request: { i },
          details: { i },
        }),
      );
    }
    const key = (seq: number) => auditSeqKey(seq);
    const read = async (seq: number) =>
      (await env.raw.read(partition, key(seq))) as unknown as AuditEntry & Record<string, unknown>;
    return { audit, make, partition, entries, key, read, warnings };
  }

  it('appends a linked chain and verifies it, counting every entry', async () => {
    const { audit, entries } = await chain(25);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(entries[0]?.prevHash).toBe('0'.repeat(64));
    for (let i = 1; i < entries.length; i++) expect(entries[i]?.prevHash).toBe(entries[i - 1]?.hash);
    for (const e of entries) expect(entryHash(e)).toBe(e.hash);
    const result = await audit.verify();
    expect(result).toMatchObject({ ok: true, entries: 25, anchors: 2, head: { seq: 25, hash: entries[24]?.hash } });
    expect(result.lastAnchor).toEqual({ seq: 20, hash: entries[19]?.hash, time: entries[19]?.time });
    expect(result.entriesPerSecond).toBeGreaterThan(0);
  });

  it('verifies an empty chain as intact with zero entries', async () => {
    const { audit } = await chain(0);
    expect(await audit.verify()).toMatchObject({ ok: true, entries: 0, anchors: 0 });
  });

  it('writes anchors every N entries under audit/anchors/<zero-padded seq>.json, and on demand', async () => {
    const id = randomUUID().slice(0, 8);
    const audit = new AuditLog(env.store, env.objects, {
      partition: `audit#${id}`,
      anchorEvery: 3,
      anchorPrefix: `a-${id}/anchors/`,
    });
    const entries: AuditEntry[] = [];
    for (let i = 0; i < 7; i++)
      entries.push(await audit.append({ person: 'ann', action: 'query', target: 'main', outcome: 'ok' }));
    const keys: string[] = [];
    for await (const o of env.objects.list(`a-${id}/anchors/`)) keys.push(o.key);
    expect(keys).toEqual([`a-${id}/anchors/000000000003.json`, `a-${id}/anchors/000000000006.json`]);
    const bytes = await env.objects.get(`a-${id}/anchors/000000000006.json`);
    expect(JSON.parse(Buffer.from(bytes).toString())).toEqual({
      seq: 6,
      hash: entries[5]?.hash,
      time: entries[5]?.time,
    });
    expect(await audit.anchor()).toEqual({ seq: 7, hash: entries[6]?.hash, time: entries[6]?.time });
    expect((await audit.anchors()).map((a) => a.seq)).toEqual([3, 6, 7]);
  });

  it('stores no SQL literal and no token, even when the caller passes them', async () => {
    const { audit, partition } = await chain(0);
    const entry = await audit.append({
      person: 'ann',
      agent: 'bot',
      action: 'query',
      target: 'main',
      outcome: 'denied',
      request: {
        sql: "SELECT * FROM crm.customers WHERE email = 'ann@example.com'",
        token: 'airlock_Zk3v9QpL0aXr7TyB2mWn',
      },
      details: {
        sql: "SELECT * FROM crm.customers WHERE email = 'ann@example.com' AND card = 4111111111111111",
        token: 'airlock_Zk3v9QpL0aXr7TyB2mWn',
        reason: 'column crm.customers.card is masked; airlock_Zk3v9QpL0aXr7TyB2mWn lacks unmask',
      },
    });
    const stored = JSON.stringify(await env.raw.read(partition, auditSeqKey(entry.seq)));
    expect(stored).toContain('SELECT * FROM crm.customers WHERE email = ? AND card = ?');
    expect(stored).not.toContain('ann@example.com');
    expect(stored).not.toContain('4111111111111111');
    expect(stored).not.toContain('Zk3v9QpL0aXr7TyB2mWn');
    expect(entry.details?.reason).toBe(`column crm.customers.card is masked; ${REDACTED} lacks unmask`);
    expect((await audit.verify()).ok).toBe(true);
  });

  it('answers "why did this happen": newest first, filtered by time, actor, action and outcome', async () => {
    const { audit, entries } = await chain(30);
    const seqs = (xs: AuditEntry[]) => xs.map((e) => e.seq);
    expect(seqs(await audit.log({ limit: 3 }))).toEqual([30, 29, 28]);
    // The clock ticks one second per entry from 00:00:00, so entry n is at second n-1.
    expect(seqs(await audit.log({ since: '2024-05-01T00:00:26.000Z' }))).toEqual([30, 29, 28, 27]);
    expect(seqs(await audit.log({ actor: { person: 'bob' }, limit: 4 }))).toEqual([30, 27, 24, 21]);
    expect(seqs(await audit.log({ actor: { person: 'bob', agent: 'bot' } }))).toEqual([30, 24, 18, 12, 6]);
    expect(seqs(await audit.log({ action: 'merge', since: entries[14]?.time as string }))).toEqual([30, 25, 20, 15]);
    expect(seqs(await audit.log({ action: 'mer*', outcome: 'ok', limit: 2 }))).toEqual([30, 25]);
    expect(seqs(await audit.log({ outcome: 'denied' }))).toEqual([28, 21, 14, 7]);
    await expect(audit.log({ since: 'not a time' })).rejects.toThrow(/since is not a time/);
  });

  // ------------------------------------------------------------------ the tamper matrix
  it('detects an edited entry and names it', async () => {
    const { audit, partition, key, read } = await chain(20);
    await env.raw.write(partition, key(7), { ...(await read(7)), person: 'mallory' });
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'altered', seq: 7 });
    expect(problem.message).toMatch(/^entry 7 was altered/);
  });

  it('detects an edited entry whose hash was recomputed, through its successor', async () => {
    const { audit, partition, key, read } = await chain(20);
    const forged = { ...(await read(7)), outcome: 'ok', action: 'query' } as Record<string, unknown>;
    forged.hash = entryHash(forged);
    await env.raw.write(partition, key(7), forged);
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'altered', seq: 7 });
    expect(problem.message).toContain('entry 7 was altered and its hash recomputed');
    expect(problem.message).toContain('entry 8 records');
  });

  it('detects an anchored entry that was edited with its hash recomputed as altered, not truncated', async () => {
    const { audit, partition, key, read } = await chain(20);
    const forged = { ...(await read(10)), target: 'elsewhere' } as Record<string, unknown>;
    forged.hash = entryHash(forged);
    await env.raw.write(partition, key(10), forged);
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'altered', seq: 10 });
    expect(problem.message).toContain('it matches neither its anchor');
  });

  it('detects a deleted entry and names the missing seq', async () => {
    const { audit, partition, key } = await chain(20);
    await env.raw.remove(partition, key(7));
    const result = await audit.verify();
    expect(failed(result)).toMatchObject({ kind: 'deleted', seq: 7 });
    expect(failed(result).message).toBe('entry 7 is missing: entry 6 is followed by entry 8 (deleted)');
    expect(result.entries).toBe(6);
  });

  it('detects several deleted entries, including the first one', async () => {
    const { audit, partition, key } = await chain(20);
    for (const seq of [1, 12, 13, 14]) await env.raw.remove(partition, key(seq));
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'deleted', seq: 1 });
    expect(problem.message).toContain('the start of the chain is followed by entry 2');
  });

  it('detects deleted entries whose successors were moved down to close the gap', async () => {
    const { audit, partition, key, read } = await chain(20);
    for (let seq = 12; seq <= 20; seq++) {
      await env.raw.write(partition, key(seq - 1), await read(seq));
    }
    await env.raw.remove(partition, key(20));
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'deleted', seq: 11 });
    expect(problem.message).toContain('entry 11 is missing and later entries were moved down');
  });

  it('detects an extra item inserted between two entries', async () => {
    const { audit, partition, key, read } = await chain(20);
    const forged = { ...(await read(8)), person: 'mallory', prevHash: (await read(7)).hash } as Record<string, unknown>;
    forged.hash = entryHash(forged);
    await env.raw.write(partition, `${key(7)}a`, forged);
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'inserted', seq: 8, key: `${key(7)}a` });
    expect(problem.message).toContain('sits after entry 7');
  });

  it('detects a forged entry inserted mid-chain with the later entries shifted up', async () => {
    const { audit, partition, key, read } = await chain(20);
    for (let seq = 20; seq >= 8; seq--) await env.raw.write(partition, key(seq + 1), await read(seq));
    const forged = { ...(await read(8)), person: 'mallory', details: { i: 'forged' } } as Record<string, unknown>;
    forged.hash = entryHash(forged);
    await env.raw.write(partition, key(8), forged);
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'inserted', seq: 8 });
    expect(problem.message).toContain('two different entries claim seq 8 (stored at 8 and 9)');
  });

  it('detects a copy of an entry inserted at the end', async () => {
    const { audit, partition, key, read } = await chain(15);
    await env.raw.write(partition, key(16), await read(9));
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'inserted', seq: 9, key: key(16) });
    expect(problem.message).toContain('entry 9 appears twice (stored at 9 and 16)');
  });

  it('detects two swapped entries as reordered', async () => {
    const { audit, partition, key, read } = await chain(20);
    const [seven, eight] = [await read(7), await read(8)];
    await env.raw.write(partition, key(7), eight as unknown as Record<string, unknown>);
    await env.raw.write(partition, key(8), seven as unknown as Record<string, unknown>);
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'reordered', seq: 7 });
    expect(problem.message).toBe(
      'entry 8 (stored at 7) comes before the entry it follows, entry 7 (stored at 8): entries were reordered',
    );
  });

  it('detects a reordering that also rewrote seq numbers and hashes', async () => {
    const { audit, partition, key, read } = await chain(20);
    const [seven, eight] = [await read(7), await read(8)];
    const a = { ...eight, seq: 7 } as Record<string, unknown>;
    const b = { ...seven, seq: 8 } as Record<string, unknown>;
    a.hash = entryHash(a);
    b.hash = entryHash(b);
    await env.raw.write(partition, key(7), a);
    await env.raw.write(partition, key(8), b);
    const problem = failed(await audit.verify());
    expect(problem.seq).toBe(7);
    expect(problem.kind).toBe('reordered');
  });

  it('detects truncation against the last anchor', async () => {
    const { audit, partition, key } = await chain(30);
    for (let seq = 24; seq <= 30; seq++) await env.raw.remove(partition, key(seq));
    const result = await audit.verify();
    expect(failed(result)).toMatchObject({ kind: 'truncated', seq: 24 });
    expect(failed(result).message).toContain('the audit chain ends at entry 23, but an anchor records entry 30');
    expect(result.entries).toBe(23);
  });

  it('detects truncation even after the chain grew back past the anchor, and keeps the anchor', async () => {
    const { partition, key, make, warnings } = await chain(30);
    for (let seq = 22; seq <= 30; seq++) await env.raw.remove(partition, key(seq));
    const fresh = make();
    for (let i = 0; i < 12; i++)
      await fresh.append({ person: 'mallory', action: 'query', target: 'main', outcome: 'ok' });
    expect(warnings.join('\n')).toContain('audit anchor 30 records hash');
    const problem = failed(await fresh.verify());
    expect(problem).toMatchObject({ kind: 'truncated', seq: 30 });
    expect(problem.message).toContain('entry 30 does not match the anchor');
    await expect(fresh.anchor()).resolves.toMatchObject({ seq: 33 });
  });

  it('detects truncation of the whole chain', async () => {
    const { audit, partition, key } = await chain(10);
    for (let seq = 1; seq <= 10; seq++) await env.raw.remove(partition, key(seq));
    const problem = failed(await audit.verify());
    expect(problem).toMatchObject({ kind: 'truncated', seq: 1 });
    expect(problem.message).toContain('the audit chain is empty, but an anchor records entry 10');
  });

  it('refuses an on-demand anchor that would contradict an existing one', async () => {
    const { partition, key, make } = await chain(10);
    await env.raw.remove(partition, key(10));
    const fresh = make();
    await fresh.append({ person: 'mallory', action: 'query', target: 'main', outcome: 'ok' });
    const error = await fresh.anchor().catch((e: unknown) => e);
    expect(isAirlockError(error) && error.code).toBe('CONFLICT');
    expect((error as Error).message).toContain('the anchor at seq 10 records hash');
  });
});

// ---------------------------------------------------------------------------------------
describe('separate OS processes appending to one SQLite-backed chain', () => {
  function appender(db: string, objects: string, id: number, count: number, anchorEvery: number) {
    return new Promise<{ writer: string; seqs: number[]; conflicts: number }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [TSX, APPENDER, db, objects, String(id), String(count), String(anchorEvery)],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('close', (code) => {
        if (code !== 0) reject(new Error(`appender ${id} exited ${code}: ${err}`));
        else resolve(JSON.parse(out.trim()));
      });
    });
  }

  it('never forks the chain: every append lands at its own seq and the chain verifies', async () => {
    const dir = mkdtempSync(join(scratch, 'concurrent-'));
    const db = join(dir, 'catalog.db');
    const objectsDir = join(dir, 'objects');
    await openSqliteCatalogStore(db).close(); // create the schema once, before the race
    const writers = 6;
    const count = 40;
    const anchorEvery = 20;
    const results = await Promise.all(
      Array.from({ length: writers }, (_, i) => appender(db, objectsDir, i, count, anchorEvery)),
    );
    const all = results.flatMap((r) => r.seqs).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: writers * count }, (_, i) => i + 1));
    for (const r of results) expect(r.seqs).toHaveLength(count);

    const store = openSqliteCatalogStore(db);
    const objects = openLocalObjectStore(objectsDir);
    try {
      const audit = new AuditLog(store, objects, { anchorEvery });
      const result = await audit.verify();
      expect(result).toMatchObject({ ok: true, entries: writers * count, anchors: (writers * count) / anchorEvery });
      const perWriter = new Map<string, number>();
      for (const e of await audit.log({ limit: 10_000 })) perWriter.set(e.person, (perWriter.get(e.person) ?? 0) + 1);
      expect([...perWriter.values()]).toEqual(Array.from({ length: writers }, () => count));
      const conflicts = results.reduce((n, r) => n + r.conflicts, 0);
      console.log(
        `audit: ${writers * count} appends from ${writers} processes, ${conflicts} lost races retried, chain intact`,
      );
    } finally {
      await store.close();
      await objects.close();
    }
  }, 300_000);
});
