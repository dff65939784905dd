/**
 * Storage: the two ports ({@link CatalogStore}, {@link ObjectStore}) and their adapters.
 * Domain code imports the ports and receives an adapter; only composition roots (CLI,
 * Lambda handlers, tests) pick one.
 */
export { MAX_TRANSACTION_ITEMS } from './ports.js';
export { conditionHolds, MemoryCatalogStore, selectRange } from './MemoryCatalogStore.js';
export { openSqliteCatalogStore, SQLITE_SCHEMA_VERSION, SqliteCatalogStore } from './SqliteCatalogStore.js';
export {
  createDynamoDbClient,
  DYNAMO_TIME_INDEX,
  DynamoCatalogStore,
  dynamoRequestToken,
  ensureDynamoTable,
  openDynamoCatalogStore,
} from './DynamoCatalogStore.js';
export { LocalObjectStore, openLocalObjectStore } from './LocalObjectStore.js';
export { MemoryObjectStore } from './MemoryObjectStore.js';
export { createS3Client, ensureBucket, openS3ObjectStore, S3ObjectStore, SHA256_METADATA } from './S3ObjectStore.js';
export { assertItem, itemSizeBytes, MAX_ITEM_BYTES } from './itemRules.js';
export { assertObjectKey } from './objectKeys.js';
export { DEFAULT_QUERY_LIMIT } from './ranges.js';
export { backoffDelay, classifyAwsError, DEFAULT_RETRY_POLICY, withRetry } from './retry.js';

export type {
  CatalogItem,
  CatalogStore,
  Condition,
  ItemKey,
  ObjectInfo,
  ObjectStore,
  QueryOptions,
  QueryPage,
  WriteOp,
} from './ports.js';
export type { SqliteCatalogStoreOptions } from './SqliteCatalogStore.js';
export type { DynamoCatalogStoreOptions } from './DynamoCatalogStore.js';
export type { S3ObjectStoreOptions } from './S3ObjectStore.js';
export type { AwsFailureKind, RetryOptions, RetryPolicy, Sleep } from './retry.js';
