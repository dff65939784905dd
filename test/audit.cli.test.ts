import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_PARTITION, AuditLog, auditSeqKey } from '../shared/audit/index.js';
import { Lake } from '../shared/lake/Lake.js';
import { airlock, tempDir } from './support/cli.js';

describe('airlock audit (CLI)', { timeout: 240_000 }, () => {
  it('verify passes on an intact chain, log answers who did what, and verify exits 1 naming an altered entry', async () => {
    const dir = join(tempDir('airlock-audit-cli-'), 'lake');
    expect((await airlock(['init', '--lake', dir])).code).toBe(0);
    const lake = await Lake.open({ backend: 'local', dir });
    try {
      const audit = new AuditLog(lake.stores.store, lake.stores.objects);
      for (let i = 0; i < 5; i++) {
        await audit.append({
          person: 'alice',
          ...(i % 2 ? { agent: 'bot' } : {}),
          action: 'query',
          target: 'main',
          outcome: 'ok',
          request: { sql: `SELECT * FROM raw.events WHERE email = 'a${i}@x.com'` },
          details: { sql: `SELECT * FROM raw.events WHERE email = 'a${i}@x.com'` },
        });
      }
    } finally {
      await lake.close();
    }
    const ok = await airlock(['audit', 'verify', '--json', '--lake', dir]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json).toMatchObject({ ok: true, entries: 5 });
    const log = await airlock(['audit', 'log', '--actor', 'alice/bot', '--json', '--lake', dir]);
    expect(log.json.map((e: { seq: number }) => e.seq)).toEqual([4, 2]);
    expect(JSON.stringify(log.json)).not.toContain('@x.com');

    const again = await Lake.open({ backend: 'local', dir });
    try {
      const key = { pk: AUDIT_PARTITION, sk: auditSeqKey(3) };
      const item = await again.stores.store.get(key);
      await again.stores.store.put({
        ...key,
        ...(item?.t ? { t: item.t } : {}),
        data: { ...item?.data, target: 'elsewhere' },
      });
    } finally {
      await again.close();
    }
    const broken = await airlock(['audit', 'verify', '--lake', dir]);
    expect(broken.code).toBe(1);
    expect(broken.stdout + broken.stderr).toMatch(/entry 3 .*altered|altered.*entry 3/);
  });
});
