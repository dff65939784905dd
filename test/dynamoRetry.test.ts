/**
 * Wiring of the DynamoDB adapter that DynamoDB Local cannot produce: throttling,
 * `TransactionConflictException`, ambiguous outcomes (timeouts, resets, 5xx) and the exact
 * requests re-sent after them. Semantics live in the contract suite (store.contract.test.ts).
 */
import {
  BatchGetItemCommand,
  DynamoDBClient,
  GetItemCommand,
  IdempotentParameterMismatchException,
  InternalServerError,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  TransactionCanceledException,
  TransactionConflictException,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { isAirlockError } from '../shared/errors/index.js';
import { createDynamoDbClient, DynamoCatalogStore, dynamoRequestToken } from '../shared/store/DynamoCatalogStore.js';
import type { WriteOp } from '../shared/store/ports.js';
import { backoffDelay, classifyAwsError, type RetryPolicy } from '../shared/store/retry.js';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 25 };
const meta = { $metadata: {} };

const throttled = () => new ProvisionedThroughputExceededException({ message: 'slow down', ...meta });
const txConflict = () => new TransactionConflictException({ message: 'conflict', ...meta });
const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const timeout = () => Object.assign(new Error('request timed out'), { name: 'TimeoutError' });
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: 'Transaction cancelled',
    ...meta,
    CancellationReasons: codes.map((Code) => ({ Code, Message: Code === 'None' ? undefined : `${Code} happened` })),
  });

async function failure(fn: () => Promise<unknown>) {
  try {
    await fn();
  } catch (error) {
    if (isAirlockError(error)) return error;
    throw error;
  }
  throw new Error('expected an Airlock error, but the call succeeded');
}

const client = new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
const ddb = mockClient(client);
let delays: number[];
let store: DynamoCatalogStore;

beforeEach(() => {
  ddb.reset();
  delays = [];
  store = new DynamoCatalogStore({
    tableName: 'airlock-test',
    client,
    retry: policy,
    sleep: async (ms) => {
      delays.push(ms);
    },
    random: () => 0.999,
  });
});

const ops: WriteOp[] = [
  { op: 'put', item: { pk: 'log#main', sk: '0007', data: { e: 1 } }, condition: { kind: 'absent' } },
  { op: 'put', item: { pk: 'ref#main', sk: 'head', v: 8, data: { seq: 7 } }, condition: { kind: 'version', v: 7 } },
  { op: 'check', key: { pk: 'run#1', sk: 'state' }, condition: { kind: 'exists' } },
];

describe('retry policy', () => {
  it('draws full-jitter delays below an exponentially growing, capped ceiling', () => {
    const p = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, p, () => 0.999))).toEqual([99, 199, 399, 799, 999]);
    expect(backoffDelay(3, p, () => 0)).toBe(0);
  });

  it('classifies throttling, conflicts, ambiguous outcomes and the rest', () => {
    expect(classifyAwsError(throttled())).toBe('throttled');
    expect(classifyAwsError(txConflict())).toBe('conflict');
    expect(classifyAwsError(reset())).toBe('ambiguous');
    expect(classifyAwsError(timeout())).toBe('ambiguous');
    expect(classifyAwsError(new InternalServerError({ message: 'boom', ...meta }))).toBe('ambiguous');
    expect(classifyAwsError(Object.assign(new Error('x'), { $metadata: { httpStatusCode: 503 } }))).toBe('ambiguous');
    expect(classifyAwsError(Object.assign(new Error('bad'), { name: 'ValidationException' }))).toBe('fatal');
  });

  it('builds its default client with the SDK retries off, so the adapter is the only retry layer', async () => {
    const own = createDynamoDbClient({ region: 'us-east-1' });
    expect(await own.config.maxAttempts()).toBe(1);
    own.destroy();
  });
});

describe('throttling and transaction conflicts', () => {
  it('retries a throttled put with backoff and succeeds', async () => {
    ddb.on(PutItemCommand).rejectsOnce(throttled()).rejectsOnce(throttled()).resolves({});
    await store.put({ pk: 'a', sk: 'b', data: {} });
    expect(ddb.commandCalls(PutItemCommand)).toHaveLength(3);
    expect(delays).toEqual([9, 19]);
  });

  it('gives up after the bound and surfaces throttling as LIMIT_EXCEEDED', async () => {
    ddb.on(PutItemCommand).rejects(throttled());
    const error = await failure(() => store.put({ pk: 'a', sk: 'b', data: {} }));
    expect(error.code).toBe('LIMIT_EXCEEDED');
    expect(error.details).toMatchObject({ attempts: 4, pk: 'a', sk: 'b' });
    expect(ddb.commandCalls(PutItemCommand)).toHaveLength(4);
    expect(delays).toEqual([9, 19, 24]); // capped at maxDelayMs
  });

  it('retries a put that collided with a transaction, then surfaces CONFLICT naming the item', async () => {
    ddb.on(PutItemCommand).rejects(txConflict());
    const error = await failure(() => store.put({ pk: 'ref#main', sk: 'head', data: {} }, { kind: 'exists' }));
    expect(error.code).toBe('CONFLICT');
    expect(error.details).toMatchObject({ pk: 'ref#main', sk: 'head', attempts: 4 });
    expect(ddb.commandCalls(PutItemCommand)).toHaveLength(4);
  });

  it('re-sends a transaction cancelled by a concurrent transaction with the same token', async () => {
    ddb
      .on(TransactWriteItemsCommand)
      .rejectsOnce(cancelled('None', 'TransactionConflict', 'None'))
      .rejectsOnce(cancelled('ThrottlingError', 'None', 'None'))
      .resolves({});
    await store.transact(ops, 'merge-42');
    const calls = ddb.commandCalls(TransactWriteItemsCommand);
    expect(calls).toHaveLength(3);
    const tokens = calls.map((c) => c.args[0].input.ClientRequestToken);
    expect(new Set(tokens)).toEqual(new Set([dynamoRequestToken('airlock-test', 'merge-42')]));
  });

  it('surfaces a transaction that keeps colliding as CONFLICT naming the contended item', async () => {
    ddb.on(TransactWriteItemsCommand).rejects(cancelled('None', 'TransactionConflict', 'None'));
    const error = await failure(() => store.transact(ops, 'merge-43'));
    expect(error.code).toBe('CONFLICT');
    expect(error.details).toMatchObject({
      pk: 'ref#main',
      sk: 'head',
      index: 1,
      reason: 'TransactionConflict',
      attempts: 4,
    });
  });

  it('retries UnprocessedKeys of a batch read', async () => {
    const key = (sk: string) => ({ pk: { S: 'p' }, sk: { S: sk } });
    ddb
      .on(BatchGetItemCommand)
      .resolvesOnce({
        Responses: { 'airlock-test': [{ ...key('1'), d: { S: '{"n":1}' } }] },
        UnprocessedKeys: { 'airlock-test': { Keys: [key('2')] } },
      })
      .resolvesOnce({ Responses: { 'airlock-test': [{ ...key('2'), d: { S: '{"n":2}' } }] } });
    const items = await store.getMany([
      { pk: 'p', sk: '2' },
      { pk: 'p', sk: '1' },
    ]);
    expect(items.map((i) => i.data.n)).toEqual([2, 1]);
    const calls = ddb.commandCalls(BatchGetItemCommand);
    expect(calls[1]?.args[0].input.RequestItems?.['airlock-test']?.Keys).toEqual([key('2')]);
    expect(calls[1]?.args[0].input.RequestItems?.['airlock-test']?.ConsistentRead).toBe(true);
    expect(delays).toHaveLength(1);
  });

  it('reads more than 100 keys in batches of at most 100, without duplicates', async () => {
    ddb.on(BatchGetItemCommand).resolves({ Responses: { 'airlock-test': [] } });
    const keys = Array.from({ length: 250 }, (_, i) => ({ pk: 'p', sk: String(i) }));
    await store.getMany([...keys, ...keys.slice(0, 10)]);
    const sizes = ddb
      .commandCalls(BatchGetItemCommand)
      .map((c) => c.args[0].input.RequestItems?.['airlock-test']?.Keys?.length);
    expect(sizes.sort()).toEqual([100, 100, 50]);
  });
});

describe('ambiguous outcomes', () => {
  it('re-sends an ambiguous transaction with the same ClientRequestToken and the same items', async () => {
    ddb.on(TransactWriteItemsCommand).rejectsOnce(reset()).rejectsOnce(timeout()).resolves({});
    await store.transact(ops, 'merge-44');
    const inputs = ddb.commandCalls(TransactWriteItemsCommand).map((c) => c.args[0].input);
    expect(inputs).toHaveLength(3);
    expect(inputs[1]).toEqual(inputs[0]);
    expect(inputs[2]).toEqual(inputs[0]);
    expect(inputs[0]?.ClientRequestToken).toBe(dynamoRequestToken('airlock-test', 'merge-44'));
  });

  it('uses one generated token for all attempts of a call without a token', async () => {
    ddb
      .on(TransactWriteItemsCommand)
      .rejectsOnce(new InternalServerError({ message: 'oops', ...meta }))
      .resolves({});
    await store.transact(ops);
    const tokens = ddb.commandCalls(TransactWriteItemsCommand).map((c) => c.args[0].input.ClientRequestToken);
    expect(tokens).toHaveLength(2);
    expect(tokens[0]).toBeDefined();
    expect(tokens[1]).toBe(tokens[0]);
  });

  it('derives a deterministic token of at most 36 characters from the caller token', () => {
    const token = dynamoRequestToken('airlock-test', 'x'.repeat(500));
    expect(token.length).toBeLessThanOrEqual(36);
    expect(dynamoRequestToken('airlock-test', 'x'.repeat(500))).toBe(token);
    expect(dynamoRequestToken('other-table', 'x'.repeat(500))).not.toBe(token);
  });

  it('surfaces a transaction still ambiguous after the bound as INTERNAL, flagged ambiguous', async () => {
    ddb.on(TransactWriteItemsCommand).rejects(reset());
    const error = await failure(() => store.transact(ops, 'merge-45'));
    expect(error.code).toBe('INTERNAL');
    expect(error.details).toMatchObject({ ambiguous: true, attempts: 4, token: 'merge-45' });
  });

  it('reads a conditional put back after an ambiguous failure and does not re-send when it was applied', async () => {
    ddb.on(PutItemCommand).rejectsOnce(reset()).resolves({});
    ddb.on(GetItemCommand).resolves({ Item: { pk: { S: 'log' }, sk: { S: '1' }, d: { S: '{"by":"me"}' } } });
    await store.put({ pk: 'log', sk: '1', data: { by: 'me' } }, { kind: 'absent' });
    expect(ddb.commandCalls(PutItemCommand)).toHaveLength(1);
    expect(ddb.commandCalls(GetItemCommand)[0]?.args[0].input).toMatchObject({ ConsistentRead: true });
  });

  it('re-sends a conditional put after an ambiguous failure when the read-back shows it was not applied', async () => {
    ddb.on(PutItemCommand).rejectsOnce(timeout()).resolves({});
    ddb.on(GetItemCommand).resolves({});
    await store.put({ pk: 'log', sk: '1', data: { by: 'me' } }, { kind: 'absent' });
    const puts = ddb.commandCalls(PutItemCommand);
    expect(puts).toHaveLength(2);
    expect(puts[1]?.args[0].input.ConditionExpression).toBe('attribute_not_exists(#pk)');
  });

  it('reports CONFLICT when the read-back shows another writer took the key', async () => {
    ddb
      .on(PutItemCommand)
      .rejectsOnce(reset())
      .rejects(
        Object.assign(new Error('The conditional request failed'), {
          name: 'ConditionalCheckFailedException',
          ...meta,
        }),
      );
    ddb.on(GetItemCommand).resolves({ Item: { pk: { S: 'log' }, sk: { S: '1' }, d: { S: '{"by":"other"}' } } });
    const error = await failure(() => store.put({ pk: 'log', sk: '1', data: { by: 'me' } }, { kind: 'absent' }));
    expect(error.code).toBe('CONFLICT');
    expect(error.details).toMatchObject({ pk: 'log', sk: '1' });
  });
});

describe('cancellation reasons', () => {
  it('maps ConditionalCheckFailed to CONFLICT naming the failed item, without retrying', async () => {
    ddb.on(TransactWriteItemsCommand).rejects(cancelled('None', 'ConditionalCheckFailed', 'None'));
    const error = await failure(() => store.transact(ops, 'merge-46'));
    expect(error.code).toBe('CONFLICT');
    expect(error.details).toMatchObject({
      pk: 'ref#main',
      sk: 'head',
      index: 1,
      reason: 'ConditionalCheckFailed',
      condition: 'version = 7',
    });
    expect(ddb.commandCalls(TransactWriteItemsCommand)).toHaveLength(1);
  });

  it('names the first failed check when several fail', async () => {
    ddb.on(TransactWriteItemsCommand).rejects(cancelled('None', 'None', 'ConditionalCheckFailed'));
    const error = await failure(() => store.transact(ops));
    expect(error.details).toMatchObject({ pk: 'run#1', sk: 'state', index: 2 });
  });

  it('maps a ValidationError reason to INVALID', async () => {
    ddb.on(TransactWriteItemsCommand).rejects(cancelled('ValidationError', 'None', 'None'));
    const error = await failure(() => store.transact(ops));
    expect(error.code).toBe('INVALID');
    expect(error.details).toMatchObject({ pk: 'log#main', index: 0 });
  });

  it('maps a reused token with different operations to INVALID', async () => {
    ddb
      .on(TransactWriteItemsCommand)
      .rejects(new IdempotentParameterMismatchException({ message: 'mismatch', ...meta }));
    const error = await failure(() => store.transact(ops, 'merge-47'));
    expect(error.code).toBe('INVALID');
    expect(ddb.commandCalls(TransactWriteItemsCommand)).toHaveLength(1);
  });

  it('translates each condition into the expression that prevents its race', async () => {
    ddb.on(TransactWriteItemsCommand).resolves({});
    await store.transact(ops, 'merge-48');
    const items = ddb.commandCalls(TransactWriteItemsCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items[0]?.Put?.ConditionExpression).toBe('attribute_not_exists(#pk)');
    expect(items[1]?.Put).toMatchObject({
      ConditionExpression: '#v = :v',
      ExpressionAttributeValues: { ':v': { N: '7' } },
    });
    expect(items[1]?.Put?.Item?.v).toEqual({ N: '8' });
    expect(items[2]?.ConditionCheck?.ConditionExpression).toBe('attribute_exists(#pk)');
  });
});

describe('refusals before sending', () => {
  it('refuses more than 100 operations without calling DynamoDB', async () => {
    const many: WriteOp[] = Array.from({ length: 101 }, (_, i) => ({
      op: 'put',
      item: { pk: 'p', sk: String(i), data: {} },
    }));
    expect((await failure(() => store.transact(many))).code).toBe('INVALID');
    expect(ddb.calls()).toHaveLength(0);
  });

  it('refuses an item over 350 KiB without calling DynamoDB', async () => {
    const error = await failure(() => store.put({ pk: 'p', sk: 's', data: { blob: 'x'.repeat(360 * 1024) } }));
    expect(error.code).toBe('INVALID');
    expect(ddb.calls()).toHaveLength(0);
  });
});
