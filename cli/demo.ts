import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApprovals } from '../shared/approvals/index.js';
import { GuardedLake } from '../shared/auth/index.js';
import { isAirlockError } from '../shared/errors/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import type { Output } from './main.js';
import { renderDiff, short } from './render.js';

const COUNTRIES = ['DE', 'FR', 'US', 'JP', 'BR'];

function eventsCsv(from: number, count: number): string {
  const lines = ['id,email,country,amount'];
  for (let id = from; id < from + count; id++) {
    lines.push(`${id},user${id % 97}@example.com,${COUNTRIES[id % COUNTRIES.length]},${((id * 37) % 1000) / 10}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `airlock demo`: the end-to-end story on a fresh lake, printed for people (or as one JSON
 * summary with --json). Uses the same service calls as the CLI commands.
 */
export async function runDemo(options: { json: boolean; lake?: string }): Promise<Output> {
  const dir = options.lake ?? mkdtempSync(join(tmpdir(), 'airlock-demo-'));
  const files = mkdtempSync(join(tmpdir(), 'airlock-demo-data-'));
  const lines: string[] = [];
  const say = (text = '') => {
    lines.push(text);
    if (!options.json) process.stdout.write(`${text}\n`);
  };
  const { lake } = await Lake.init(lakeLocation({ lake: dir }));
  try {
    // Every step below goes through the one enforcement point, as the CLI, HTTP and MCP do.
    const { approvals } = openApprovals(lake, {
      audit: false,
      mayApprove: (approver, approval) => guard.mayApprove(approver, approval.target, approval.action),
    });
    const guard: GuardedLake = new GuardedLake(lake, { approvals });
    // Decisions do not pass through the guard: the service audits them itself (as `airlock approvals` does).
    const decisions = openApprovals(lake, {
      mayApprove: (approver, approval) => guard.mayApprove(approver, approval.target, approval.action),
    }).approvals;
    const owner = guard.owner;
    const count = async (ref: string) =>
      Number((await guard.query(owner, { sql: 'SELECT count(*) AS n FROM raw.events', ref })).rows[0]?.n);

    say(`Airlock demo — a fresh lake at ${dir}`);
    say('');
    say(`1. The lake starts with one branch, main. It is protected: it changes only by merge.`);
    await guard.createBranch(owner, { name: 'ingest' });
    writeFileSync(join(files, 'events.csv'), eventsCsv(1, 2000));
    const imported = await guard.importTable(owner, {
      table: 'raw.events',
      file: join(files, 'events.csv'),
      branch: 'ingest',
      notNull: ['id'],
      unique: ['id'],
      tags: { email: ['pii'] },
    });
    say(
      `   On branch 'ingest' ${owner.person} imports events.csv: ${imported.rows} rows into raw.events (id unique, email tagged pii).`,
    );
    const ff = await guard.merge(owner, { source: 'ingest', into: 'main', message: 'Publish raw events' });
    say(
      `   Merging 'ingest' into main fast-forwards it to ${short(ff.sourceCommit)}: one atomic step, no data copied.`,
    );
    const published = new Date().toISOString();

    say('');
    say('2. People, and an agent acting for one of them. An agent is never a principal: it can do at');
    say("   most what its person can, narrowed by its token's scopes.");
    await guard.addUser(owner, { name: 'dana', role: 'approver' });
    await guard.addUser(owner, { name: 'ann', role: 'approver' });
    const token = await guard.createToken(owner, { person: 'dana', agent: 'analyst', ttl: '1d' });
    const agent = await guard.authenticate(token.token);
    say(
      `   dana and ann are approvers. dana's agent 'analyst' gets a token (${token.token.slice(0, 12)}…, shown once,`,
    );
    say(`   stored as a SHA-256 hash, expires ${token.expires}) with the default scopes: ${token.scopes.join(', ')}.`);
    const seen = await guard.query(agent, { sql: 'SELECT id, email FROM raw.events ORDER BY id LIMIT 1' });
    say(
      `   What the agent sees of a pii column: id ${seen.rows[0]?.id}, email ${seen.rows[0]?.email} (masked in the engine).`,
    );

    say('');
    say('3. The agent works on its own branch without any ceremony. Branching is O(1).');
    const agentBranch = 'agent/analyst/late-events';
    await guard.createBranch(agent, { name: agentBranch });
    writeFileSync(join(files, 'late.csv'), eventsCsv(2001, 500));
    await guard.importTable(agent, { table: 'raw.events', file: join(files, 'late.csv'), branch: agentBranch });
    await guard.addColumn(agent, { table: 'raw.events', branch: agentBranch, column: 'channel', type: 'Utf8' });
    say(`   It appends 500 late events and adds a nullable column 'channel'. Nobody else sees this yet:`);
    say(`   main has ${await count('main')} events, '${agentBranch}' has ${await count(agentBranch)}.`);
    say(`   airlock diff main ${agentBranch}`);
    for (const line of renderDiff(await guard.diff(owner, { from: 'main', to: agentBranch })).split('\n'))
      say(`     ${line}`);
    const direct = await guard
      .importTable(agent, { table: 'raw.events', file: join(files, 'late.csv'), branch: 'main' })
      .then(
        () => 'allowed',
        (e: unknown) => (isAirlockError(e) ? e.code : String(e)),
      );
    say(`   Writing to main directly: ${direct} (protected branches change only by merge).`);

    say('');
    say('4. Meanwhile a person appends a hotfix batch to main through another branch.');
    await guard.createBranch(owner, { name: 'hotfix' });
    writeFileSync(join(files, 'hotfix.csv'), eventsCsv(5001, 100));
    await guard.importTable(owner, { table: 'raw.events', file: join(files, 'hotfix.csv'), branch: 'hotfix' });
    await guard.merge(owner, { source: 'hotfix', into: 'main', message: 'Hotfix batch' });
    say(`   main now has ${await count('main')} events.`);

    say('');
    say('5. The agent proposes its merge into main. That crosses a boundary, so it waits for a person:');
    const approvalId = await guard
      .merge(agent, {
        source: agentBranch,
        into: 'main',
        message: `Merge ${agentBranch}: late events + channel column`,
      })
      .then(
        () => undefined,
        (e: unknown) => {
          if (isAirlockError(e) && e.code === 'APPROVAL_REQUIRED') return e.details.approvalId as string;
          throw e;
        },
      );
    if (!approvalId) throw new Error("the agent's merge into main did not wait for approval");
    const request = await approvals.get(approvalId);
    say(`   APPROVAL_REQUIRED (exit 5): approval ${approvalId} — ${request.summary}`);
    const selfApproval = await decisions.approve(agent, approvalId).then(
      () => 'allowed',
      (e: unknown) => (isAirlockError(e) ? e.code : String(e)),
    );
    const ownPerson = await decisions.approve({ person: 'dana' }, approvalId).then(
      () => 'allowed',
      (e: unknown) => (isAirlockError(e) ? e.code : String(e)),
    );
    say(`   The agent approving it: ${selfApproval}. dana, its own person: ${ownPerson}.`);
    const approved = await decisions.approve({ person: 'ann' }, approvalId);
    const mergeCommit = approved.result?.commit as string;
    say(
      `   ann approves: merged three-way as ${short(mergeCommit)} (both sides only appended: files unioned), exactly once.`,
    );
    say(`   main has ${await count('main')} events.`);

    say('');
    say('6. Time travel: every ref is queryable as it was.');
    say(`   SELECT count(*) FROM raw.events --ref main@${published}  →  ${await count(`main@${published}`)}`);
    say(`   SELECT count(*) FROM raw.events --ref main~1                   →  ${await count('main~1')}`);
    const byCountry = await guard.query(owner, {
      sql: 'SELECT country, count(*) AS events FROM raw.events GROUP BY country ORDER BY country',
      ref: 'main',
    });
    say(`   By country on main: ${byCountry.rows.map((r) => `${r.country} ${r.events}`).join(', ')}`);

    say('');
    say("7. The agent's change turns out to be wrong. Revert it on a branch and merge: no data copied.");
    await guard.createBranch(owner, { name: 'undo-late-events' });
    const reverted = await guard.revert(owner, { commit: mergeCommit, branch: 'undo-late-events' });
    await guard.merge(owner, { source: 'undo-late-events', into: 'main', message: 'Undo the late events' });
    say(
      `   Reverted ${short(mergeCommit)} as ${short(reverted.commit.id)}. main has ${await count('main')} events; the hotfix stays.`,
    );

    say('');
    say('8. Pipelines publish all their outputs or none. Two agents run the same two-output pipeline');
    say('   into main at once; the second one crashes between its two writes.');
    const pipelineDir = join(files, 'country-report');
    mkdirSync(pipelineDir);
    writeFileSync(
      join(pipelineDir, 'by_country.sql'),
      '-- output: report.by_country\n-- expect: not_null(country), unique(country)\n' +
        'SELECT country, count(*) AS events, round(sum(amount), 1) AS amount, $agent AS made_by\nFROM raw.events GROUP BY country\n',
    );
    writeFileSync(
      join(pipelineDir, 'top.mjs'),
      `export default {
  output: 'report.top',
  inputs: { countries: 'report.by_country' },
  expect: ['max_rows(3)'],
  run({ countries }, { params }) {
    if (params.crash === 'yes') throw new Error('agent crashed between its two writes');
    return countries.toArray().sort((a, b) => b.amount - a.amount).slice(0, 3)
      .map((r) => ({ country: r.country, amount: r.amount, made_by: params.agent }));
  },
};
`,
    );
    const agentA = await guard.authenticate(
      (await guard.createToken(owner, { person: 'dana', agent: 'agent-a' })).token,
    );
    const agentB = await guard.authenticate(
      (await guard.createToken(owner, { person: 'dana', agent: 'agent-b' })).token,
    );
    const [first, second] = await Promise.all([
      guard.runPipeline(agentA, { pipelineDir, branch: 'main', params: { agent: 'agent-a' } }),
      guard.runPipeline(agentB, { pipelineDir, branch: 'main', params: { agent: 'agent-b', crash: 'yes' } }),
    ]);
    for (const run of [first, second]) {
      const steps = run.steps.map((s) => `${s.name} ${s.status}`).join(', ');
      say(`   run ${run.runId} (${run.params.agent}): ${run.status} — ${steps}`);
    }
    if (first.status !== 'awaiting_approval' || !first.approvalId) throw new Error('the first run did not wait');
    const runApproval = await decisions.approve({ person: 'ann' }, first.approvalId);
    say(`   ann approves the first run's publish (approval ${first.approvalId}): ${runApproval.status}.`);
    const madeBy = await guard.query(owner, {
      sql: 'SELECT (SELECT min(made_by) FROM report.by_country) AS by_country, (SELECT min(made_by) FROM report.top) AS top',
      ref: 'main',
    });
    say(
      `   main shows report.by_country from ${madeBy.rows[0]?.by_country} and report.top from ${madeBy.rows[0]?.top}: both outputs of the first run, together.`,
    );
    say(
      `   The crashed run published nothing; its finished step waits on ${second.runBranch} (airlock runs show ${second.runId}).`,
    );

    const history = await guard.log(owner, { ref: 'main', limit: 10 });
    say('');
    say('   airlock log main');
    for (const c of history)
      say(
        `     ${short(c.id)}  ${c.kind.padEnd(6)}  ${c.agent ? `${c.author}/${c.agent}` : c.author}  ${c.message.split('\n')[0]}`,
      );

    say('');
    say('9. Every request above — reads, denials and approvals included — is in a tamper-evident audit trail.');
    const verified = await guard.audit.verify();
    say(
      `   airlock audit verify: ${verified.ok ? 'intact' : 'BROKEN'}, ${verified.entries} entries in one SHA-256 hash chain.`,
    );
    const why = (await guard.audit.log({ limit: 200 })).filter((e) => e.agent === 'analyst' || e.person === 'ann');
    say('   airlock audit log --actor dana/analyst (and ann), oldest first:');
    for (const e of why.reverse().slice(-8)) {
      say(`     ${e.time}  ${e.agent ? `${e.person}/${e.agent}` : e.person}  ${e.action}  ${e.target}  ${e.outcome}`);
    }
    say('');
    say(`Explore this lake yourself:  npx airlock log --lake ${dir}`);
    say(`                             npx airlock audit log --lake ${dir}`);
    say(`                             npx airlock query "SELECT * FROM raw.events LIMIT 5" --lake ${dir}`);
    return {
      value: {
        lake: dir,
        mainHead: (await lake.catalog.head('main')).commit,
        approvals: [
          { approvalId, action: 'merge', status: approved.status },
          { approvalId: first.approvalId, action: 'run', status: runApproval.status },
        ],
        runs: [first, second].map((r) => ({ runId: r.runId, status: r.status, agent: r.params.agent })),
        events: await count('main'),
        audit: { ok: verified.ok, entries: verified.entries },
        steps: [
          'import',
          'people-and-agents',
          'branch',
          'diff',
          'approval',
          'merge',
          'time-travel',
          'revert',
          'pipeline-runs',
          'audit',
        ],
      },
      text: '',
    };
  } finally {
    await lake.close();
  }
}
