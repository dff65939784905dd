import type { Command } from 'commander';
import { AirlockError } from '../../shared/errors/index.js';
import type { IngestionRecord, IngestionStatus, LandingPoller } from '../../shared/ingest/index.js';
import type { Lake } from '../../shared/lake/Lake.js';
import type { CommandWiring } from './caps.js';
import { short, textTable } from '../render.js';

/** Ingestion is loaded only when an ingest command runs (or `serve` starts the poller). */
const ingest = () => import('../../shared/ingest/index.js');

const STATUSES: IngestionStatus[] = ['merged', 'awaiting_approval', 'failed', 'refused', 'skipped'];

function renderRecords(records: IngestionRecord[]): string {
  if (records.length === 0) return 'No ingestions yet.';
  return textTable(
    ['ID', 'STATUS', 'TABLE', 'ROWS', 'KEY', 'FINISHED', 'NOTE'],
    records.map((r) => [
      r.id,
      r.status,
      r.table ?? '',
      r.rows ?? '',
      r.key,
      r.finished,
      r.error?.message ?? (r.approvalId ? `approval ${r.approvalId}` : r.commit ? `commit ${short(r.commit)}` : ''),
    ]),
  );
}

/**
 * `airlock ingest list [--status S] [--limit N]` and `airlock ingest show <id>`: what
 * S3-upload ingestion did (the Lambda on AWS, the `serve` poller locally), newest first.
 */
export function registerIngestCommands(program: Command, { act, common }: CommandWiring): void {
  const group = program
    .command('ingest')
    .description('uploads to landing/<namespace>/<table>/ and what became of them');
  act(
    common(
      group
        .command('list')
        .description('recorded ingestions, newest first')
        .option('--status <status>', `only this status (${STATUSES.join(', ')})`)
        .option('--limit <n>', 'at most this many (default 50)'),
    ),
    async (ctx, _args, o) => {
      const status = o.status as string | undefined;
      if (status !== undefined && !STATUSES.includes(status as IngestionStatus)) {
        throw new AirlockError('USAGE', `--status must be one of ${STATUSES.join(', ')}, got '${status}'`);
      }
      const limitText = (o.limit as string | undefined) ?? '50';
      const limit = Number(limitText);
      if (!/^\d+$/.test(limitText) || limit < 1) {
        throw new AirlockError('USAGE', `--limit must be a whole number ≥ 1, got '${limitText}'`);
      }
      const { IngestionLog } = await ingest();
      const records = await new IngestionLog((await ctx.lake()).stores.store).list({
        limit,
        ...(status ? { status: status as IngestionStatus } : {}),
      });
      return { value: records, text: renderRecords(records) };
    },
  );
  act(
    common(group.command('show').argument('<id>', 'ingestion id').description('one ingestion, with its error if any')),
    async (ctx, args) => {
      const id = args[0] as string;
      const { IngestionLog } = await ingest();
      const record = await new IngestionLog((await ctx.lake()).stores.store).get(id);
      if (!record) throw new AirlockError('NOT_FOUND', `no ingestion '${id}' (see airlock ingest list)`);
      return { value: record, text: JSON.stringify(record, null, 2) };
    },
  );
}

/**
 * What `airlock serve` runs beside the HTTP API on an S3-backed lake: a poller that
 * lists `landing/` (every `AIRLOCK_INGEST_POLL_MS`, default 2000; `0` turns it off) and
 * ingests new uploads exactly as the `ingest` Lambda does. s3rver emits upload events only
 * to a listener in its own process, so polling is how a separate `serve` sees uploads.
 * Returns undefined on an embedded lake (no bucket) or when turned off.
 */
export async function startServeIngestion(
  lake: Lake,
  note: (message: string) => void,
): Promise<LandingPoller | undefined> {
  const { location } = lake.stores;
  if (location.backend !== 'aws') return undefined;
  const { ingestConfigFromEnv, startLandingPoller } = await ingest();
  const config = ingestConfigFromEnv();
  if (config.pollMs === 0) return undefined;
  const [{ S3LandingSource, listLanding }, { createS3Client }] = await Promise.all([
    import('../../shared/ingest/S3LandingSource.js'),
    import('../../shared/store/S3ObjectStore.js'),
  ]);
  const client = createS3Client();
  note(
    `Ingesting uploads to s3://${location.bucket}/landing/<namespace>/<table>/ into ${config.target} as ${config.person}`,
  );
  return startLandingPoller(lake, {
    source: new S3LandingSource(client),
    list: () => listLanding(client, location.bucket),
    target: config.target,
    gate: config.gate,
    actor: { person: config.person },
    intervalMs: config.pollMs,
    onOutcome: ({ record }) =>
      note(`ingest ${record.id}: ${record.key} → ${record.status}${record.error ? ` (${record.error.message})` : ''}`),
    onError: (error) => note(`ingest: ${error instanceof Error ? error.message : String(error)}`),
  });
}
