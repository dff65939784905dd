import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Actor } from '../shared/catalog/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { lakeLocation } from '../shared/lake/openLake.js';
import { PipelineRunner } from '../shared/pipeline/run/index.js';
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
    const owner: Actor = { person: lake.owner };
    const agent: Actor = { person: lake.owner, agent: 'analyst' };
    const count = async (ref: string) =>
      Number((await lake.query(owner, { sql: 'SELECT count(*) AS n FROM raw.events', ref })).rows[0]?.n);

    say(`Airlock demo — a fresh lake at ${dir}`);
    say('');
    say('1. The lake starts with one branch, main. It is protected: it changes only by merge.');
    await lake.catalog.createBranch('ingest', 'main', owner);
    writeFileSync(join(files, 'events.csv'), eventsCsv(1, 2000));
    const imported = await lake.importTable(owner, {
      table: 'raw.events',
      file: join(files, 'events.csv'),
      branch: 'ingest',
      notNull: ['id'],
      unique: ['id'],
      tags: { email: ['pii'] },
    });
    say(
      `   On branch 'ingest' we import events.csv: ${imported.rows} rows into raw.events (id unique, email tagged pii).`,
    );
    const ff = await lake.catalog.merge('ingest', 'main', { actor: owner, message: 'Publish raw events' });
    say(
      `   Merging 'ingest' into main fast-forwards it to ${short(ff.sourceCommit)}: one atomic step, no data copied.`,
    );
    const published = new Date().toISOString();

    say('');
    say(`2. An agent ('analyst', acting for ${owner.person}) works on its own branch. Branching is O(1).`);
    const agentBranch = 'agent/analyst/late-events';
    await lake.catalog.createBranch(agentBranch, 'main', agent);
    writeFileSync(join(files, 'late.csv'), eventsCsv(2001, 500));
    await lake.importTable(agent, { table: 'raw.events', file: join(files, 'late.csv'), branch: agentBranch });
    await lake.addColumn(agent, { table: 'raw.events', branch: agentBranch, column: 'channel', type: 'Utf8' });
    say(`   It appends 500 late events and adds a nullable column 'channel'. Nobody else sees this yet:`);
    say(`   main has ${await count('main')} events, '${agentBranch}' has ${await count(agentBranch)}.`);
    say('   airlock diff main ' + agentBranch);
    for (const line of renderDiff(await lake.catalog.diff('main', agentBranch)).split('\n')) say(`     ${line}`);

    say('');
    say('3. Meanwhile a person appends a hotfix batch to main through another branch.');
    await lake.catalog.createBranch('hotfix', 'main', owner);
    writeFileSync(join(files, 'hotfix.csv'), eventsCsv(5001, 100));
    await lake.importTable(owner, { table: 'raw.events', file: join(files, 'hotfix.csv'), branch: 'hotfix' });
    await lake.catalog.merge('hotfix', 'main', { actor: owner, message: 'Hotfix batch' });
    say(`   main now has ${await count('main')} events.`);
    const plan = await lake.catalog.merge(agentBranch, 'main', { actor: owner, message: 'x', dryRun: true });
    say(`   The agent's merge, dry run: ${plan.status} — both sides only appended, so their files are unioned.`);
    const merged = await lake.catalog.merge(agentBranch, 'main', {
      actor: owner,
      message: `Merge ${agentBranch}: late events + channel column`,
    });
    say(`   Merged as ${short(merged.commit)} in one conditional transaction. main has ${await count('main')} events.`);

    say('');
    say('4. Time travel: every ref is queryable as it was.');
    say(`   SELECT count(*) FROM raw.events --ref main@${published}  →  ${await count(`main@${published}`)}`);
    say(`   SELECT count(*) FROM raw.events --ref main~1                   →  ${await count('main~1')}`);
    const byCountry = await lake.query(owner, {
      sql: 'SELECT country, count(*) AS events, round(sum(amount), 1) AS amount FROM raw.events GROUP BY country ORDER BY country',
      ref: 'main',
    });
    say(`   By country on main: ${byCountry.rows.map((r) => `${r.country} ${r.events}`).join(', ')}`);

    say('');
    say("5. The agent's change turns out to be wrong. Revert it: a new commit, no data copied.");
    const reverted = await lake.catalog.revert(merged.commit as string, 'main', { actor: owner });
    say(
      `   Reverted ${short(merged.commit)} as ${short(reverted.commit.id)}. main has ${await count('main')} events; the hotfix stays.`,
    );
    say('');
    say('6. Pipelines publish all their outputs or none. Two agents run the same two-output pipeline at once;');
    say('   the second one crashes between its two writes.');
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
    const runner = new PipelineRunner({
      catalog: lake.catalog,
      store: lake.stores.store,
      objects: lake.stores.objects,
      stagingDir: lake.stores.stagingDir,
    });
    const [first, second] = await Promise.all([
      runner.start(
        { person: owner.person, agent: 'agent-a' },
        { pipelineDir, branch: 'main', params: { agent: 'agent-a' } },
      ),
      runner.start(
        { person: owner.person, agent: 'agent-b' },
        { pipelineDir, branch: 'main', params: { agent: 'agent-b', crash: 'yes' } },
      ),
    ]);
    for (const run of [first, second]) {
      const steps = run.steps.map((s) => `${s.name} ${s.status}`).join(', ');
      say(`   run ${run.runId} (${run.params.agent}): ${run.status} — ${steps}`);
    }
    const madeBy = await lake.query(owner, {
      sql: 'SELECT (SELECT min(made_by) FROM report.by_country) AS by_country, (SELECT min(made_by) FROM report.top) AS top',
      ref: 'main',
    });
    say(
      `   main shows report.by_country from ${madeBy.rows[0]?.by_country} and report.top from ${madeBy.rows[0]?.top}: both outputs of the first run, together.`,
    );
    say(
      `   The crashed run published nothing; its finished step waits on ${second.runBranch} (airlock runs show ${second.runId}).`,
    );

    const history = await lake.catalog.history('main', 10);
    say('');
    say('   airlock log main');
    for (const c of history)
      say(`     ${short(c.id)}  ${c.kind.padEnd(6)}  ${c.agent ? `${c.author}/${c.agent}` : c.author}  ${c.message}`);
    say('');
    say(`Explore this lake yourself:  npx airlock log --lake ${dir}`);
    say(`                             npx airlock query "SELECT * FROM raw.events LIMIT 5" --lake ${dir}`);
    return {
      value: {
        lake: dir,
        mainHead: (await lake.catalog.head('main')).commit,
        runs: [first, second].map((r) => ({ runId: r.runId, status: r.status, agent: r.params.agent })),
        events: await count('main'),
        steps: ['import', 'branch', 'diff', 'merge', 'time-travel', 'revert', 'pipeline-runs'],
      },
      text: '',
    };
  } finally {
    await lake.close();
  }
}
