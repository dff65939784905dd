import type { Command } from 'commander';
import { AuthDirectory, exportExecutor, grantExecutor, unmaskExecutor } from '../../shared/auth/index.js';
import type {
  GuardedLakeOptions,
  Person,
  Principal,
  RowFilter,
  StoredGrant,
  TokenInfo,
} from '../../shared/auth/index.js';
import { AirlockError } from '../../shared/errors/index.js';
import { type Context, act, common, list } from '../main.js';
import { textTable } from '../render.js';

/**
 * The approval gate of the guard: the lake's approvals service, which records the request
 * and notifies the lake's webhook. The guard audits the request itself (one entry per
 * request), so the service's own audit is off here. Who may approve is the guard's rule.
 */
export async function approvalGate(ctx: Context): Promise<GuardedLakeOptions> {
  const lake = await ctx.lake();
  const { openApprovals } = await import('../../shared/approvals/index.js');
  const { approvals } = openApprovals(lake, {
    audit: false,
    mayApprove: async (approver, approval) =>
      (await ctx.guard()).mayApprove(approver, approval.target, approval.action),
  });
  approvals.register('grant', grantExecutor(new AuthDirectory(lake.stores.store)));
  approvals.register('export', exportExecutor(lake));
  approvals.register('unmask', unmaskExecutor(lake));
  return { approvals };
}

function principalOf(o: Record<string, unknown>): Principal {
  if (o.user && o.role) throw new AirlockError('USAGE', 'give --user or --role, not both');
  if (o.user) return { person: o.user as string };
  if (o.role) return { role: o.role as Principal extends { role: infer R } ? R : never };
  throw new AirlockError('USAGE', 'give --user <person> or --role <role>');
}

function renderPeople(people: Person[]): string {
  return textTable(
    ['person', 'role', 'added by'],
    people.map((p) => [p.name, p.role, p.createdBy]),
  );
}

function renderTokens(tokens: TokenInfo[]): string {
  if (tokens.length === 0) return '(no tokens)';
  return textTable(
    ['id', 'person', 'agent', 'scopes', 'expires', 'state'],
    tokens.map((t) => [
      t.id,
      t.person,
      t.agent ?? '',
      t.scopes.join(' '),
      t.expires,
      t.revoked ? `revoked ${t.revoked}` : Date.parse(t.expires) <= Date.now() ? 'expired' : 'active',
    ]),
  );
}

function renderGrants(grants: StoredGrant[]): string {
  if (grants.length === 0) return '(no grants beyond roles)';
  return textTable(
    ['id', 'person', 'on', 'pattern', 'right'],
    grants.map((g) => [g.id, g.person, g.on, g.pattern, g.right]),
  );
}

function renderFilters(filters: RowFilter[]): string {
  if (filters.length === 0) return '(no row filters)';
  return textTable(
    ['table', 'for', 'where'],
    filters.map((f) => [
      f.table,
      'person' in f.principal ? `person ${f.principal.person}` : `role ${f.principal.role}`,
      f.predicate,
    ]),
  );
}

/**
 * Registers `user`, `token`, `grant` and `policy rows|masks`: people, agent tokens, grants
 * and reader policies, every one through the guard (admins change them; an admin's agent
 * needs an approval).
 */
export function registerAuthCommands(program: Command): void {
  const user = program.command('user').description('people of the lake and their roles');
  act(
    common(
      user
        .command('add <name>')
        .description('add a person (roles: reader, writer, approver, admin)')
        .option('--role <role>', 'reader | writer | approver | admin', 'reader'),
    ),
    async (ctx, [name], o) => {
      const p = await (await ctx.guard()).addUser(await ctx.actor(), { name: name as string, role: o.role as string });
      return { value: p, text: `Added ${p.name} as ${p.role}` };
    },
  );
  act(common(user.command('role <name> <role>').description("change a person's role")), async (ctx, [name, role]) => {
    const p = await (await ctx.guard()).setRole(await ctx.actor(), { name: name as string, role: role as string });
    return { value: p, text: `${p.name} is now ${p.role}` };
  });
  act(common(user.command('list').description('people and their roles')), async (ctx) => {
    const people = await (await ctx.guard()).listUsers(await ctx.actor());
    return { value: people, text: renderPeople(people) };
  });

  const token = program.command('token').description('tokens: a person, optionally an agent, scopes, expiry');
  act(
    common(
      token
        .command('create')
        .description('create a token; its secret is printed once and stored only as a SHA-256 hash')
        .option('--user <person>', 'the person the token acts for (default: yourself)')
        .option(
          '--agent <agent>',
          'an agent acting for the person (default scopes: read, write agent/<agent>/*, write run/*, run)',
        )
        .option(
          '--scope <scopes>',
          'what the token may do: read, write, merge, admin, run, unmask or *, optionally right:branch-pattern (comma-separated, repeatable)',
          list,
        )
        .option('--ttl <ttl>', 'lifetime, e.g. 30m, 12h, 7d (default 7d, at most 90d)'),
    ),
    async (ctx, _a, o) => {
      const t = await (await ctx.guard()).createToken(await ctx.actor(), {
        ...(o.user ? { person: o.user as string } : {}),
        ...(o.agent ? { agent: o.agent as string } : {}),
        ...(o.scope ? { scopes: o.scope as string[] } : {}),
        ...(o.ttl ? { ttl: o.ttl as string } : {}),
      });
      return {
        value: t,
        text: `${t.token}\n\nToken ${t.id} for ${t.person}${t.agent ? ` (agent ${t.agent})` : ''}, scopes ${t.scopes.join(' ')}, expires ${t.expires}.\nThis is the only time the secret is shown: export AIRLOCK_TOKEN=<it>.`,
      };
    },
  );
  act(common(token.command('list').description('tokens (never their secrets)')), async (ctx) => {
    const tokens = await (await ctx.guard()).listTokens(await ctx.actor());
    return { value: tokens, text: renderTokens(tokens) };
  });
  act(common(token.command('revoke <id>').description('revoke a token at once')), async (ctx, [id]) => {
    const t = await (await ctx.guard()).revokeToken(await ctx.actor(), { id: id as string });
    return { value: t, text: `Revoked token ${t.id} (${t.person}${t.agent ? `/${t.agent}` : ''})` };
  });

  const grant = program.command('grant').description('grants on branch patterns and tables, beyond roles');
  act(
    common(
      grant
        .command('add')
        .description(
          "grant a right: --branch 'feature/*' --right read|write|merge|admin, or --table 'sales.*' --right read|write|unmask",
        )
        .requiredOption('--user <person>', 'the person')
        .option('--branch <pattern>', "branch pattern ('*' matches anything)")
        .option('--table <pattern>', "table pattern, e.g. 'sales.*'")
        .requiredOption('--right <right>', 'the right'),
    ),
    async (ctx, _a, o) => {
      if (!o.branch === !o.table)
        throw new AirlockError('USAGE', 'give exactly one of --branch <pattern> or --table <pattern>');
      const g = await (await ctx.guard()).addGrant(await ctx.actor(), {
        person: o.user as string,
        grant: o.branch
          ? { on: 'branch', pattern: o.branch as string, right: o.right as 'read' }
          : { on: 'table', pattern: o.table as string, right: o.right as 'read' },
      });
      return { value: g, text: `Granted ${g.right} on ${g.on} ${g.pattern} to ${g.person} (grant ${g.id})` };
    },
  );
  act(
    common(grant.command('list').description('explicit grants').option('--user <person>', 'only this person')),
    async (ctx, _a, o) => {
      const grants = await (await ctx.guard()).listGrants(
        await ctx.actor(),
        o.user ? { person: o.user as string } : {},
      );
      return { value: grants, text: renderGrants(grants) };
    },
  );
  act(common(grant.command('remove <id>').description('remove a grant')), async (ctx, [id]) => {
    const g = await (await ctx.guard()).removeGrant(await ctx.actor(), { id: id as string });
    return { value: g, text: `Removed grant ${g.id} (${g.right} on ${g.on} ${g.pattern} of ${g.person})` };
  });

  const policy =
    program.commands.find((c) => c.name() === 'policy') ?? program.command('policy').description("the lake's policies");
  const rows = policy.command('rows').description('row filters: a SQL predicate per table for a person or role');
  act(
    common(
      rows
        .command('set <table>')
        .description('only rows matching --where are visible to the person or role (queries, HTTP, pipeline inputs)')
        .option('--user <person>', 'for this person')
        .option('--role <role>', 'for everyone holding this role')
        .requiredOption('--where <predicate>', "SQL predicate over the table's columns, e.g. \"region = 'EU'\""),
    ),
    async (ctx, [table], o) => {
      const f = await (await ctx.guard()).setRowFilter(await ctx.actor(), {
        table: table as string,
        principal: principalOf(o),
        predicate: o.where as string,
      });
      return { value: f, text: `Row filter on ${f.table}: ${f.predicate}` };
    },
  );
  act(
    common(
      rows
        .command('remove <table>')
        .description('remove a row filter')
        .option('--user <person>', 'of this person')
        .option('--role <role>', 'of this role'),
    ),
    async (ctx, [table], o) => {
      const principal = principalOf(o);
      await (await ctx.guard()).removeRowFilter(await ctx.actor(), { table: table as string, principal });
      return { value: { table, principal, removed: true }, text: `Removed the row filter on ${table}` };
    },
  );
  act(common(rows.command('list').description('row filters')), async (ctx) => {
    const filters = await (await ctx.guard()).listRowFilters(await ctx.actor());
    return { value: filters, text: renderFilters(filters) };
  });
  const masks = policy
    .command('masks')
    .description("columns tagged pii are masked for everyone without 'unmask' on the table");
  act(
    common(masks.command('set <kind>').description('hash (keyed SHA-256, joinable) or null')),
    async (ctx, [kind]) => {
      const r = await (await ctx.guard()).setMaskKind(await ctx.actor(), { kind: kind as 'hash' });
      return { value: r, text: `pii columns now read as ${r.maskKind} for people without unmask` };
    },
  );
  act(common(masks.command('show').description('how pii columns are masked')), async (ctx) => {
    const r = await (await ctx.guard()).maskKind(await ctx.actor());
    return { value: r, text: `pii columns read as ${r.maskKind} for people without unmask` };
  });
}
