import { invalid, isAirlockError, limitExceeded } from '../errors/index.js';
import { checkBytes, checkCaps, plan, prepareSelect, withPaths } from './runQuery.js';
import { openSnapshotDatabase } from './snapshotDatabase.js';
import { quoteString } from './sqlText.js';
import type { QueryRequest, QueryStats } from './types.js';

/** What {@link materializeQuery} wrote. */
export interface MaterializedQuery {
  /** Rows written to the Parquet file. */
  rows: number;
  stats: Omit<QueryStats, 'rowsReturned' | 'truncated'>;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Runs one read-only SELECT over a snapshot and writes its whole result to a Parquet
 * file, for pipeline steps (whose results become tables, so `caps.maxRows` does not
 * apply). The file is a staging file, written uncompressed (cheapest to write and read
 * back; the lake's own files are rewritten compressed on commit). Every guarantee of `runQuery` holds: the SQL is checked to be exactly one
 * SELECT that reads only snapshot tables, parameters are bound by the engine, bytes are
 * capped from manifest stats before anything runs, the timeout interrupts. The only file
 * the locked-down engine may write is `outPath`, and only the wrapper statement built
 * here writes it.
 *
 * @example
 * await materializeQuery({ sql: 'SELECT id FROM raw.events WHERE id % 5 = 0', tables, caps }, '/staging/out.parquet');
 */
export async function materializeQuery(req: QueryRequest, outPath: string): Promise<MaterializedQuery> {
  const started = performance.now();
  checkCaps(req);
  const p = await plan(req);
  checkBytes(req, p);
  const admission = req.governance
    ? await req.governance.governor.admit(req.governance.person, req.caps, p.stats.bytesScanned)
    : undefined;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const db = await openSnapshotDatabase(await withPaths(p.views, req.resolvePath), {
    ...req.engine,
    maskKey: req.policy?.maskKey,
    writablePaths: [outPath],
  }).catch(async (e) => {
    await admission?.release();
    throw e;
  });
  const timeoutError = () =>
    limitExceeded(
      `query timeout exceeded: interrupted after ${Math.round(performance.now() - started)} ms, cap timeoutMs=${req.caps.timeoutMs}`,
      { cap: 'timeoutMs', limit: req.caps.timeoutMs },
    );
  try {
    const { connection } = db;
    timer = setTimeout(
      () => {
        timedOut = true;
        connection.interrupt();
      },
      Math.max(1, req.caps.timeoutMs - (performance.now() - started)),
    );
    const { values } = await prepareSelect(connection, req);
    // The text was just proven to be one complete SELECT; the newline ends any trailing comment.
    const copy = await connection.prepare(
      `COPY (${req.sql.replace(/;\s*$/, '')}\n) TO ${quoteString(outPath)} (FORMAT parquet, COMPRESSION uncompressed)`,
    );
    if (copy.parameterCount > 0) copy.bind(values);
    const result = await copy.runAndReadAll();
    if (timedOut) throw timeoutError();
    const written = result.getRows()[0]?.[0];
    return {
      rows: Number(written ?? 0),
      stats: { ...p.stats, elapsedMs: Math.round(performance.now() - started) },
    };
  } catch (e) {
    if (timedOut && !(isAirlockError(e) && e.code !== 'INVALID')) throw timeoutError();
    if (isAirlockError(e)) throw e;
    throw invalid(`the query failed: ${message(e)}`, undefined, e);
  } finally {
    if (timer) clearTimeout(timer);
    await db.close();
    await admission?.release();
  }
}
