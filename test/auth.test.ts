import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AUTH_PARTITION,
  AuthDirectory,
  type AuthActor,
  DEFAULT_TOKEN_TTL_MS,
  type GuardedLake,
  parseTtl,
} from '../shared/auth/index.js';
import type { Approvals } from '../shared/approvals/index.js';
import type { Lake } from '../shared/lake/Lake.js';
import { csvFile, guardedLake } from './auth.fixtures.js';

// Every secret comparison must go through timingSafeEqual: count the calls.
const crypto = vi.hoisted(() => ({ compares: 0 }));
vi.mock('node:crypto', async (original) => {
  const real = await original<typeof import('node:crypto')>();
  return {
    ...real,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      crypto.compares++;
      return real.timingSafeEqual(a, b);
    },
  };
});

let lake: Lake;
let guard: GuardedLake;
let dir: string;
let approvals: Approvals;
const owner = () => guard.owner;

async function denial(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err as { code: string; message: string },
  );
  expect(e, 'expected a refusal').toBeDefined();
  return e as { code: string; message: string };
}

beforeAll(async () => {
  ({ lake, guard, dir, approvals } = await guardedLake('airlock-auth-'));
  await guard.createBranch(owner(), { name: 'seed' });
  await guard.importTable(owner(), {
    table: 'sales.orders',
    file: csvFile(
      dir,
      'orders.csv',
      'id,email,region,amount\n1,ann@example.com,EU,10\n2,bob@example.com,US,20\n3,cid@example.com,EU,30\n4,dee@example.com,US,40\n',
    ),
    branch: 'seed',
    tags: { email: ['pii'] },
  });
  await guard.importTable(owner(), {
    table: 'crm.people',
    file: csvFile(dir, 'people.csv', 'email\nann@example.com\nbob@example.com\ncid@example.com\ndee@example.com\n'),
    branch: 'seed',
  });
  await guard.merge(owner(), { source: 'seed', into: 'main' });
  await guard.addUser(owner(), { name: 'wendy', role: 'writer' });
  await guard.addUser(owner(), { name: 'rex', role: 'reader' });
  await guard.addUser(owner(), { name: 'ada', role: 'admin' });
}, 300_000);

afterAll(async () => {
  await lake?.close();
});

describe('tokens', () => {
  it('are shown once and stored only as the SHA-256 of their secret', async () => {
    const { token, id } = await guard.createToken(owner(), { person: 'wendy' });
    expect(token).toMatch(/^airlock_[0-9a-f]{16}[A-Za-z0-9_-]{43}$/);
    const secret = token.slice('airlock_'.length + 16);
    const item = await lake.stores.store.get({ pk: AUTH_PARTITION, sk: `token#${id}` });
    const stored = JSON.stringify(item);
    expect(stored).not.toContain(secret);
    expect(item?.data.hash).toBe(createHash('sha256').update(secret).digest('hex'));
    const listed = await guard.listTokens(owner());
    expect(JSON.stringify(listed)).not.toContain(item?.data.hash as string);
  });

  it('resolve to their person and agent', async () => {
    const { token } = await guard.createToken(owner(), { person: 'wendy', agent: 'bot' });
    const actor = await guard.authenticate(token);
    expect(actor).toMatchObject({
      person: 'wendy',
      agent: 'bot',
      scopes: ['read', 'write:agent/bot/*', 'write:run/*', 'run'],
    });
  });

  it('compare secrets in constant time, also for unknown ids', async () => {
    const { token } = await guard.createToken(owner(), { person: 'wendy' });
    const before = crypto.compares;
    await guard.authenticate(token);
    const wrongSecret = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    expect((await denial(guard.authenticate(wrongSecret))).code).toBe('DENIED');
    const unknownId = `airlock_${'0'.repeat(16)}${token.slice(-43)}`;
    expect((await denial(guard.authenticate(unknownId))).code).toBe('DENIED');
    expect(crypto.compares - before).toBe(3);
  });

  it('refuse a malformed token without echoing it', async () => {
    const e = await denial(guard.authenticate('airlock_not-a-real-token-SECRETPART'));
    expect(e.code).toBe('DENIED');
    expect(e.message).toMatch(/malformed/);
    expect(e.message).not.toContain('SECRETPART');
  });

  it('expire: a token past its TTL is refused, and the TTL is finite by default', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const directory = new AuthDirectory(lake.stores.store, () => now);
    const { token, info } = await directory.createToken({ person: 'wendy', scopes: ['*'], ttlMs: parseTtl('1h') });
    expect((await directory.authenticate(token)).person).toBe('wendy');
    now = new Date('2030-01-01T01:00:01Z');
    const e = await denial(directory.authenticate(token));
    expect(e.code).toBe('DENIED');
    expect(e.message).toMatch(/expired/);
    expect(e.message).not.toContain(token);
    const fresh = await directory.createToken({ person: 'wendy', scopes: ['*'] });
    expect(Date.parse(fresh.info.expires) - Date.parse(fresh.info.created)).toBe(DEFAULT_TOKEN_TTL_MS);
    expect(info.expires).toBe('2030-01-01T01:00:00.000Z');
  });

  it('refuse a TTL beyond 90 days', async () => {
    const e = await denial(guard.createToken(owner(), { person: 'wendy', ttl: '91d' }));
    expect(e.code).toBe('INVALID');
    expect(e.message).toMatch(/at most 90d/);
  });

  it('are revocable: a revoked token is refused at once', async () => {
    const { token, id } = await guard.createToken(owner(), { person: 'wendy' });
    await guard.authenticate(token);
    await guard.revokeToken(owner(), { id });
    const e = await denial(guard.authenticate(token));
    expect(e.code).toBe('DENIED');
    expect(e.message).toMatch(/revoked/);
  });

  it('cannot be created by an agent, nor by a person for someone else unless admin', async () => {
    const agent = await guard.authenticate((await guard.createToken(owner(), { person: 'wendy', agent: 'bot' })).token);
    expect((await denial(guard.createToken(agent, { agent: 'other' }))).code).toBe('DENIED');
    const wendy = await guard.authenticate((await guard.createToken(owner(), { person: 'wendy' })).token);
    expect((await denial(guard.createToken(wendy, { person: 'rex' }))).code).toBe('DENIED');
    expect((await guard.createToken(wendy, { agent: 'mine' })).person).toBe('wendy');
  });
});

describe("an agent's rights are its person's grants intersected with its token scopes", () => {
  let wendy: AuthActor;
  let wendysBot: AuthActor;
  let rexWithWideScopes: AuthActor;

  beforeAll(async () => {
    wendy = await guard.authenticate((await guard.createToken(owner(), { person: 'wendy' })).token);
    wendysBot = await guard.authenticate((await guard.createToken(owner(), { person: 'wendy', agent: 'bot' })).token);
    rexWithWideScopes = await guard.authenticate(
      (await guard.createToken(owner(), { person: 'rex', agent: 'rbot', scopes: ['*'] })).token,
    );
    await guard.createBranch(owner(), { name: 'dev' });
    await guard.createBranch(owner(), { name: 'agent/bot/fix' });
    await guard.createBranch(owner(), { name: 'agent/rbot/fix' });
  });

  const file = () => csvFile(dir, 'more.csv', 'id,email,region,amount\n9,z@example.com,EU,1\n');

  it('the person writes any unprotected branch', async () => {
    const r = await guard.importTable(wendy, { table: 'sales.orders', file: file(), branch: 'dev' });
    expect(r.rows).toBe(1);
  });

  it("the agent writes its own branches (default scope) but not the person's others", async () => {
    expect(
      (await guard.importTable(wendysBot, { table: 'sales.orders', file: file(), branch: 'agent/bot/fix' })).rows,
    ).toBe(1);
    const e = await denial(guard.importTable(wendysBot, { table: 'sales.orders', file: file(), branch: 'dev' }));
    expect(e.code).toBe('DENIED');
    expect(e.message).toMatch(/agent bot/);
  });

  it("a wide scope never lifts an agent above its person's grants", async () => {
    const e = await denial(
      guard.importTable(rexWithWideScopes, { table: 'sales.orders', file: file(), branch: 'agent/rbot/fix' }),
    );
    expect(e.code).toBe('DENIED');
  });

  it("an admin's agent sees pii masked unless its token carries the unmask scope", async () => {
    const adaBot = await guard.authenticate((await guard.createToken(owner(), { person: 'ada', agent: 'abot' })).token);
    const adaBotUnmask = await guard.authenticate(
      (await guard.createToken(owner(), { person: 'ada', agent: 'abot2', scopes: ['read', 'unmask'] })).token,
    );
    const sql = 'SELECT email FROM sales.orders WHERE id = 1';
    expect((await guard.query(adaBot, { sql })).rows[0]?.email).toMatch(/^[0-9a-f]{64}$/);
    expect((await guard.query(adaBotUnmask, { sql })).rows[0]?.email).toBe('ann@example.com');
  });

  it('grants add to a role: a reader granted write on a pattern writes there only', async () => {
    await guard.addGrant(owner(), { person: 'rex', grant: { on: 'branch', pattern: 'rex/*', right: 'write' } });
    await guard.createBranch(owner(), { name: 'rex/a' });
    const rex = await guard.authenticate((await guard.createToken(owner(), { person: 'rex' })).token);
    // Table writes come with the role or a table grant; give one on sales.*.
    await guard.addGrant(owner(), { person: 'rex', grant: { on: 'table', pattern: 'sales.*', right: 'write' } });
    expect((await guard.importTable(rex, { table: 'sales.orders', file: file(), branch: 'rex/a' })).rows).toBe(1);
    expect((await denial(guard.importTable(rex, { table: 'sales.orders', file: file(), branch: 'dev' }))).code).toBe(
      'DENIED',
    );
  });
});

describe('row filters and masks, inside the engine', () => {
  let rex: AuthActor;
  let wendy: AuthActor;

  beforeAll(async () => {
    await guard.setRowFilter(owner(), {
      table: 'sales.orders',
      principal: { person: 'rex' },
      predicate: "region = 'EU'",
    });
    rex = await guard.authenticate((await guard.createToken(owner(), { person: 'rex' })).token);
    wendy = await guard.authenticate((await guard.createToken(owner(), { person: 'wendy' })).token);
  });

  it('the same query by two people returns different rows', async () => {
    const sql = 'SELECT id FROM sales.orders ORDER BY id';
    expect((await guard.query(rex, { sql })).rows.map((r) => r.id)).toEqual([1, 3]);
    expect((await guard.query(wendy, { sql })).rows.map((r) => r.id)).toEqual([1, 2, 3, 4]);
  });

  it('a row filter holds under subqueries, unions and aggregates', async () => {
    const r = await guard.query(rex, {
      sql: "SELECT (SELECT count(*) FROM sales.orders) AS a, (SELECT count(*) FROM (SELECT * FROM sales.orders UNION ALL SELECT * FROM sales.orders WHERE region = 'US')) AS b, (SELECT sum(amount) FROM sales.orders) AS s",
    });
    expect(r.rows[0]).toEqual({ a: 2, b: 2, s: 40 });
  });

  it('a role row filter applies to everyone of the role without their own', async () => {
    await guard.setRowFilter(owner(), {
      table: 'sales.orders',
      principal: { role: 'writer' },
      predicate: 'amount >= 30',
    });
    const r = await guard.query(wendy, { sql: 'SELECT id FROM sales.orders ORDER BY id' });
    expect(r.rows.map((x) => x.id)).toEqual([3, 4]);
    await guard.removeRowFilter(owner(), { table: 'sales.orders', principal: { role: 'writer' } });
    expect((await guard.query(wendy, { sql: 'SELECT count(*) AS n FROM sales.orders' })).rows[0]?.n).toBe(4);
  });

  describe('a masked column cannot be recovered', () => {
    const raw = /@example\.com/;
    it('not by reading it', async () => {
      const r = await guard.query(wendy, { sql: 'SELECT email FROM sales.orders' });
      for (const row of r.rows) {
        expect(row.email).toMatch(/^[0-9a-f]{64}$/);
        expect(String(row.email)).not.toMatch(raw);
      }
    });
    it('not by joining with a table that holds the raw values', async () => {
      const r = await guard.query(wendy, {
        sql: 'SELECT count(*) AS n FROM sales.orders o JOIN crm.people p ON o.email = p.email',
      });
      expect(r.rows[0]?.n).toBe(0);
    });
    it('not by casts', async () => {
      const r = await guard.query(wendy, {
        sql: "SELECT CAST(email AS BLOB)::VARCHAR AS b, email::VARCHAR(200) AS v, upper(email) AS u, email || '' AS c FROM sales.orders",
      });
      expect(JSON.stringify(r.rows)).not.toMatch(raw);
    });
    it('not by hashing a guess (hash, md5, sha256)', async () => {
      const r = await guard.query(wendy, {
        sql: "SELECT count(*) FILTER (WHERE email = sha256('ann@example.com')) AS a, count(*) FILTER (WHERE email = md5('ann@example.com')) AS b, count(*) FILTER (WHERE hash(email) = hash('ann@example.com')) AS c FROM sales.orders",
      });
      expect(r.rows[0]).toEqual({ a: 0, b: 0, c: 0 });
    });
    it('not by aggregates', async () => {
      const r = await guard.query(wendy, {
        sql: "SELECT min(email) AS lo, max(email) AS hi, string_agg(email, ',') AS s, list(email) AS l, count(DISTINCT length(email)) AS lengths FROM sales.orders",
      });
      expect(JSON.stringify(r.rows)).not.toMatch(raw);
      expect(r.rows[0]?.lengths).toBe(1);
    });
    it('not by LIKE probing or comparisons', async () => {
      const r = await guard.query(wendy, {
        sql: "SELECT count(*) FILTER (WHERE email LIKE 'ann%' OR email LIKE '%@%') AS l, count(*) FILTER (WHERE email ILIKE '%example%') AS i, count(*) FILTER (WHERE email = 'ann@example.com') AS e, count(*) FILTER (WHERE email < 'b') AS lt FROM sales.orders",
      });
      expect(r.rows[0]).toMatchObject({ l: 0, i: 0, e: 0 });
    });
    it('not by exporting the table raw (that needs an approval)', async () => {
      const e = await denial(
        guard.exportTable(wendy, { table: 'sales.orders', ref: 'main', file: join(dir, 'x.csv') }),
      );
      expect(e.code).toBe('APPROVAL_REQUIRED');
    });
    it('unless the person holds unmask on the table', async () => {
      await guard.addGrant(owner(), {
        person: 'wendy',
        grant: { on: 'table', pattern: 'sales.orders', right: 'unmask' },
      });
      const r = await guard.query(wendy, { sql: 'SELECT email FROM sales.orders WHERE id = 1' });
      expect(r.rows[0]?.email).toBe('ann@example.com');
    });
  });

  it('pipeline step inputs are read through the same filters and masks', async () => {
    const pipeline = join(dir, 'steps');
    mkdirSync(pipeline, { recursive: true });
    writeFileSync(join(pipeline, 'copy.sql'), '-- output: ml.copy\nSELECT id, email FROM sales.orders\n');
    await guard.createBranch(owner(), { name: 'rex/run' });
    await guard.addGrant(owner(), { person: 'rex', grant: { on: 'table', pattern: 'ml.*', right: 'write' } });
    const run = await guard.runPipeline(rex, { pipelineDir: pipeline, branch: 'rex/run' });
    expect(run.status).toBe('succeeded');
    const out = await guard.query(owner(), { sql: 'SELECT id, email FROM ml.copy ORDER BY id', ref: 'rex/run' });
    expect(out.rows.map((r) => r.id)).toEqual([1, 3]);
    expect(JSON.stringify(out.rows)).not.toMatch(/@example\.com/);
    expect(readFileSync(join(pipeline, 'copy.sql'), 'utf8')).toContain('ml.copy');
  });
});

describe("an admin's agent changing grants", () => {
  it('waits for approval; a person approves and the change happens once; the agent cannot approve', async () => {
    const adaBot = await guard.authenticate((await guard.createToken(owner(), { person: 'ada', agent: 'gbot' })).token);
    const grant = { on: 'branch', pattern: 'gbot-test/*', right: 'write' } as const;
    const e = await denial(guard.addGrant(adaBot, { person: 'rex', grant }));
    expect(e.code).toBe('APPROVAL_REQUIRED');
    const id = (e as unknown as { details: { approvalId: string } }).details.approvalId;
    expect(await guard.directory.grants('rex')).not.toContainEqual(expect.objectContaining({ pattern: 'gbot-test/*' }));

    await expect(approvals.approve(adaBot, id)).rejects.toMatchObject({ code: 'DENIED' });
    await expect(approvals.approve({ person: 'wendy' }, id)).rejects.toMatchObject({ code: 'DENIED' });
    const approved = await approvals.approve(owner(), id);
    expect(approved.status).toBe('executed');
    await approvals.approve(owner(), id); // a replay is a no-op
    const made = (await guard.directory.grants('rex')).filter((g) => g.pattern === 'gbot-test/*');
    expect(made).toHaveLength(1);
  });
});

describe("an agent's pipeline run into a protected branch", () => {
  it('executes on its run branch, then publishes both outputs together only once a person approves', async () => {
    const pbot = await guard.authenticate((await guard.createToken(owner(), { person: 'ada', agent: 'pbot' })).token);
    const pipeline = join(dir, 'two-outputs');
    mkdirSync(pipeline, { recursive: true });
    writeFileSync(join(pipeline, 'ids.sql'), '-- output: report.ids\nSELECT id FROM sales.orders\n');
    writeFileSync(join(pipeline, 'count.sql'), '-- output: report.count\nSELECT count(*) AS n FROM report.ids\n');
    const mainBefore = (await lake.catalog.head('main')).commit;

    const run = await guard.runPipeline(pbot, { pipelineDir: pipeline, branch: 'main' });
    expect(run).toMatchObject({ status: 'awaiting_approval', published: false });
    const id = run.approvalId as string;
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect((await lake.catalog.head('main')).commit).toBe(mainBefore);
    const onRunBranch = await guard.listTables(owner(), { ref: run.runBranch });
    expect(onRunBranch.map((t) => t.name)).toEqual(expect.arrayContaining(['report.ids', 'report.count']));
    expect((await guard.showRun(owner(), { runId: run.runId })).approvalId).toBe(id);
    await expect(guard.resumeRun(pbot, { runId: run.runId })).rejects.toMatchObject({ code: 'INVALID' });
    const [entry] = await guard.audit.log({ limit: 1, action: 'run' });
    expect(entry).toMatchObject({ person: 'ada', agent: 'pbot', outcome: 'approval_required' });

    await expect(approvals.approve(pbot, id)).rejects.toMatchObject({ code: 'DENIED' });
    const approved = await approvals.approve(owner(), id);
    expect(approved.status).toBe('executed');
    const published = (await lake.catalog.head('main')).commit;
    expect(published).not.toBe(mainBefore);
    const onMain = await guard.query(owner(), {
      sql: 'SELECT (SELECT count(*) FROM report.ids) AS ids, (SELECT min(n) FROM report.count) AS n',
    });
    const { ids, n } = onMain.rows[0] as { ids: number; n: number };
    expect(ids).toBeGreaterThan(0);
    expect(n).toBe(ids); // both outputs of the same run, published together
    await approvals.approve(owner(), id); // a replay is a no-op
    expect((await lake.catalog.head('main')).commit).toBe(published);
  });
});
