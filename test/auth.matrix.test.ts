import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthActor, GuardedLake } from '../shared/auth/index.js';
import { isAirlockError } from '../shared/errors/index.js';
import type { Lake } from '../shared/lake/Lake.js';
import { castOfActors, csvFile, guardedLake } from './auth.fixtures.js';

/**
 * Actors × actions through the one enforcement point. Each cell is a test: it expects
 * allowed / denied / needs approval, and checks that exactly one audit entry was appended
 * for the request, naming the person, the agent and the outcome.
 */
type Expect = 'allowed' | 'denied' | 'approval';
const ACTORS = ['owner', 'reader', 'writer', 'approver', 'admin', 'agent of writer', 'agent of admin'] as const;
type ActorName = (typeof ACTORS)[number];

let lake: Lake;
let guard: GuardedLake;
let dir: string;
let actors: Record<string, AuthActor>;
let pipelineDir: string;

/** The branch an actor works on: `work/<person>` for people, `agent/<agent>/work` for agents. */
function ownBranch(a: AuthActor): string {
  return a.agent ? `agent/${a.agent}/work` : `work/${a.person}`;
}

const key = (name: ActorName) => name.replace(/ /g, '-');

interface Action {
  name: string;
  audited: string;
  run(actor: AuthActor, who: ActorName): Promise<unknown>;
  expect: Record<ActorName, Expect>;
}

const ACTIONS: Action[] = [
  {
    name: 'read-query on main',
    audited: 'query',
    run: (a) => guard.query(a, { sql: 'SELECT count(*) AS n FROM raw.t', ref: 'main' }),
    expect: row('A A A A A A A'),
  },
  {
    name: 'import on own branch',
    audited: 'table.import',
    run: (a) =>
      guard.importTable(a, { table: 'raw.t', file: csvFile(dir, 'own.csv', 'id\n100\n'), branch: ownBranch(a) }),
    expect: row('A D A A A A A'),
  },
  {
    name: 'import on main',
    audited: 'table.import',
    run: (a) => guard.importTable(a, { table: 'raw.t', file: csvFile(dir, 'main.csv', 'id\n200\n'), branch: 'main' }),
    expect: row('D D D D D D D'),
  },
  {
    name: 'merge into main',
    audited: 'merge',
    run: (a, who) => guard.merge(a, { source: `m/${key(who)}`, into: 'main' }),
    expect: row('A D D A A D P'),
  },
  {
    name: 'grant change',
    audited: 'grant.add',
    run: (a) => guard.addGrant(a, { person: 'rita', grant: { on: 'branch', pattern: 'x/*', right: 'write' } }),
    expect: row('A D D D A D P'),
  },
  {
    name: 'export masked table',
    audited: 'table.export',
    run: (a, who) => guard.exportTable(a, { table: 'raw.people', ref: 'main', file: join(dir, `${key(who)}.csv`) }),
    expect: row('A P P P A P P'),
  },
  {
    name: 'run pipeline on own branch',
    audited: 'run',
    run: (a) => guard.runPipeline(a, { pipelineDir, branch: ownBranch(a) }),
    expect: row('A D A A A A A'),
  },
  {
    // An agent's run into a protected branch executes, then its publish waits for a person.
    name: 'run pipeline into main',
    audited: 'run',
    run: (a) => guard.runPipeline(a, { pipelineDir, branch: 'main' }),
    expect: row('A D D A A D P'),
  },
];

function row(text: string): Record<ActorName, Expect> {
  const marks = text.split(' ');
  return Object.fromEntries(
    ACTORS.map((a, i) => [a, ({ A: 'allowed', D: 'denied', P: 'approval' } as const)[marks[i] as 'A']]),
  ) as Record<ActorName, Expect>;
}

beforeAll(async () => {
  ({ lake, guard, dir } = await guardedLake('airlock-auth-matrix-'));
  const owner = guard.owner;
  await guard.createBranch(owner, { name: 'seed' });
  await guard.importTable(owner, { table: 'raw.t', file: csvFile(dir, 't.csv', 'id\n1\n2\n3\n'), branch: 'seed' });
  await guard.importTable(owner, {
    table: 'raw.people',
    file: csvFile(dir, 'people.csv', 'id,email\n1,ann@example.com\n2,bob@example.com\n'),
    branch: 'seed',
    tags: { email: ['pii'] },
  });
  await guard.merge(owner, { source: 'seed', into: 'main' });
  actors = await castOfActors(guard);
  for (const name of ACTORS) {
    const a = actors[name] as AuthActor;
    await guard.createBranch(owner, { name: ownBranch(a) });
    // A source branch per actor with its own append, so every allowed merge has work to merge.
    await guard.createBranch(owner, { name: `m/${key(name)}` });
    await guard.importTable(owner, {
      table: 'raw.t',
      file: csvFile(dir, `m-${key(name)}.csv`, `id\n${10 + ACTORS.indexOf(name)}\n`),
      branch: `m/${key(name)}`,
    });
  }
  pipelineDir = join(dir, 'pipeline');
  mkdirSync(pipelineDir);
  writeFileSync(join(pipelineDir, 'double.sql'), '-- output: ml.double\nSELECT id, id * 2 AS twice FROM raw.t\n');
}, 300_000);

afterAll(async () => {
  await lake?.close();
});

describe.each(ACTIONS)('$name', (action) => {
  it.each(ACTORS)(
    '%s',
    async (who) => {
      const actor = actors[who] as AuthActor;
      const expected = action.expect[who];
      const before = (await guard.audit.head())?.seq ?? 0;
      const mainBefore = (await lake.catalog.head('main')).commit;

      const outcome = await action.run(actor, who).then(
        (result) => {
          const run = result as { status?: string; approvalId?: string } | undefined;
          if (run?.status !== 'awaiting_approval') return 'allowed' as const;
          expect(run.approvalId).toMatch(/^[0-9a-f]{12}$/);
          return 'approval' as const;
        },
        (e: unknown) => {
          if (isAirlockError(e) && e.code === 'DENIED') return 'denied' as const;
          if (isAirlockError(e) && e.code === 'APPROVAL_REQUIRED') {
            expect(e.details.approvalId).toMatch(/^[0-9a-f]{12}$/);
            return 'approval' as const;
          }
          throw e;
        },
      );

      expect(outcome).toBe(expected);
      const entries = await guard.audit.log({ limit: 5 });
      const mine = entries.filter((e) => e.seq > before);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({
        person: actor.person,
        action: action.audited,
        outcome: { allowed: 'ok', denied: 'denied', approval: 'approval_required' }[expected],
      });
      expect(mine[0]?.agent).toBe(actor.agent);
      if (expected !== 'allowed') expect((await lake.catalog.head('main')).commit).toBe(mainBefore);
    },
    120_000,
  );
});
