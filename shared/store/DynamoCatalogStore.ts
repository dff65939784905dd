import { createHash, randomUUID } from 'node:crypto';
import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  type CancellationReason,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  type TableDescription,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { AirlockError, conflict, invalid, isAirlockError, notFound } from '../errors/index.js';
import { assertItem, assertTransaction, keyOfOp } from './itemRules.js';
import type { CatalogItem, CatalogStore, Condition, ItemKey, QueryOptions, QueryPage, WriteOp } from './ports.js';
import { type Bound, decodeCursor, encodeCursor, pageLimit, resolveRange } from './ranges.js';
import {
  type AwsFailureKind,
  backoffDelay,
  classifyAwsError,
  DEFAULT_RETRY_POLICY,
  type RetryExhausted,
  type RetryPolicy,
  realSleep,
  type Sleep,
  withRetry,
} from './retry.js';

/** The name of the Local Secondary Index on `(pk, t)` that serves `index: 'time'`. */
export const DYNAMO_TIME_INDEX = 'byTime';

type Raw = Record<string, AttributeValue>;

/** Options of {@link openDynamoCatalogStore}. */
export interface DynamoCatalogStoreOptions {
  /** The single table (see {@link ensureDynamoTable}). */
  tableName: string;
  /**
   * A client to use. Configure it with `maxAttempts: 1` so this adapter's retry policy is
   * the only retry layer; the default client ({@link createDynamoDbClient}) does.
   */
  client?: DynamoDBClient;
  /** Retry policy for throttling, transaction conflicts and ambiguous outcomes. */
  retry?: RetryPolicy;
  /** Injected clock, for tests. */
  sleep?: Sleep;
  /** Injected randomness for the jitter, for tests. */
  random?: () => number;
}

/**
 * A DynamoDB client configured for the adapters: the SDK's own retries off (`maxAttempts:
 * 1`; {@link DynamoCatalogStore} retries, knowing which requests are safe to resend),
 * request timeouts so a hung connection becomes an ambiguous outcome instead of a hang,
 * and the SDK's standard configuration otherwise — including `AWS_ENDPOINT_URL_DYNAMODB`
 * for DynamoDB Local. When an endpoint is set but no region, the region defaults to
 * `us-east-1` (emulators ignore it).
 */
export function createDynamoDbClient(config: DynamoDBClientConfig = {}): DynamoDBClient {
  const endpointSet = Boolean(process.env.AWS_ENDPOINT_URL_DYNAMODB ?? process.env.AWS_ENDPOINT_URL ?? config.endpoint);
  const regionSet = Boolean(process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? config.region);
  return new DynamoDBClient({
    maxAttempts: 1,
    requestHandler: { requestTimeout: 15_000, connectionTimeout: 5_000 },
    ...(endpointSet && !regionSet ? { region: 'us-east-1' } : {}),
    ...config,
  });
}

function marshal(item: CatalogItem): Raw {
  const raw: Raw = { pk: { S: item.pk }, sk: { S: item.sk }, d: { S: JSON.stringify(item.data) } };
  if (item.t !== undefined) raw.t = { S: item.t };
  if (item.v !== undefined) raw.v = { N: String(item.v) };
  return raw;
}

function unmarshal(raw: Raw): CatalogItem {
  const item: CatalogItem = {
    pk: raw.pk?.S ?? '',
    sk: raw.sk?.S ?? '',
    data: JSON.parse(raw.d?.S ?? '{}') as Record<string, unknown>,
  };
  if (raw.t?.S !== undefined) item.t = raw.t.S;
  if (raw.v?.N !== undefined) item.v = Number(raw.v.N);
  return item;
}

function keyOf(key: ItemKey): Raw {
  return { pk: { S: key.pk }, sk: { S: key.sk } };
}

function sameStored(a: Raw | undefined, b: Raw): boolean {
  return a !== undefined && a.d?.S === b.d?.S && a.t?.S === b.t?.S && a.v?.N === b.v?.N;
}

interface ConditionParts {
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Raw;
}

/**
 * The condition of a write, as DynamoDB evaluates it atomically with the write.
 * - `absent` → `attribute_not_exists(pk)`: two writers racing to append sequence number N
 *   both send this; DynamoDB serialises writes per item, so exactly one sees "absent" and
 *   writes, the other gets `ConditionalCheckFailedException` (never a silent overwrite).
 * - `exists` → `attribute_exists(pk)`: an update never resurrects an item deleted meanwhile.
 * - `version` → `v = :v`: compare-and-set; a writer that read version 7 cannot overwrite
 *   version 8 written by someone else after its read (lost update).
 */
function conditionParts(condition: Condition | undefined): ConditionParts {
  if (!condition) return {};
  switch (condition.kind) {
    case 'absent':
      return { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': 'pk' } };
    case 'exists':
      return { ConditionExpression: 'attribute_exists(#pk)', ExpressionAttributeNames: { '#pk': 'pk' } };
    case 'version':
      return {
        ConditionExpression: '#v = :v',
        ExpressionAttributeNames: { '#v': 'v' },
        ExpressionAttributeValues: { ':v': { N: String(condition.v) } },
      };
  }
}

function describeCondition(condition: Condition | undefined): string {
  if (!condition) return 'none';
  return condition.kind === 'version' ? `version = ${condition.v}` : condition.kind;
}

function errorName(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : '';
}

function reasonsOf(error: unknown): CancellationReason[] {
  const reasons = (error as { CancellationReasons?: unknown } | null)?.CancellationReasons;
  return Array.isArray(reasons) ? (reasons as CancellationReason[]) : [];
}

const THROTTLE_REASONS = new Set(['ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);

/** How a failure may be retried; a cancelled transaction is retryable only for transient reasons. */
function failureKind(error: unknown): AwsFailureKind {
  if (isAirlockError(error)) return 'fatal';
  if (errorName(error) === 'TransactionCanceledException') {
    const codes = reasonsOf(error).map((r) => r.Code ?? 'None');
    if (codes.some((c) => THROTTLE_REASONS.has(c))) return 'throttled';
    if (codes.some((c) => c === 'TransactionConflict')) return 'conflict';
    return 'fatal';
  }
  return classifyAwsError(error);
}

/**
 * The `ClientRequestToken` for a caller's token: a SHA-256 of the table name and the token,
 * 32 hex characters (DynamoDB allows at most 36). Deterministic, so a retry by the caller
 * — even from another process — is recognised by DynamoDB as the same request for 10 minutes.
 */
export function dynamoRequestToken(tableName: string, token: string): string {
  return createHash('sha256').update(`${tableName}\u0000${token}`).digest('hex').slice(0, 32);
}

/**
 * The {@link CatalogStore} on one DynamoDB table (`pk` HASH, `sk` RANGE, LSI `byTime` on
 * `t`), created by {@link ensureDynamoTable}.
 *
 * Guarantees:
 * - Every read is strongly consistent (`ConsistentRead: true`, also on the LSI).
 * - A conditional `put` is one `PutItem` whose condition DynamoDB evaluates atomically.
 *   When its outcome is ambiguous (timeout, 5xx, reset after sending), the item is read
 *   back: if it holds our body the write happened; otherwise it is sent again (and a
 *   failed condition then is a real conflict).
 * - `transact` is ONE `TransactWriteItems` with a deterministic `ClientRequestToken`.
 *   Ambiguous outcomes and transient cancellations are resolved by re-sending the same
 *   request with the same token — DynamoDB applies it at most once within 10 minutes —
 *   never by a blind new request. A failed condition becomes `CONFLICT` naming the item
 *   (`pk`, `sk`, `index`, `reason`).
 * - Throttling and transaction conflicts are retried with full-jitter backoff up to a bound,
 *   then surfaced (`LIMIT_EXCEEDED`, `CONFLICT`); an outcome still ambiguous after the bound
 *   is `INTERNAL` with `details.ambiguous = true` (retry later with the same token).
 * - `putMany` is `BatchWriteItem` (25 items per request, unprocessed items re-sent with
 *   backoff): unconditional and idempotent, so resending after an ambiguous outcome is safe.
 * - Items over 350 KiB are refused with `INVALID` before anything is sent.
 * - `close()` waits for writes still in flight (the catalog writes document items behind
 *   a commit's log item) before it releases the client.
 */
export class DynamoCatalogStore implements CatalogStore {
  /** Every request is a network round trip: the catalog batches and inlines accordingly. */
  readonly remote = true;
  /** The table this store reads and writes. */
  readonly tableName: string;
  /** Writes started and not yet finished, awaited by `close()`. */
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly client: DynamoDBClient;
  private readonly ownsClient: boolean;
  private readonly policy: RetryPolicy;
  private readonly sleep: Sleep;
  private readonly random: () => number;

  constructor(options: DynamoCatalogStoreOptions) {
    if (!options.tableName) throw invalid('a DynamoDB table name is required');
    this.tableName = options.tableName;
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? createDynamoDbClient();
    this.policy = options.retry ?? DEFAULT_RETRY_POLICY;
    this.sleep = options.sleep ?? realSleep;
    this.random = options.random ?? Math.random;
  }

  /** Runs `fn` with the retry policy; `what` names the operation in surfaced errors. */
  private retrying<T>(what: string, fn: (attempt: number) => Promise<T>, details: Record<string, unknown> = {}) {
    return withRetry(
      async (attempt) => {
        try {
          return await fn(attempt);
        } catch (error) {
          throw this.translateFatal(error, what, details);
        }
      },
      { policy: this.policy, sleep: this.sleep, random: this.random, retryable: (e) => failureKind(e) !== 'fatal' },
      (exhausted) => this.giveUp(exhausted, what, details),
    );
  }

  /** Maps errors that no retry can fix to Airlock errors; leaves retryable ones as they are. */
  private translateFatal(error: unknown, what: string, details: Record<string, unknown>): unknown {
    if (failureKind(error) !== 'fatal' || isAirlockError(error)) return error;
    const name = errorName(error);
    const message = (error as { message?: unknown }).message;
    if (name === 'ResourceNotFoundException') {
      return notFound(`DynamoDB table '${this.tableName}' does not exist; run 'airlock init'`, {
        table: this.tableName,
      });
    }
    if (name === 'ValidationException' || name === 'IdempotentParameterMismatchException') {
      return invalid(`DynamoDB refused ${what}: ${String(message)}`, { ...details, awsError: name }, error);
    }
    return new AirlockError('INTERNAL', `DynamoDB ${what} failed: ${name || String(message)}`, {
      cause: error,
      details: { ...details, awsError: name },
    });
  }

  private giveUp({ attempts, error }: RetryExhausted, what: string, allDetails: Record<string, unknown>): never {
    const { ops: _ops, ...details } = allDetails;
    const kind = failureKind(error);
    const name = errorName(error);
    if (kind === 'throttled') {
      throw new AirlockError('LIMIT_EXCEEDED', `DynamoDB kept throttling ${what} (${attempts} attempts); retry later`, {
        cause: error,
        details: { ...details, attempts, awsError: name },
      });
    }
    if (kind === 'conflict') {
      const failed = this.firstReason(error, allDetails);
      throw conflict(
        `${what} kept colliding with concurrent transactions (${attempts} attempts)`,
        { ...details, ...failed, attempts, reason: failed.reason ?? 'TransactionConflict' },
        error,
      );
    }
    throw new AirlockError(
      'INTERNAL',
      `the outcome of DynamoDB ${what} is unknown after ${attempts} attempts (${name}); retrying with the same token is safe`,
      { cause: error, details: { ...details, attempts, ambiguous: true, awsError: name } },
    );
  }

  private firstReason(error: unknown, details: Record<string, unknown>): Record<string, unknown> {
    const ops = details.ops as ItemKey[] | undefined;
    const reasons = reasonsOf(error);
    const index = reasons.findIndex((r) => r.Code !== undefined && r.Code !== 'None');
    const key = index >= 0 ? ops?.[index] : undefined;
    return key ? { pk: key.pk, sk: key.sk, index, reason: reasons[index]?.Code } : {};
  }

  async get(key: ItemKey): Promise<CatalogItem | undefined> {
    const raw = await this.getRaw(key);
    return raw && unmarshal(raw);
  }

  private async getRaw(key: ItemKey): Promise<Raw | undefined> {
    const out = await this.retrying(
      'GetItem',
      () => this.client.send(new GetItemCommand({ TableName: this.tableName, Key: keyOf(key), ConsistentRead: true })),
      { pk: key.pk, sk: key.sk },
    );
    return out.Item;
  }

  /** Reads keys with `BatchGetItem`, 100 per request, retrying `UnprocessedKeys` with backoff; returned in input order. */
  async getMany(keys: readonly ItemKey[]): Promise<CatalogItem[]> {
    const unique = new Map<string, ItemKey>();
    for (const k of keys) unique.set(`${k.pk}\u0000${k.sk}`, k);
    const all = [...unique.values()];
    const chunks: ItemKey[][] = [];
    for (let i = 0; i < all.length; i += 100) chunks.push(all.slice(i, i + 100));
    const found = new Map<string, CatalogItem>();
    const worker = async () => {
      for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) {
        for (const item of await this.batchGet(chunk)) found.set(`${item.pk}\u0000${item.sk}`, item);
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, chunks.length) }, worker));
    const out: CatalogItem[] = [];
    for (const k of keys) {
      const item = found.get(`${k.pk}\u0000${k.sk}`);
      if (item) out.push(structuredClone(item));
    }
    return out;
  }

  private async batchGet(keys: ItemKey[]): Promise<CatalogItem[]> {
    const out: CatalogItem[] = [];
    let pending: Raw[] = keys.map(keyOf);
    for (let round = 1; pending.length > 0; round++) {
      if (round > 1) {
        if (round > this.policy.maxAttempts) {
          throw new AirlockError(
            'LIMIT_EXCEEDED',
            `DynamoDB left ${pending.length} keys unprocessed after ${this.policy.maxAttempts} BatchGetItem rounds; retry later`,
            { details: { unprocessed: pending.length } },
          );
        }
        await this.sleep(backoffDelay(round - 1, this.policy, this.random));
      }
      const request = pending;
      const res = await this.retrying('BatchGetItem', () =>
        this.client.send(
          new BatchGetItemCommand({
            RequestItems: { [this.tableName]: { Keys: request, ConsistentRead: true } },
          }),
        ),
      );
      for (const raw of res.Responses?.[this.tableName] ?? []) out.push(unmarshal(raw));
      pending = res.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
    }
    return out;
  }

  /**
   * Reads a page with `Query` (consistent), following DynamoDB's own 1 MB pages until
   * `limit` items are collected. The cursor is the last returned key, so exclusive bounds
   * that DynamoDB cannot express (it has only `BETWEEN` for two ends) are applied here
   * without skipping or repeating items across pages.
   */
  async query(pk: string, options: QueryOptions = {}): Promise<QueryPage> {
    const limit = pageLimit(options);
    const range = resolveRange(options);
    if (range.empty) return { items: [] };
    const time = options.index === 'time';
    const col = time ? 't' : 'sk';
    const names: Record<string, string> = { '#pk': 'pk' };
    const values: Raw = { ':pk': { S: pk } };
    // DynamoDB refuses unused placeholders, so `#k` is only named when a bound uses it.
    if (range.lower || range.upper) names['#k'] = col;
    let condition = '#pk = :pk';
    const { lower, upper } = range;
    let dropLower: Bound | undefined;
    let dropUpper: Bound | undefined;
    if (lower && upper) {
      condition += ' AND #k BETWEEN :lo AND :hi';
      values[':lo'] = { S: lower.value };
      values[':hi'] = { S: upper.value };
      if (!lower.inclusive) dropLower = lower;
      if (!upper.inclusive) dropUpper = upper;
    } else if (lower) {
      condition += ` AND #k ${lower.inclusive ? '>=' : '>'} :lo`;
      values[':lo'] = { S: lower.value };
    } else if (upper) {
      condition += ` AND #k ${upper.inclusive ? '<=' : '<'} :hi`;
      values[':hi'] = { S: upper.value };
    }
    let startKey: Raw | undefined;
    if (options.cursor !== undefined) {
      const after = decodeCursor(options.cursor, time ? ['t', 'sk'] : ['sk']);
      startKey = { pk: { S: pk }, sk: { S: after.sk as string } };
      if (time) startKey.t = { S: after.t as string };
    }
    const items: CatalogItem[] = [];
    for (;;) {
      const input: QueryCommandInput = {
        TableName: this.tableName,
        KeyConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ConsistentRead: true,
        ScanIndexForward: !options.reverse,
        // One more than needed: if it arrives, another page exists.
        Limit: limit + 1 - items.length,
      };
      if (time) input.IndexName = DYNAMO_TIME_INDEX;
      if (startKey) input.ExclusiveStartKey = startKey;
      const res = await this.retrying('Query', () => this.client.send(new QueryCommand(input)), { pk });
      for (const raw of res.Items ?? []) {
        const value = raw[col]?.S;
        if (value === undefined) continue;
        if (dropLower && value === dropLower.value) continue;
        if (dropUpper && value === dropUpper.value) continue;
        items.push(unmarshal(raw));
      }
      if (items.length > limit) {
        const page = items.slice(0, limit);
        const last = page[page.length - 1] as CatalogItem;
        const cursor = time ? encodeCursor({ t: last.t as string, sk: last.sk }) : encodeCursor({ sk: last.sk });
        return { items: page, cursor };
      }
      if (!res.LastEvaluatedKey) return { items };
      startKey = res.LastEvaluatedKey;
    }
  }

  /** Runs a write, remembering it until it settles so `close()` can wait for it. */
  private track<T>(write: Promise<T>): Promise<T> {
    this.inflight.add(write);
    const done = () => this.inflight.delete(write);
    write.then(done, done);
    return write;
  }

  async put(item: CatalogItem, condition?: Condition): Promise<void> {
    return this.track(this.putItem(item, condition));
  }

  /**
   * Writes items unconditionally with `BatchWriteItem`: 25 per request, up to 4 requests
   * at once, `UnprocessedItems` re-sent with backoff up to the retry bound. Not atomic.
   */
  async putMany(items: readonly CatalogItem[]): Promise<void> {
    return this.track(this.batchPut(items));
  }

  private async batchPut(items: readonly CatalogItem[]): Promise<void> {
    for (const item of items) assertItem(item);
    const unique = new Map<string, CatalogItem>();
    for (const item of items) unique.set(`${item.pk}\u0000${item.sk}`, item);
    const all = [...unique.values()];
    const chunks: CatalogItem[][] = [];
    for (let i = 0; i < all.length; i += 25) chunks.push(all.slice(i, i + 25));
    const worker = async () => {
      for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) await this.batchWrite(chunk);
    };
    await Promise.all(Array.from({ length: Math.min(4, chunks.length) }, worker));
  }

  private async batchWrite(items: CatalogItem[]): Promise<void> {
    let pending = items.map((item) => ({ PutRequest: { Item: marshal(item) } }));
    for (let round = 1; pending.length > 0; round++) {
      if (round > 1) {
        if (round > this.policy.maxAttempts) {
          throw new AirlockError(
            'LIMIT_EXCEEDED',
            `DynamoDB left ${pending.length} items unwritten after ${this.policy.maxAttempts} BatchWriteItem rounds; retry later`,
            { details: { unprocessed: pending.length } },
          );
        }
        await this.sleep(backoffDelay(round - 1, this.policy, this.random));
      }
      const request = pending;
      // Unconditional puts of the same bytes: resending after an ambiguous outcome is harmless.
      const res = await this.retrying('BatchWriteItem', () =>
        this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.tableName]: request } })),
      );
      pending = (res.UnprocessedItems?.[this.tableName] ?? []).flatMap((r) =>
        r.PutRequest?.Item ? [{ PutRequest: { Item: r.PutRequest.Item } }] : [],
      );
    }
  }

  private async putItem(item: CatalogItem, condition?: Condition): Promise<void> {
    assertItem(item);
    const raw = marshal(item);
    const details = { pk: item.pk, sk: item.sk };
    let ambiguous = false;
    await this.retrying(
      'PutItem',
      async () => {
        if (ambiguous) {
          // A previous attempt may have been applied. Resending blindly could turn our own
          // successful append into a CONFLICT (or overwrite a newer version), so look first.
          const current = await this.client.send(
            new GetItemCommand({ TableName: this.tableName, Key: keyOf(item), ConsistentRead: true }),
          );
          if (sameStored(current.Item, raw)) return;
        }
        try {
          await this.client.send(
            new PutItemCommand({
              TableName: this.tableName,
              Item: raw,
              ...conditionParts(condition),
              ...(condition ? { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } : {}),
            }),
          );
        } catch (error) {
          if (errorName(error) === 'ConditionalCheckFailedException') {
            const old = (error as { Item?: Raw }).Item;
            throw conflict(
              `condition failed on ${item.pk}/${item.sk} (expected ${describeCondition(condition)})`,
              {
                ...details,
                condition: describeCondition(condition),
                reason: 'ConditionalCheckFailed',
                ...(old ? { exists: true, actualVersion: old.v?.N === undefined ? undefined : Number(old.v.N) } : {}),
              },
              error,
            );
          }
          if (failureKind(error) === 'ambiguous') ambiguous = true;
          throw error;
        }
      },
      details,
    );
  }

  async transact(ops: readonly WriteOp[], token?: string): Promise<void> {
    return this.track(this.transactItems(ops, token));
  }

  private async transactItems(ops: readonly WriteOp[], token?: string): Promise<void> {
    assertTransaction(ops);
    if (ops.length === 0) return;
    const items: TransactWriteItem[] = ops.map((op) => {
      const cond = conditionParts(op.condition);
      switch (op.op) {
        case 'put':
          return { Put: { TableName: this.tableName, Item: marshal(op.item), ...cond } };
        case 'delete':
          return { Delete: { TableName: this.tableName, Key: keyOf(op.key), ...cond } };
        case 'check':
          return {
            ConditionCheck: {
              TableName: this.tableName,
              Key: keyOf(op.key),
              ...cond,
              ConditionExpression: cond.ConditionExpression as string,
            },
          };
        default:
          throw invalid(`unknown transaction operation ${JSON.stringify((op as { op?: unknown }).op)}`);
      }
    });
    // Without a caller token, still use one per call, so our own resends are idempotent.
    const requestToken = token === undefined ? randomUUID() : dynamoRequestToken(this.tableName, token);
    const keys = ops.map(keyOfOp);
    const command = new TransactWriteItemsCommand({ TransactItems: items, ClientRequestToken: requestToken });
    await this.retrying(
      'TransactWriteItems',
      async () => {
        try {
          // Every attempt sends the same request with the same token: after an ambiguous
          // outcome this is a re-check (DynamoDB answers success if it was applied), not a
          // second application.
          await this.client.send(command);
        } catch (error) {
          throw this.cancellation(error, ops, keys) ?? error;
        }
      },
      { ops: keys, token: token ?? null },
    );
  }

  /** Maps a `TransactionCanceledException` with a definitive reason to an Airlock error. */
  private cancellation(error: unknown, ops: readonly WriteOp[], keys: ItemKey[]): AirlockError | undefined {
    if (errorName(error) !== 'TransactionCanceledException') return undefined;
    const reasons = reasonsOf(error);
    const find = (code: string) => reasons.findIndex((r) => r.Code === code);
    const failed = find('ConditionalCheckFailed');
    if (failed >= 0) {
      const key = keys[failed] as ItemKey;
      const op = ops[failed] as WriteOp;
      return conflict(
        `transaction cancelled: condition failed on ${key.pk}/${key.sk} (operation ${failed}, expected ${describeCondition(op.condition)})`,
        {
          pk: key.pk,
          sk: key.sk,
          index: failed,
          reason: 'ConditionalCheckFailed',
          condition: describeCondition(op.condition),
          reasons: reasons.map((r) => r.Code ?? 'None'),
        },
        error,
      );
    }
    const validation = find('ValidationError');
    if (validation >= 0) {
      const key = keys[validation] as ItemKey;
      return invalid(
        `transaction refused: ${reasons[validation]?.Message ?? 'validation error'} on ${key.pk}/${key.sk}`,
        { pk: key.pk, sk: key.sk, index: validation, reason: 'ValidationError' },
        error,
      );
    }
    const size = find('ItemCollectionSizeLimitExceeded');
    if (size >= 0) {
      const key = keys[size] as ItemKey;
      return new AirlockError('LIMIT_EXCEEDED', `partition ${key.pk} reached DynamoDB's 10 GB item collection limit`, {
        cause: error,
        details: { pk: key.pk, sk: key.sk, index: size, reason: 'ItemCollectionSizeLimitExceeded' },
      });
    }
    return undefined;
  }

  async close(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    if (this.ownsClient) this.client.destroy();
  }
}

/**
 * Opens the DynamoDB catalog store. The table must exist ({@link ensureDynamoTable}).
 *
 * @example
 * const store = openDynamoCatalogStore({ tableName: process.env.AIRLOCK_DYNAMODB_TABLE! });
 */
export function openDynamoCatalogStore(options: DynamoCatalogStoreOptions): DynamoCatalogStore {
  return new DynamoCatalogStore(options);
}

/**
 * Creates the catalog table when missing (on-demand billing, LSI `byTime` on `t`, which
 * only an initial `CreateTable` can add) and waits until it is `ACTIVE`. Idempotent and
 * safe when two processes run it at once. An existing table with another key schema is
 * refused with `INVALID`, rather than used wrongly.
 */
export async function ensureDynamoTable(
  client: DynamoDBClient,
  tableName: string,
  options: { maxWaitSeconds?: number } = {},
): Promise<void> {
  const maxWaitTime = options.maxWaitSeconds ?? 300;
  // Describe and create are safe to repeat (a repeated create answers ResourceInUse), so
  // throttling and connection resets are retried like the store's own requests.
  const retried = <T>(fn: () => Promise<T>) => withRetry(fn, { retryable: (e) => classifyAwsError(e) !== 'fatal' });
  const describe = async () => {
    try {
      return (await retried(() => client.send(new DescribeTableCommand({ TableName: tableName })))).Table;
    } catch (error) {
      if (errorName(error) === 'ResourceNotFoundException') return undefined;
      throw error;
    }
  };
  let description: TableDescription | undefined = await describe();
  if (!description) {
    try {
      await retried(() =>
        client.send(
          new CreateTableCommand({
            TableName: tableName,
            BillingMode: 'PAY_PER_REQUEST',
            AttributeDefinitions: [
              { AttributeName: 'pk', AttributeType: 'S' },
              { AttributeName: 'sk', AttributeType: 'S' },
              { AttributeName: 't', AttributeType: 'S' },
            ],
            KeySchema: [
              { AttributeName: 'pk', KeyType: 'HASH' },
              { AttributeName: 'sk', KeyType: 'RANGE' },
            ],
            LocalSecondaryIndexes: [
              {
                IndexName: DYNAMO_TIME_INDEX,
                KeySchema: [
                  { AttributeName: 'pk', KeyType: 'HASH' },
                  { AttributeName: 't', KeyType: 'RANGE' },
                ],
                Projection: { ProjectionType: 'ALL' },
              },
            ],
          }),
        ),
      );
    } catch (error) {
      // Another process created it first: fine, wait for it below.
      if (errorName(error) !== 'ResourceInUseException') throw error;
    }
    await waitUntilTableExists({ client, maxWaitTime, minDelay: 1, maxDelay: 5 }, { TableName: tableName });
    description = await describe();
  }
  const keys = (description?.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
  const hasIndex = (description?.LocalSecondaryIndexes ?? []).some((i) => i.IndexName === DYNAMO_TIME_INDEX);
  if (keys !== 'pk:HASH,sk:RANGE' || !hasIndex) {
    throw invalid(
      `DynamoDB table '${tableName}' exists but is not an Airlock catalog table (keys ${keys}, index ${DYNAMO_TIME_INDEX} ${hasIndex ? 'present' : 'missing'})`,
      { table: tableName },
    );
  }
  if (description?.TableStatus !== 'ACTIVE') {
    await waitUntilTableExists({ client, maxWaitTime, minDelay: 1, maxDelay: 5 }, { TableName: tableName });
  }
}
