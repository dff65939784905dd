import type { AuditLog } from '../audit/index.js';
import type { Catalog, TableVersion } from '../catalog/index.js';
import { sqlIdent, tableRelationSql, withConnection } from '../data/index.js';
import type { CapSettings } from '../query/index.js';
import type { CatalogStore, ObjectStore } from '../store/ports.js';
import { type PiiKind, piiKindOfName, piiKindOfValues } from './piiDetection.js';

/** One item of the checklist. */
export interface DoctorCheck {
  /** Stable id, e.g. `approval-gate`. */
  id: string;
  ok: boolean;
  /** What was found, in a sentence or two. */
  message: string;
  /** A command (or commands) that fixes it, when it failed. */
  fix?: string;
}

/** The outcome of `airlock doctor`. */
export interface DoctorReport {
  ok: boolean;
  checks: DoctorCheck[];
}

/** What the doctor needs to know about people, tokens and masks (the auth module's view). */
export interface DoctorAuthView {
  people(): Promise<Array<{ name: string; role?: string }>>;
  tokens(): Promise<
    Array<{ id: string; person: string; agent?: string; scopes: string[]; expires?: string; revoked?: string }>
  >;
  /** Whether this person may approve an agent's merge into `branch`. */
  mayApprove(person: string, branch: string): Promise<boolean>;
  /** How `pii` columns are masked for those without `unmask` (`hash`, `null`), or undefined when they are not. */
  maskKind(): Promise<string | undefined>;
  /** The scopes an agent token gets when none are given. */
  defaultAgentScopes(agent: string): string[];
  /** The roles a person may hold. */
  roles: readonly string[];
}

/** Everything the checklist reads. */
export interface DoctorSources {
  catalog: Catalog;
  store: CatalogStore;
  objects: ObjectStore;
  owner: string;
  auth: DoctorAuthView;
  caps: CapSettings;
  audit: AuditLog;
  now?: () => Date;
  /** The newest anchor may be at most this old unless it anchors the head (default 24 h). */
  anchorMaxAgeMs?: number;
  /** Rows sampled per table to recognise personal data by value (default 200). */
  sampleRows?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

const pass = (id: string, message: string): DoctorCheck => ({ id, ok: true, message });
const fail = (id: string, message: string, fix: string): DoctorCheck => ({ id, ok: false, message, fix });

/** Runs a check, turning an unexpected error into a failed item (the checklist always completes). */
async function guarded(id: string, check: () => Promise<DoctorCheck>): Promise<DoctorCheck> {
  try {
    return await check();
  } catch (e) {
    return fail(id, `could not be checked: ${e instanceof Error ? e.message : String(e)}`, 'airlock doctor --json');
  }
}

/** True when an agent scope stays within "read, write its own and run branches, run pipelines". */
function readOnlyAgentScope(scope: string, agent: string): boolean {
  const [right, pattern] = scope.split(':', 2) as [string, string | undefined];
  if (right === 'read' || right === 'run') return true;
  if (right === 'write')
    return pattern === `agent/${agent}/*` || pattern === 'run/*' || pattern?.startsWith(`agent/${agent}/`) === true;
  return false;
}

async function agentsReadOnly(s: DoctorSources): Promise<DoctorCheck> {
  const id = 'agents-read-only';
  const defaults = s.auth.defaultAgentScopes('example');
  const broadDefault = defaults.filter((sc) => !readOnlyAgentScope(sc, 'example'));
  if (broadDefault.length > 0) {
    return fail(
      id,
      `the default agent scopes include ${broadDefault.join(', ')}`,
      'restore defaultAgentScopes in shared/auth',
    );
  }
  const now = (s.now ?? (() => new Date()))().toISOString();
  const live = (await s.auth.tokens()).filter((t) => t.agent && !t.revoked && (t.expires ?? '9') > now);
  const broad = live.filter((t) => t.scopes.some((sc) => !readOnlyAgentScope(sc, t.agent as string)));
  if (broad.length > 0) {
    return fail(
      id,
      `${broad.length} agent token${broad.length === 1 ? '' : 's'} can do more than read and write the agent's own branches: ${broad
        .map((t) => `${t.id} (${t.person}/${t.agent}: ${t.scopes.join(' ')})`)
        .join('; ')}`,
      broad
        .map((t) => `airlock token revoke ${t.id} && airlock token create --user ${t.person} --agent ${t.agent}`)
        .join('\n'),
    );
  }
  return pass(
    id,
    `agents get ${defaults.join(' ').replaceAll('example', '<agent>')} by default; ${live.length} live agent token${live.length === 1 ? '' : 's'}, none broader`,
  );
}

async function protectedBranches(s: DoctorSources): Promise<DoctorCheck> {
  const id = 'protected-branches';
  const { protectedBranches: list } = await s.catalog.lakeSettings();
  if (list.length === 0)
    return fail(id, 'no branch is protected: anything can be committed to main directly', 'airlock init');
  if (!(await s.catalog.isProtected('main'))) {
    return fail(id, `main is not protected (protected: ${list.join(', ')})`, 'airlock init');
  }
  return pass(id, `protected: ${list.join(', ')} (they change only by merge)`);
}

async function capsFinite(s: DoctorSources): Promise<DoctorCheck> {
  const id = 'caps-finite';
  const scopes: Array<string | undefined> = [undefined];
  let cursor: string | undefined;
  do {
    const page = await s.store.query('config', { prefix: 'caps#person#', ...(cursor ? { cursor } : {}) });
    for (const item of page.items) scopes.push(item.sk.slice('caps#person#'.length));
    cursor = page.cursor;
  } while (cursor);
  const bad: string[] = [];
  for (const person of scopes) {
    const { caps } = await s.caps.effective(person);
    for (const [name, value] of Object.entries(caps)) {
      if (!Number.isFinite(value) || value < 1) bad.push(`${person ?? 'lake'}.${name}=${value}`);
    }
  }
  if (bad.length > 0)
    return fail(id, `caps that are not finite: ${bad.join(', ')}`, 'airlock caps set --max-rows 100000');
  return pass(
    id,
    `every query cap is finite (lake-wide and ${scopes.length - 1} person override${scopes.length === 2 ? '' : 's'})`,
  );
}

async function approvalGate(s: DoctorSources): Promise<DoctorCheck> {
  const id = 'approval-gate';
  const { protectedBranches: list } = await s.catalog.lakeSettings();
  const branches = list.filter((b) => !b.endsWith('*'));
  if (branches.length === 0) return fail(id, 'no protected branch, so no merge waits for approval', 'airlock init');
  const people = [s.owner, ...(await s.auth.people()).map((p) => p.name).filter((n) => n !== s.owner)];
  const short: string[] = [];
  for (const branch of branches) {
    const approvers: string[] = [];
    for (const person of people) if (await s.auth.mayApprove(person, branch)) approvers.push(person);
    // A requester never approves their own request: with one approver, their own (and their
    // agents') requests could never be decided.
    if (approvers.length < 2) short.push(`${branch} (approvers: ${approvers.join(', ') || 'none'})`);
  }
  if (short.length > 0) {
    return fail(
      id,
      `agents' merges into protected branches wait for a person other than the requester, but these have fewer than two approvers: ${short.join('; ')}`,
      'airlock user add <name> --role approver',
    );
  }
  return pass(id, `agents' merges into ${branches.join(', ')} wait for approval, and each has at least two approvers`);
}

async function auditChain(s: DoctorSources): Promise<DoctorCheck[]> {
  const verification = await s.audit.verify();
  if (!verification.ok) {
    const { kind, seq, message } = verification.problem;
    return [
      fail('audit-chain', `the audit chain is broken at entry ${seq} (${kind}): ${message}`, 'airlock audit verify'),
      fail('audit-anchor', 'no trustworthy anchor while the chain is broken', 'airlock audit verify'),
    ];
  }
  const chain = pass('audit-chain', `the audit chain verifies: ${verification.entries} entries`);
  const head = verification.head;
  if (!head) return [chain, pass('audit-anchor', 'the audit chain is empty: nothing to anchor yet')];
  const anchor = verification.lastAnchor;
  const now = (s.now ?? (() => new Date()))().getTime();
  const maxAge = s.anchorMaxAgeMs ?? DAY_MS;
  const fix = 'airlock audit anchor   # and run it on a schedule (e.g. hourly)';
  if (!anchor) return [chain, fail('audit-anchor', `${head.seq} audit entries and no anchor yet`, fix)];
  if (anchor.seq !== head.seq && now - Date.parse(anchor.time) > maxAge) {
    return [
      chain,
      fail(
        'audit-anchor',
        `the newest anchor (entry ${anchor.seq}, ${anchor.time}) is older than ${Math.round(maxAge / 3_600_000)} h and ${head.seq - anchor.seq} entries are not anchored`,
        fix,
      ),
    ];
  }
  return [chain, pass('audit-anchor', `anchored at entry ${anchor.seq} of ${head.seq} (${anchor.time})`)];
}

/** A column that looks like personal data, and how that was recognised. */
interface PiiFinding {
  table: string;
  column: string;
  kind: PiiKind;
  by: 'name' | 'values';
  tagged: boolean;
}

async function sampleStrings(
  s: DoctorSources,
  version: TableVersion,
  columns: string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (columns.length === 0 || version.files.length === 0) return out;
  const paths = await Promise.all(version.files.map((f) => s.objects.localPath(f.key)));
  const relation = tableRelationSql(version, paths);
  const select = columns.map((c) => sqlIdent(c)).join(', ');
  const sampled = await withConnection(async (connection) => {
    const reader = await connection.runAndReadAll(`SELECT ${select} FROM (${relation}) LIMIT ${s.sampleRows ?? 200}`);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  });
  for (const c of columns) {
    out.set(
      c,
      sampled.map((r) => r[c]).filter((v): v is string => typeof v === 'string'),
    );
  }
  return out;
}

async function piiFindings(s: DoctorSources): Promise<PiiFinding[]> {
  const { protectedBranches: list } = await s.catalog.lakeSettings();
  const branches = (await s.catalog.listBranches()).filter((b) => b.protected || list.includes(b.name));
  const seen = new Set<string>();
  const findings: PiiFinding[] = [];
  for (const branch of branches) {
    const snapshot = await s.catalog.snapshot(branch.name);
    for (const [table, { id, version }] of snapshot.tables) {
      if (seen.has(id)) continue;
      seen.add(id);
      const byName = new Map<string, PiiKind>();
      for (const f of version.schema.fields) {
        const kind = piiKindOfName(f.name);
        if (kind) byName.set(f.name, kind);
      }
      const untaggedText = version.schema.fields
        .filter((f) => f.type === 'Utf8' && !byName.has(f.name))
        .map((f) => f.name);
      const samples = await sampleStrings(s, version, untaggedText);
      for (const f of version.schema.fields) {
        const tagged = f.tags.includes('pii');
        const nameKind = byName.get(f.name);
        const valueKind = nameKind ? undefined : piiKindOfValues(samples.get(f.name) ?? []);
        const kind = nameKind ?? valueKind;
        if (kind) findings.push({ table, column: f.name, kind, by: nameKind ? 'name' : 'values', tagged });
      }
    }
  }
  return findings;
}

async function piiTaggedAndMasked(s: DoctorSources): Promise<DoctorCheck> {
  const id = 'pii-tagged';
  const findings = await piiFindings(s);
  const untagged = findings.filter((f) => !f.tagged);
  if (untagged.length > 0) {
    return fail(
      id,
      `columns that look like personal data are not tagged pii (so not masked): ${untagged
        .map((f) => `${f.table}.${f.column} (${f.kind}, by ${f.by})`)
        .join(', ')}`,
      [...new Set(untagged.map((f) => f.table))]
        .map(
          (t) =>
            `airlock branch create fix/pii --from main && airlock table tag ${t} ${untagged
              .filter((f) => f.table === t)
              .map((f) => f.column)
              .join(',')} pii --branch fix/pii && airlock merge fix/pii --into main`,
        )
        .join('\n'),
    );
  }
  const mask = await s.auth.maskKind();
  if (findings.length > 0 && mask !== 'hash' && mask !== 'null') {
    return fail(id, `pii columns are tagged but not masked (mask: ${mask ?? 'none'})`, 'airlock policy masks set hash');
  }
  return pass(
    id,
    findings.length === 0
      ? 'no column looks like personal data (by name or by sampled values)'
      : `${findings.length} column${findings.length === 1 ? '' : 's'} that look like personal data ${findings.length === 1 ? 'is' : 'are'} tagged pii and masked (${mask}) for anyone without unmask`,
  );
}

async function tokenExpiry(s: DoctorSources): Promise<DoctorCheck> {
  const id = 'token-expiry';
  const live = (await s.auth.tokens()).filter((t) => !t.revoked);
  const endless = live.filter((t) => !t.expires || Number.isNaN(Date.parse(t.expires)));
  if (endless.length > 0) {
    return fail(
      id,
      `token${endless.length === 1 ? '' : 's'} without an expiry: ${endless.map((t) => `${t.id} (${t.person}${t.agent ? `/${t.agent}` : ''})`).join(', ')}`,
      endless.map((t) => `airlock token revoke ${t.id}`).join('\n'),
    );
  }
  return pass(id, `every one of ${live.length} unrevoked token${live.length === 1 ? '' : 's'} expires`);
}

async function personRole(s: DoctorSources): Promise<DoctorCheck> {
  const id = 'person-role';
  const people = await s.auth.people();
  const roleless = people.filter((p) => !p.role || !s.auth.roles.includes(p.role));
  if (roleless.length > 0) {
    return fail(
      id,
      `people without a role: ${roleless.map((p) => p.name).join(', ')}`,
      roleless.map((p) => `airlock user role ${p.name} reader`).join('\n'),
    );
  }
  return pass(id, `every one of ${people.length} ${people.length === 1 ? 'person has' : 'people has'} a role`);
}

/**
 * The pre-launch safety checklist (issue 6, point 5): each item passes or fails with what
 * was found and, when it fails, a command that fixes it. Every item is checked even when
 * others fail or cannot be read; `ok` is true only when all pass.
 */
export async function runDoctor(sources: DoctorSources): Promise<DoctorReport> {
  const checks = [
    await guarded('agents-read-only', () => agentsReadOnly(sources)),
    await guarded('protected-branches', () => protectedBranches(sources)),
    await guarded('caps-finite', () => capsFinite(sources)),
    await guarded('approval-gate', () => approvalGate(sources)),
    ...(await auditChain(sources).catch((e) => [
      fail(
        'audit-chain',
        `could not be checked: ${e instanceof Error ? e.message : String(e)}`,
        'airlock audit verify',
      ),
    ])),
    await guarded('pii-tagged', () => piiTaggedAndMasked(sources)),
    await guarded('token-expiry', () => tokenExpiry(sources)),
    await guarded('person-role', () => personRole(sources)),
  ];
  return { ok: checks.every((c) => c.ok), checks };
}
