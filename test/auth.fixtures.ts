import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Approvals, openApprovals } from '../shared/approvals/index.js';
import { type AuthActor, exportExecutor, GuardedLake, grantExecutor, unmaskExecutor } from '../shared/auth/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { tempDir } from './support/cli.js';

/** A fresh embedded lake with its guard wired to the real approvals service. */
export async function guardedLake(
  prefix: string,
): Promise<{ lake: Lake; guard: GuardedLake; dir: string; approvals: Approvals }> {
  const dir = tempDir(prefix);
  const { lake } = await Lake.init({ backend: 'local', dir: join(dir, 'lake') });
  const { approvals } = openApprovals(lake, {
    audit: false,
    mayApprove: (approver, approval) => guard.mayApprove(approver, approval.target, approval.action),
  });
  const guard: GuardedLake = new GuardedLake(lake, { approvals });
  approvals.register('grant', grantExecutor(guard.directory));
  approvals.register('export', exportExecutor(lake));
  approvals.register('unmask', unmaskExecutor(lake));
  return { lake, guard, dir, approvals };
}

/** Writes a CSV file and returns its path. */
export function csvFile(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** People of every role, and agents of a writer and an admin, as tokens would make them. */
export async function castOfActors(guard: GuardedLake): Promise<Record<string, AuthActor>> {
  const owner = guard.owner;
  for (const [name, role] of [
    ['rita', 'reader'],
    ['walt', 'writer'],
    ['april', 'approver'],
    ['ada', 'admin'],
  ] as const) {
    await guard.addUser(owner, { name, role });
  }
  const fromToken = async (person: string, agent?: string) =>
    guard.authenticate((await guard.createToken(owner, { person, ...(agent ? { agent } : {}) })).token);
  return {
    owner,
    reader: await fromToken('rita'),
    writer: await fromToken('walt'),
    approver: await fromToken('april'),
    admin: await fromToken('ada'),
    'agent of writer': await fromToken('walt', 'wbot'),
    'agent of admin': await fromToken('ada', 'abot'),
  };
}
