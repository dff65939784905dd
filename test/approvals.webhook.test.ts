/**
 * The approval webhook (issue 6, point 6): one per lake, told about each new approval
 * request with its diff summary and the approve / reject commands, against a real local
 * HTTP receiver. Delivery is retried with backoff and never fails the request.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type ApprovalWebhookBody,
  openApprovals,
  prepareMergeApproval,
  webhookBody,
} from '../shared/approvals/index.js';
import { AuditLog } from '../shared/audit/index.js';
import type { Actor } from '../shared/catalog/index.js';
import { isDenied, isInvalid } from '../shared/errors/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { overwrite } from './support/catalogFixtures.js';
import { airlock, tempDir } from './support/cli.js';

const bot: Actor = { person: 'dana', agent: 'bot' };
const SOURCE = 'agent/bot/fix';

interface Received {
  method: string;
  contentType: string | undefined;
  body: unknown;
}

/** A local HTTP receiver answering each request with the next status of `statuses` (then 200). */
async function receiver(statuses: number[] = []): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      received.push({ method: req.method ?? '', contentType: req.headers['content-type'], body: JSON.parse(data) });
      res.statusCode = statuses.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T0/B0/secret`, received, server };
}

/** A port nobody listens on (a server is opened and closed on it). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const servers: Server[] = [];
const lakes: Lake[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()));
});
afterAll(async () => {
  for (const lake of lakes) await lake.close();
});

async function lakeWithAgentWork() {
  const dir = join(tempDir(), 'lake');
  const { lake } = await Lake.init({ backend: 'local', dir });
  lakes.push(lake);
  await lake.catalog.createBranch(SOURCE, 'main', bot);
  await lake.catalog.commit(SOURCE, [overwrite('raw.events', null, 5)], { actor: bot, message: 'add events' });
  const owner: Actor = { person: lake.owner };
  return { lake, dir, owner };
}

describe('the approval webhook', () => {
  it('receives each new request with its diff summary and the approve and reject commands', async () => {
    const { lake, owner } = await lakeWithAgentWork();
    const hook = await receiver();
    const { approvals, webhook } = openApprovals(lake);
    await webhook.set(owner, hook.url);

    const approval = await approvals.request(bot, await prepareMergeApproval(lake.catalog, bot, SOURCE, 'main'));

    expect(hook.received).toHaveLength(1);
    const got = hook.received[0] as Received;
    expect(got.method).toBe('POST');
    expect(got.contentType).toBe('application/json');
    const body = got.body as ApprovalWebhookBody;
    expect(body).toEqual(webhookBody(approval));
    expect(body.approval).toMatchObject({
      id: approval.id,
      action: 'merge',
      target: 'main',
      requester: bot,
      summary: approval.summary,
    });
    expect(body.approval.diffSummary).toBe('raw.events added: +5 -0 rows, +1 -0 files');
    expect(body.commands).toEqual({
      approve: `airlock approvals approve ${approval.id}`,
      reject: `airlock approvals reject ${approval.id} --reason "…"`,
    });
    expect(body.text).toContain('agent bot of dana asks to merge agent/bot/fix');
    expect(body.text).toContain(`airlock approvals approve ${approval.id}`);
  });

  it('is not told again when the same pending thing is requested again', async () => {
    const { lake, owner } = await lakeWithAgentWork();
    const hook = await receiver();
    const { approvals, webhook } = openApprovals(lake);
    await webhook.set(owner, hook.url);
    const input = await prepareMergeApproval(lake.catalog, bot, SOURCE, 'main');
    await approvals.request(bot, input);
    await approvals.request(bot, input);
    expect(hook.received).toHaveLength(1);
  });

  it('retries a failed delivery with backoff and records the outcome in the audit trail', async () => {
    const { lake, owner } = await lakeWithAgentWork();
    const hook = await receiver([503]);
    const audit = new AuditLog(lake.stores.store, lake.stores.objects);
    const { approvals, webhook } = openApprovals(lake, { audit, webhook: { backoffMs: 10 } });
    await webhook.set(owner, hook.url);

    const approval = await approvals.request(bot, await prepareMergeApproval(lake.catalog, bot, SOURCE, 'main'));

    expect(hook.received).toHaveLength(2);
    const [notified] = await audit.log({ action: 'approval.notify' });
    expect(notified).toMatchObject({ outcome: 'ok', details: { approval: approval.id, attempts: 2 } });
  });

  it('never fails the request when the webhook is unreachable', async () => {
    const { lake, owner } = await lakeWithAgentWork();
    const audit = new AuditLog(lake.stores.store, lake.stores.objects);
    const { approvals, webhook } = openApprovals(lake, { audit, webhook: { backoffMs: 10, timeoutMs: 1000 } });
    await webhook.set(owner, `http://127.0.0.1:${await closedPort()}/hook`);

    const approval = await approvals.request(bot, await prepareMergeApproval(lake.catalog, bot, SOURCE, 'main'));

    expect(approval.status).toBe('pending');
    expect((await approvals.get(approval.id)).status).toBe('pending');
    const [notified] = await audit.log({ action: 'approval.notify' });
    expect(notified).toMatchObject({ outcome: 'error', details: { approval: approval.id, attempts: 3 } });
    expect(String(notified?.details?.error)).toMatch(/ECONNREFUSED/);
  });

  it('accepts only http(s) URLs, set by the owner, never by an agent', async () => {
    const { lake, owner } = await lakeWithAgentWork();
    const { webhook } = openApprovals(lake);
    await expect(webhook.set(owner, 'file:///etc/passwd')).rejects.toSatisfy(isInvalid);
    await expect(webhook.set(owner, 'not a url')).rejects.toSatisfy(isInvalid);
    await expect(webhook.set({ person: owner.person, agent: 'bot' }, 'https://hooks.example.com/x')).rejects.toSatisfy(
      isDenied,
    );
    expect(await webhook.get()).toBeUndefined();
    await webhook.set(owner, 'https://hooks.example.com/x');
    expect((await webhook.get())?.url).toBe('https://hooks.example.com/x');
    expect(await webhook.unset(owner)).toBe(true);
    expect(await webhook.get()).toBeUndefined();
  });

  it('records changes of the webhook in the audit trail without its secret path', async () => {
    const { lake, owner } = await lakeWithAgentWork();
    const audit = new AuditLog(lake.stores.store, lake.stores.objects);
    const { webhook } = openApprovals(lake, { audit });
    await webhook.set(owner, 'https://hooks.example.com/services/T0/B0/very-secret');
    await webhook.unset(owner);
    const entries = await audit.log({ action: 'approvals.webhook.*' });
    expect(entries.map((e) => [e.action, e.person, e.details]).reverse()).toEqual([
      ['approvals.webhook.set', owner.person, { url: 'https://hooks.example.com/…' }],
      ['approvals.webhook.unset', owner.person, { removed: true }],
    ]);
    expect(JSON.stringify(entries)).not.toContain('very-secret');
  });

  it('is set, shown and unset through the CLI', async () => {
    const { dir, lake } = await lakeWithAgentWork();
    await lake.close();
    lakes.splice(lakes.indexOf(lake), 1);
    const set = await airlock([
      'approvals',
      'webhook',
      'set',
      'https://hooks.example.com/T/B/x',
      '--json',
      '--lake',
      dir,
    ]);
    expect(set.code).toBe(0);
    expect(set.json).toEqual({ url: 'https://hooks.example.com/T/B/x' });
    const shown = await airlock(['approvals', 'webhook', 'show', '--json', '--lake', dir]);
    expect(shown.json).toMatchObject({ url: 'https://hooks.example.com/T/B/x' });
    const bad = await airlock(['approvals', 'webhook', 'set', 'ftp://x', '--json', '--lake', dir]);
    expect(bad.code).toBe(1);
    expect(bad.json.error.code).toBe('INVALID');
    const unset = await airlock(['approvals', 'webhook', 'unset', '--json', '--lake', dir]);
    expect(unset.json).toEqual({ removed: true });
    expect((await airlock(['approvals', 'webhook', 'show', '--json', '--lake', dir])).json).toEqual({ url: null });
  }, 60_000);
});
