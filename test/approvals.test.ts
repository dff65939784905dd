/**
 * Approvals (issue 6, point 3): an agent's merge into a protected branch waits for a
 * person, is bound to the source commit and target head it was judged on, voids itself
 * when either moves, and executes exactly once — replayed, raced by two OS processes, or
 * recovered after a crash between executing and recording. On the embedded SQLite lake,
 * plus one round trip on DynamoDB Local + s3rver.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Approval, type Approvals, openApprovals, prepareMergeApproval } from '../shared/approvals/index.js';
import { AuditLog } from '../shared/audit/index.js';
import type { Actor } from '../shared/catalog/index.js';
import { isConflict, isDenied, isInvalid, isNotFound } from '../shared/errors/index.js';
import { Lake } from '../shared/lake/Lake.js';
import type { LakeLocation } from '../shared/lake/openLake.js';
import { overwrite } from './support/catalogFixtures.js';
import { airlock, tempDir } from './support/cli.js';
import { EMULATOR_CREDENTIALS, uniqueName } from './support/emulators.js';
import { useEmulators } from './support/useEmulators.js';

const APPROVER = join(import.meta.dirname, 'fixtures', 'approvalApprover.ts');
const TSX = join(import.meta.dirname, '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');

const owner: Actor = { person: 'alice' };
const bot: Actor = { person: 'alice', agent: 'bot' };
const bob: Actor = { person: 'bob' };
const bobsAgent: Actor = { person: 'bob', agent: 'helper' };
const carol: Actor = { person: 'carol' };
const SOURCE = 'agent/bot/fix';

const opened: Lake[] = [];
afterAll(async () => {
  for (const lake of opened) await lake.close();
});

/** A lake with main and an agent branch holding one new table, ready to be merged. */
async function lakeWithAgentWork(location: LakeLocation = { backend: 'local', dir: join(tempDir(), 'lake') }) {
  const { lake } = await Lake.init(location);
  opened.push(lake);
  await lake.catalog.createBranch(SOURCE, 'main', bot);
  await lake.catalog.commit(SOURCE, [overwrite('raw.events', null, 5)], { actor: bot, message: 'add events' });
  return { lake, location };
}

/** Moves main by merging another branch into it (main is protected: it changes only by merge). */
async function moveMain(lake: Lake, name = 'other'): Promise<string> {
  await lake.catalog.createBranch(name, 'main', owner);
  await lake.catalog.commit(name, [overwrite(`raw.${name}`, null, 1)], { actor: owner, message: `add ${name}` });
  const merged = await lake.catalog.merge(name, 'main', { actor: owner, message: `merge ${name}` });
  return merged.commit as string;
}

async function requestMerge(lake: Lake, approvals: Approvals, requester: Actor = bot): Promise<Approval> {
  return approvals.request(requester, await prepareMergeApproval(lake.catalog, requester, SOURCE, 'main'));
}

/** Merge commits on main's first-parent history whose second parent is `source`. */
async function mergesOf(lake: Lake, source: string): Promise<string[]> {
  const history = await lake.catalog.history('main', 100);
  return history.filter((c) => c.parents[1] === source).map((c) => c.id);
}

describe('approval requests', () => {
  it('records a pending approval bound to the source commit and the target head, with the exact diff', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const sourceHead = (await lake.catalog.head(SOURCE)).commit;
    const mainHead = (await lake.catalog.head('main')).commit;

    const approval = await requestMerge(lake, approvals);

    expect(approval).toMatchObject({
      action: 'merge',
      target: 'main',
      status: 'pending',
      requester: bot,
      binding: { source: SOURCE, sourceCommit: sourceHead, target: 'main', targetHead: mainHead },
    });
    expect(approval.hash).toMatch(/^[0-9a-f]{64}$/);
    const diff = approval.diff as { changes: Array<{ table: string; status: string; rowsAdded: number }> };
    expect(diff.changes).toEqual([expect.objectContaining({ table: 'raw.events', status: 'added', rowsAdded: 5 })]);
    expect(await approvals.get(approval.id)).toEqual(approval);
    expect((await approvals.list({ status: 'pending' })).map((a) => a.id)).toEqual([approval.id]);
    expect(await approvals.list({ status: 'executed' })).toEqual([]);
  });

  it('returns the same approval when the same pending thing is requested again', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const first = await requestMerge(lake, approvals);
    const again = await requestMerge(lake, approvals);
    expect(again.id).toBe(first.id);
    expect(await approvals.list()).toHaveLength(1);
  });

  it('makes a new approval once what it was bound to changed', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const first = await requestMerge(lake, approvals);
    await moveMain(lake);
    const second = await requestMerge(lake, approvals);
    expect(second.id).not.toBe(first.id);
    expect(second.hash).not.toBe(first.hash);
  });

  it('refuses malformed requests and unknown ids', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const input = await prepareMergeApproval(lake.catalog, bot, SOURCE, 'main');
    await expect(approvals.request(bot, { ...input, action: 'launch' as never })).rejects.toSatisfy(isInvalid);
    await expect(approvals.request(bot, { ...input, summary: ' ' })).rejects.toSatisfy(isInvalid);
    await expect(approvals.request(bot, { ...input, binding: { head: 3 as never } })).rejects.toSatisfy(isInvalid);
    expect(await approvals.list()).toEqual([]);
    await expect(approvals.get('0123456789ab')).rejects.toSatisfy(isNotFound);
    await expect(approvals.get('../etc')).rejects.toSatisfy(isInvalid);
  });

  it('asks for nothing when there is nothing to merge', async () => {
    const { lake } = await lakeWithAgentWork();
    await expect(prepareMergeApproval(lake.catalog, bot, 'main', SOURCE)).rejects.toSatisfy(isInvalid);
  });
});

describe('approving', () => {
  it('merges once, as the requester, recording who approved it', async () => {
    const { lake } = await lakeWithAgentWork();
    const audit = new AuditLog(lake.stores.store, lake.stores.objects);
    const { approvals } = openApprovals(lake, { audit });
    const approval = await requestMerge(lake, approvals);

    const done = await approvals.approve({ ...bob, tokenId: 'tok1', scopes: ['*'] } as Actor, approval.id);

    expect(done.status).toBe('executed');
    expect(done.decidedBy).toEqual(bob); // the token id and scopes of the approver's request are not kept
    const head = await lake.catalog.resolve('main');
    expect(done.result).toMatchObject({ status: 'merged', commit: head.commit.id });
    expect(head.commit.parents).toEqual([approval.binding.targetHead, approval.binding.sourceCommit]);
    expect(head.commit.author).toBe('alice');
    expect(head.commit.agent).toBe('bot');
    expect(head.commit.message).toContain(`Approved-by: bob (approval ${approval.id})`);
    expect((await lake.catalog.listTables('main')).map((t) => t.name)).toEqual(['raw.events']);
    const log = await audit.log({ action: 'approval.*' });
    expect(log.map((e) => [e.action, e.outcome, e.person]).reverse()).toEqual([
      ['approval.request', 'approval_required', 'alice'],
      ['approval.approve', 'approved', 'bob'],
      ['approval.execute', 'ok', 'bob'],
    ]);
    expect((await audit.verify()).ok).toBe(true);
  });

  it('treats a replayed approve as a no-op that returns the stored result', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const approval = await requestMerge(lake, approvals);
    const first = await approvals.approve(bob, approval.id);
    const headAfterFirst = (await lake.catalog.head('main')).commit;

    const replay = await approvals.approve(bob, approval.id);
    const byAnother = await approvals.approve(carol, approval.id);

    expect(replay).toEqual(first);
    expect(byAnother).toEqual(first);
    expect((await lake.catalog.head('main')).commit).toBe(headAfterFirst);
    expect(await mergesOf(lake, approval.binding.sourceCommit as string)).toHaveLength(1);
  });

  it('never lets an agent approve, even one acting for another person', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const approval = await requestMerge(lake, approvals);
    const mainHead = (await lake.catalog.head('main')).commit;

    await expect(approvals.approve(bobsAgent, approval.id)).rejects.toSatisfy(
      (e) => isDenied(e) && /agent can never approve/.test((e as Error).message),
    );
    await expect(approvals.reject(bobsAgent, approval.id, 'no')).rejects.toSatisfy(isDenied);
    expect((await approvals.get(approval.id)).status).toBe('pending');
    expect((await lake.catalog.head('main')).commit).toBe(mainHead);
  });

  it("never lets the requester's person approve their own or their agent's request", async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const approval = await requestMerge(lake, approvals);
    await expect(approvals.approve(owner, approval.id)).rejects.toSatisfy(
      (e) => isDenied(e) && /requested by agent bot of alice/.test((e as Error).message),
    );
    expect((await approvals.get(approval.id)).status).toBe('pending');
  });

  it('asks the injected role check who else may approve', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake, { mayApprove: (actor) => actor.person === 'carol' });
    const approval = await requestMerge(lake, approvals);
    await expect(approvals.approve(bob, approval.id)).rejects.toSatisfy(isDenied);
    expect((await approvals.approve(carol, approval.id)).status).toBe('executed');
  });

  it('voids the approval and says so when the target moved', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const approval = await requestMerge(lake, approvals);
    const moved = await moveMain(lake);

    const error = await approvals.approve(bob, approval.id).catch((e) => e);

    expect(isConflict(error)).toBe(true);
    expect(error.message).toContain(
      `target 'main' moved from ${approval.binding.targetHead?.slice(0, 12)} to ${moved.slice(0, 12)}`,
    );
    const stored = await approvals.get(approval.id);
    expect(stored.status).toBe('void');
    expect(stored.reason).toContain("target 'main' moved");
    expect((await lake.catalog.head('main')).commit).toBe(moved);
    await expect(approvals.approve(bob, approval.id)).rejects.toSatisfy(
      (e) => isConflict(e) && /is void/.test((e as Error).message),
    );
  });

  it('voids the approval and says so when the source moved', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const approval = await requestMerge(lake, approvals);
    const mainHead = (await lake.catalog.head('main')).commit;
    const current = await lake.catalog.getTable(SOURCE, 'raw.events');
    await lake.catalog.commit(SOURCE, [overwrite('raw.events', current.id, 9)], { actor: bot, message: 'more' });

    await expect(approvals.approve(bob, approval.id)).rejects.toSatisfy(
      (e) => isConflict(e) && new RegExp(`source '${SOURCE}' moved from`).test((e as Error).message),
    );
    expect((await approvals.get(approval.id)).status).toBe('void');
    expect((await lake.catalog.head('main')).commit).toBe(mainHead);
  });

  it('rejects with a reason, after which it can no longer be approved', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const approval = await requestMerge(lake, approvals);
    const mainHead = (await lake.catalog.head('main')).commit;
    await expect(approvals.reject(bob, approval.id, '  ')).rejects.toSatisfy(isInvalid);

    const rejected = await approvals.reject(bob, approval.id, 'events need a review first');

    expect(rejected).toMatchObject({ status: 'rejected', reason: 'events need a review first', decidedBy: bob });
    await expect(approvals.approve(carol, approval.id)).rejects.toSatisfy(
      (e) => isConflict(e) && /rejected: events need a review first/.test((e as Error).message),
    );
    expect((await lake.catalog.head('main')).commit).toBe(mainHead);
  });

  it('recovers a crash between executing and recording without merging twice', async () => {
    const { lake } = await lakeWithAgentWork();
    let clock = Date.parse('2026-03-01T10:00:00Z');
    const { approvals } = openApprovals(lake, { leaseMs: 60_000, now: () => new Date(clock) });
    const approval = await requestMerge(lake, approvals);
    // The crashed process: it claimed the approval and merged, then died before recording.
    const item = await lake.stores.store.get({ pk: 'approvals', sk: approval.id });
    const claimed = {
      ...approval,
      status: 'approved',
      decidedBy: bob,
      claim: { by: bob, at: new Date(clock).toISOString() },
    };
    await lake.stores.store.put(
      { ...(item as NonNullable<typeof item>), v: 2, data: claimed },
      { kind: 'version', v: 1 },
    );
    const crashedMerge = await lake.catalog.merge(SOURCE, 'main', {
      actor: bot,
      message: 'merge',
      noFastForward: true,
      expect: { sourceCommit: approval.binding.sourceCommit, targetHead: approval.binding.targetHead },
    });

    clock += 61_000; // the lease ran out
    const recovered = await approvals.approve(carol, approval.id);

    expect(recovered.status).toBe('executed');
    expect(recovered.result).toMatchObject({ commit: crashedMerge.commit, recovered: true });
    expect(await mergesOf(lake, approval.binding.sourceCommit as string)).toEqual([crashedMerge.commit]);
  });

  it('merges only onto the bound head even when the check passed a moment earlier', async () => {
    const { lake } = await lakeWithAgentWork();
    const head = (await lake.catalog.head('main')).commit as string;
    await moveMain(lake);
    await expect(
      lake.catalog.merge(SOURCE, 'main', { actor: bot, message: 'm', expect: { targetHead: head } }),
    ).rejects.toSatisfy((e) => isConflict(e) && (e as { details: { moved?: string } }).details.moved === 'target');
  });

  it('executes once when two OS processes approve at the same moment', async () => {
    const { lake, location } = await lakeWithAgentWork();
    const audit = new AuditLog(lake.stores.store, lake.stores.objects);
    const { approvals } = openApprovals(lake, { audit });
    const approval = await requestMerge(lake, approvals);
    const dir = (location as { dir: string }).dir;

    // Both racers open the lake and read the approval first; then both are released at once.
    const racers = ['bob', 'carol'].map((person) => {
      const child = spawn(process.execPath, [TSX, APPROVER, dir, approval.id, person], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      const ready = new Promise<void>((resolve) => {
        child.stdout.on('data', (d) => {
          out += d;
          if (out.startsWith('ready\n')) resolve();
        });
      });
      child.stderr.on('data', (d) => (err += d));
      const done = new Promise<{ ok: boolean; status?: string; result?: { commit: string } }>((resolve, reject) =>
        child.on('close', (code) =>
          code === 0
            ? resolve(JSON.parse(out.slice('ready\n'.length)))
            : reject(new Error(`approver ${person} exited ${code}: ${err}`)),
        ),
      );
      return { child, ready, done };
    });
    await Promise.all(racers.map((r) => r.ready));
    for (const r of racers) r.child.stdin.end('go\n');
    const outputs = await Promise.all(racers.map((r) => r.done));

    expect(outputs.map((o) => o.status)).toEqual(['executed', 'executed']);
    expect(outputs[0]?.result?.commit).toBe(outputs[1]?.result?.commit);
    expect(await mergesOf(lake, approval.binding.sourceCommit as string)).toEqual([outputs[0]?.result?.commit]);
    expect((await approvals.get(approval.id)).status).toBe('executed');
    // One approver won the claim and executed; the other followed its result.
    const entries = (await audit.log({ action: 'approval.*' })).filter((e) => e.details?.approval === approval.id);
    expect(entries.filter((e) => e.outcome === 'approved')).toHaveLength(1);
    expect(entries.filter((e) => e.action === 'approval.execute')).toHaveLength(1);
  }, 120_000);
});

describe('the executor registry', () => {
  /** A grant request: no branch involved, bound to the grant set's version. */
  const grantInput = (version = 'v1') => ({
    action: 'grant' as const,
    target: 'bea',
    params: { operation: 'add', right: 'merge', pattern: 'main' },
    binding: { grants: version },
    summary: 'grant bea merge on main',
    diff: { add: [{ on: 'branch', pattern: 'main', right: 'merge' }] },
  });

  it('runs a registered executor exactly once, as the requester, approved by the approver', async () => {
    const { lake } = await lakeWithAgentWork();
    const calls: Array<{ requester: Actor; approver: Actor }> = [];
    const { approvals } = openApprovals(lake);
    approvals.register('grant', {
      moved: async () => [],
      execute: async (approval, approver) => {
        calls.push({ requester: approval.requester, approver });
        return { grant: 'g1' };
      },
    });
    const approval = await approvals.request(bot, grantInput());

    const first = await approvals.approve(bob, approval.id);
    const replay = await approvals.approve(carol, approval.id);

    expect(first).toMatchObject({ status: 'executed', result: { grant: 'g1' } });
    expect(replay).toEqual(first);
    expect(calls).toEqual([{ requester: bot, approver: bob }]);
  });

  it('refuses to approve an action no executor is registered for, changing nothing', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    const approval = await approvals.request(bot, { ...grantInput(), action: 'delete' });
    await expect(approvals.approve(bob, approval.id)).rejects.toSatisfy(
      (e) => isInvalid(e) && /no executor is registered for 'delete'/.test((e as Error).message),
    );
    expect((await approvals.get(approval.id)).status).toBe('pending');
  });

  it('marks an execution that failed without effect as failed, and never runs it again', async () => {
    const { lake } = await lakeWithAgentWork();
    let runs = 0;
    const { approvals } = openApprovals(lake);
    approvals.register('grant', {
      moved: async () => [],
      execute: async () => {
        runs += 1;
        throw new Error('the directory is read-only');
      },
    });
    const approval = await approvals.request(bot, grantInput());

    await expect(approvals.approve(bob, approval.id)).rejects.toThrow('the directory is read-only');
    await expect(approvals.approve(bob, approval.id)).rejects.toSatisfy(
      (e) => isConflict(e) && /is failed: the directory is read-only/.test((e as Error).message),
    );
    expect(runs).toBe(1);
    expect((await approvals.get(approval.id)).status).toBe('failed');
  });

  it('voids through the executor when what it is bound to moved', async () => {
    const { lake } = await lakeWithAgentWork();
    const { approvals } = openApprovals(lake);
    let current = 'v1';
    approvals.register('grant', {
      moved: async (approval) =>
        approval.binding.grants === current ? [] : [`bea's grants changed (${approval.binding.grants} → ${current})`],
      execute: async () => ({ grant: 'g1' }),
    });
    const approval = await approvals.request(bot, grantInput('v1'));
    current = 'v2';
    await expect(approvals.approve(bob, approval.id)).rejects.toSatisfy(
      (e) => isConflict(e) && /bea's grants changed \(v1 → v2\)/.test((e as Error).message),
    );
    expect((await approvals.get(approval.id)).status).toBe('void');
  });
});

describe('airlock approvals (CLI, acting as the lake owner)', () => {
  /** A lake on disk with a pending approval requested by someone else's agent; the lake is closed for the CLI. */
  async function pendingOnDisk(requester: Actor = { person: 'dana', agent: 'bot' }) {
    const dir = join(tempDir(), 'lake');
    const { lake } = await Lake.init({ backend: 'local', dir });
    try {
      await lake.catalog.createBranch(SOURCE, 'main', requester);
      await lake.catalog.commit(SOURCE, [overwrite('raw.events', null, 5)], { actor: requester, message: 'add' });
      const { approvals } = openApprovals(lake);
      const approval = await requestMerge(lake, approvals, requester);
      return { dir, approval, owner: lake.owner };
    } finally {
      await lake.close();
    }
  }

  it('lists, shows with the diff, and approves exactly once', async () => {
    const { dir, approval } = await pendingOnDisk();
    const cli = (...args: string[]) => airlock(['approvals', ...args, '--json', '--lake', dir]);

    const listed = await cli('list', '--status', 'pending');
    expect(listed.code).toBe(0);
    expect(listed.json.map((a: Approval) => a.id)).toEqual([approval.id]);
    const shown = await cli('show', approval.id);
    expect(shown.json).toMatchObject({ id: approval.id, status: 'pending', moved: [] });
    expect(shown.json.diff.changes[0]).toMatchObject({ table: 'raw.events', rowsAdded: 5 });
    const text = await airlock(['approvals', 'show', approval.id, '--lake', dir]);
    expect(text.stdout).toContain('raw.events added: +5 -0 rows, +1 -0 files');

    const approved = await cli('approve', approval.id);
    const replayed = await cli('approve', approval.id);

    expect(approved.code).toBe(0);
    expect(approved.json).toMatchObject({ id: approval.id, status: 'executed', result: { status: 'merged' } });
    expect(replayed.code).toBe(0);
    expect(replayed.json.result).toEqual(approved.json.result);
    expect((await cli('list', '--status', 'executed')).json).toHaveLength(1);
  }, 120_000);

  it('rejects with a reason, and exits 3 when approving what was rejected', async () => {
    const { dir, approval } = await pendingOnDisk();
    const cli = (...args: string[]) => airlock(['approvals', ...args, '--json', '--lake', dir]);
    const missing = await cli('reject', approval.id);
    expect(missing.code).toBe(2); // a usage error: --reason is required
    const rejected = await cli('reject', approval.id, '--reason', 'not now');
    expect(rejected.json).toMatchObject({ status: 'rejected', reason: 'not now' });
    const late = await cli('approve', approval.id);
    expect(late.code).toBe(3);
    expect(late.json.error.code).toBe('CONFLICT');
    const badStatus = await cli('list', '--status', 'maybe');
    expect(badStatus.code).toBe(2);
  }, 120_000);

  it("gates an agent token's merge into main (exit 5) until a person approves it", async () => {
    const dir = join(tempDir(), 'lake');
    const { lake } = await Lake.init({ backend: 'local', dir });
    const agent = { person: 'bea', agent: 'bot' };
    await lake.catalog.createBranch(SOURCE, 'main', agent);
    await lake.catalog.commit(SOURCE, [overwrite('raw.events', null, 5)], { actor: agent, message: 'add' });
    const mainHead = (await lake.catalog.head('main')).commit;
    await lake.close();
    const cli = (...args: string[]) => airlock([...args, '--json', '--lake', dir]);
    // The gate is for an agent of a person who may merge into main (others are simply denied).
    expect((await cli('user', 'add', 'bea', '--role', 'approver')).code).toBe(0);
    const token = (await cli('token', 'create', '--user', 'bea', '--agent', 'bot')).json.token as string;

    const waiting = await cli('merge', SOURCE, '--into', 'main', '--token', token);
    expect(waiting.code).toBe(5);
    expect(waiting.json).toMatchObject({
      status: 'awaiting_approval',
      approvalId: expect.stringMatching(/^[0-9a-f]{12}$/),
    });
    const id = waiting.json.approvalId as string;
    const again = await cli('merge', SOURCE, '--into', 'main', '--token', token);
    expect(again.json.approvalId).toBe(id);

    const byAgent = await cli('approvals', 'approve', id, '--token', token);
    expect(byAgent.code).toBe(4);
    const byOwner = await cli('approvals', 'approve', id);
    expect(byOwner.code).toBe(0);
    expect(byOwner.json).toMatchObject({ status: 'executed', requester: agent, result: { status: 'merged' } });
    const log = await cli('log', 'main', '--limit', '1');
    expect(log.json[0]).toMatchObject({ id: byOwner.json.result.commit, author: 'bea', agent: 'bot' });
    expect(log.json[0].parents[0]).toBe(mainHead);
  }, 180_000);

  it("exits 4 when the owner approves their own agent's request", async () => {
    const dir = join(tempDir(), 'lake');
    const { lake } = await Lake.init({ backend: 'local', dir });
    const owner = lake.owner;
    await lake.close();
    const { approval } = await (async () => {
      const reopened = await Lake.open({ backend: 'local', dir });
      try {
        const agent = { person: owner, agent: 'bot' };
        await reopened.catalog.createBranch(SOURCE, 'main', agent);
        await reopened.catalog.commit(SOURCE, [overwrite('raw.events', null, 5)], { actor: agent, message: 'add' });
        return { approval: await requestMerge(reopened, openApprovals(reopened).approvals, agent) };
      } finally {
        await reopened.close();
      }
    })();
    const own = await airlock(['approvals', 'approve', approval.id, '--json', '--lake', dir]);
    expect(own.code).toBe(4);
    expect(own.json.error.code).toBe('DENIED');
  }, 120_000);
});

describe('on DynamoDB Local + s3rver', () => {
  let emulators: Awaited<ReturnType<typeof useEmulators>>;
  beforeAll(async () => {
    emulators = await useEmulators();
  }, 120_000);

  it('requests once, approves once, and replays as a no-op', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_DYNAMODB: emulators.dynamoEndpoint,
      AWS_ENDPOINT_URL_S3: emulators.s3Endpoint,
      AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
    });
    try {
      const { lake } = await lakeWithAgentWork({
        backend: 'aws',
        table: uniqueName('airlock-appr'),
        bucket: uniqueName('airlock-appr').toLowerCase(),
      });
      const { approvals } = openApprovals(lake);
      const approval = await requestMerge(lake, approvals);
      expect((await requestMerge(lake, approvals)).id).toBe(approval.id);
      const done = await approvals.approve(bob, approval.id);
      const replay = await approvals.approve(bob, approval.id);
      expect(done.status).toBe('executed');
      expect(replay).toEqual(done);
      expect(await mergesOf(lake, approval.binding.sourceCommit as string)).toEqual([done.result?.commit]);
    } finally {
      process.env = saved;
    }
  }, 180_000);
});
