import { describe, expect, it } from 'vitest';
import type { TableSchema, TableVersion } from '../shared/catalog/index.js';
import { append, alice, idSchema, memoryCatalog } from './support/catalogFixtures.js';

const withChannel: TableSchema = {
  fields: [...idSchema.fields, { name: 'channel', type: 'Utf8', nullable: true, tags: [] }],
};

/** Puts a new schema on a table (what `table add-column` commits). */
async function evolve(
  catalog: Awaited<ReturnType<typeof memoryCatalog>>['catalog'],
  branch: string,
  schema: TableSchema,
) {
  const { id, version } = await catalog.getTable(branch, 'raw.events');
  const next: Omit<TableVersion, 'parent' | 'table'> = { ...version, schema, op: 'schema' };
  await catalog.commit(branch, [{ kind: 'put', table: 'raw.events', base: id, version: next }], {
    actor: alice,
    message: 'evolve',
  });
}

describe('merging appends across schema evolution', () => {
  it('unions appends when one side only added nullable columns; the union has the wider schema', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('dev', 'main', alice);
    await catalog.commit('dev', [append('raw.events', 10)], { actor: alice, message: 'base' });
    await catalog.createBranch('agent', 'dev', alice);
    await catalog.commit('agent', [append('raw.events', 5)], { actor: alice, message: 'late' });
    await evolve(catalog, 'agent', withChannel);
    await catalog.commit('dev', [append('raw.events', 3)], { actor: alice, message: 'hotfix' });

    const merged = await catalog.merge('agent', 'dev', { actor: alice, message: 'merge' });
    expect(merged.status).toBe('merged');
    const { version } = await catalog.getTable('dev', 'raw.events');
    expect(version.rowCount).toBe(18);
    expect(version.schema).toEqual(withChannel);
  });

  it('conflicts when the sides evolved the schema differently, or one side dropped a column', async () => {
    const { catalog } = await memoryCatalog();
    await catalog.createBranch('dev', 'main', alice);
    await catalog.commit('dev', [append('raw.events', 10)], { actor: alice, message: 'base' });
    await catalog.createBranch('a', 'dev', alice);
    await catalog.createBranch('b', 'dev', alice);
    await catalog.commit('a', [append('raw.events', 1)], { actor: alice, message: 'a' });
    await evolve(catalog, 'a', withChannel);
    await catalog.commit('b', [append('raw.events', 1)], { actor: alice, message: 'b' });
    await evolve(catalog, 'b', {
      fields: [...idSchema.fields, { name: 'region', type: 'Utf8', nullable: true, tags: [] }],
    });
    const plan = await catalog.merge('a', 'b', { actor: alice, message: 'x', dryRun: true });
    expect(plan.status).toBe('conflict');
    expect(plan.conflicts[0]?.reason).toMatch(/only added nullable columns merge/);

    await catalog.createBranch('c', 'dev', alice);
    await catalog.commit('c', [append('raw.events', 1)], { actor: alice, message: 'c' });
    await evolve(catalog, 'c', { fields: [idSchema.fields[0] as TableSchema['fields'][number]] });
    const dropped = await catalog.merge('c', 'a', { actor: alice, message: 'x', dryRun: true });
    expect(dropped.status).toBe('conflict');
  });
});
