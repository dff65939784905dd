import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { airlock, tempDir } from './support/cli.js';

/** The CLI acting with tokens (AIRLOCK_TOKEN / --token): exit codes 4 and 5, JSON shapes, revocation, audit. */
const dir = tempDir('airlock-auth-cli-');
const L = ['--lake', join(dir, 'lake')];
const as = (token: string) => ({ env: { AIRLOCK_TOKEN: token } });
let botToken: string;
let botTokenId: string;
let adminBotToken: string;

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

beforeAll(async () => {
  expect((await airlock(['init', ...L])).code).toBe(0);
  await airlock(['branch', 'create', 'dev', ...L]);
  const people = file('people.csv', 'id,email\n1,ann@example.com\n2,bob@example.com\n');
  expect(
    (await airlock(['table', 'import', 'raw.people', people, '--branch', 'dev', '--tag', 'email=pii', ...L])).code,
  ).toBe(0);
  expect((await airlock(['merge', 'dev', '--into', 'main', ...L])).code).toBe(0);
}, 300_000);

describe('the CLI with tokens', () => {
  it('user add and token create --json print the person and the token once', async () => {
    const user = await airlock(['user', 'add', 'walt', '--role', 'writer', '--json', ...L]);
    expect(user.code).toBe(0);
    expect(user.json).toMatchObject({ name: 'walt', role: 'writer' });

    const created = await airlock(['token', 'create', '--user', 'walt', '--agent', 'bot', '--json', ...L]);
    expect(created.code).toBe(0);
    expect(created.json).toMatchObject({
      token: expect.stringMatching(/^airlock_[0-9a-f]{16}[A-Za-z0-9_-]{43}$/),
      person: 'walt',
      agent: 'bot',
      scopes: ['read', 'write:agent/bot/*', 'write:run/*', 'run'],
    });
    expect(created.json.hash).toBeUndefined();
    botToken = created.json.token;
    botTokenId = created.json.id;

    const listed = await airlock(['token', 'list', '--json', ...L]);
    expect(listed.stdout).not.toContain(botToken.slice(24));
    expect(listed.json.map((t: { id: string }) => t.id)).toContain(botTokenId);
  }, 60_000);

  it("an agent's import into main is denied: exit 4, the JSON error, nothing committed", async () => {
    const before = await airlock(['log', 'main', '--json', ...L]);
    const r = await airlock(
      ['table', 'import', 'raw.people', file('more.csv', 'id,email\n3,c@x.com\n'), '--branch', 'main', '--json', ...L],
      as(botToken),
    );
    expect(r.code).toBe(4);
    expect(r.json.error.code).toBe('DENIED');
    expect(r.json.error.message).toMatch(/protected/);
    expect(r.stdout + r.stderr).not.toContain(botToken);
    expect((await airlock(['log', 'main', '--json', ...L])).json).toEqual(before.json);
  }, 60_000);

  it("an admin's agent merging into main waits for approval: exit 5 and the awaiting_approval JSON", async () => {
    adminBotToken = (await airlock(['token', 'create', '--agent', 'abot', '--json', ...L])).json.token;
    expect((await airlock(['branch', 'create', 'agent/abot/fix', ...L], as(adminBotToken))).code).toBe(0);
    const more = file('fix.csv', 'id,email\n3,cid@example.com\n');
    const imported = await airlock(
      ['table', 'import', 'raw.people', more, '--branch', 'agent/abot/fix', ...L],
      as(adminBotToken),
    );
    expect(imported.code, imported.stderr).toBe(0);

    const r = await airlock(['merge', 'agent/abot/fix', '--into', 'main', '--json', ...L], as(adminBotToken));
    expect(r.code).toBe(5);
    expect(r.json).toMatchObject({ status: 'awaiting_approval', approvalId: expect.stringMatching(/^[0-9a-f]{12}$/) });
  }, 120_000);

  it('a malformed --token is denied without echoing it', async () => {
    const r = await airlock(['branch', 'list', '--token', 'airlock_garbage_SECRET123', '--json', ...L]);
    expect(r.code).toBe(4);
    expect(r.json.error.message).toMatch(/malformed/);
    expect(r.stdout).not.toContain('SECRET123');
  }, 60_000);

  it('a revoked token is refused at once, and audit log shows the denials', async () => {
    expect((await airlock(['token', 'revoke', botTokenId, ...L])).code).toBe(0);
    const r = await airlock(['query', 'SELECT 1 AS one', '--json', ...L], as(botToken));
    expect(r.code).toBe(4);
    expect(r.json.error.message).toMatch(/revoked/);

    const log = await airlock(['audit', 'log', '--json', ...L]);
    expect(log.code).toBe(0);
    const entries = log.json as Array<{ person: string; agent?: string; action: string; outcome: string }>;
    expect(entries).toContainEqual(
      expect.objectContaining({ person: 'walt', agent: 'bot', action: 'table.import', outcome: 'denied' }),
    );
    expect(entries).toContainEqual(expect.objectContaining({ person: 'anonymous', action: 'auth', outcome: 'denied' }));
    expect(entries).toContainEqual(
      expect.objectContaining({ agent: 'abot', action: 'merge', outcome: 'approval_required' }),
    );
    expect(log.stdout).not.toContain(botToken.slice(24));
  }, 60_000);
});
