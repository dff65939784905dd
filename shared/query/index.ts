/**
 * The query engine: read-only SQL over a catalog snapshot in DuckDB, with safety and
 * caps enforced by the engine, file pruning from manifest stats, streaming results and
 * per-person governance. Independent of the catalog: callers resolve a ref to
 * {@link SnapshotTable}s and hand them in.
 */
export { DEFAULT_CAPS, MAX_SQL_BYTES } from './types.js';
export { runQuery, streamQuery, estimateQuery } from './runQuery.js';
export { materializeQuery } from './materializeQuery.js';
export type { MaterializedQuery } from './materializeQuery.js';
export { formatRows, csvSink, jsonLinesSink } from './formatRows.js';
export { encodeArrowIpc, arrowIpcSink } from './arrowIpc.js';
export { QueryGovernor } from './QueryGovernor.js';
export { CapSettings, mayChangeCaps } from './CapSettings.js';
export {
  CAP_CEILINGS,
  CAP_KINDS,
  CAP_NAMES,
  checkCapValue,
  checkCaps,
  formatCapValue,
  isCapName,
  parseCapValue,
} from './capValues.js';
export { parquetFileStats } from './parquetFileStats.js';
export type {
  EngineOptions,
  MaskKind,
  QueryCaps,
  QueryColumn,
  QueryGovernorLike,
  QueryParam,
  QueryPolicy,
  QueryRequest,
  QueryResult,
  QuerySink,
  QueryStats,
  SnapshotFile,
  SnapshotTable,
} from './types.js';
export type { RowFormat } from './formatRows.js';
export type { BudgetUsage, QueryGovernorOptions, SlotLease } from './QueryGovernor.js';
export type { DataFileStats } from './parquetFileStats.js';
export type { CapScope, CapSettingsOptions, CapSource, EffectiveCaps } from './CapSettings.js';
export type { CapName } from './capValues.js';
