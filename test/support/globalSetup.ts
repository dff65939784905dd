/**
 * vitest global setup: starts DynamoDB Local and s3rver once per run and provides their
 * endpoints to every test file (`inject('airlockEmulators')`, or `useEmulators()`).
 *
 * Lazy: it starts them only when a test file selected for this run mentions
 * `useEmulators` or `airlockEmulators`, so unit-test runs never wait for a JVM.
 * DynamoDB Local runs on a cold JVM: the first few hundred requests are ~25 ms each, so a
 * short warm-up here keeps the first test files from paying for it.
 */
import { readFile } from 'node:fs/promises';
import {
  CreateTableCommand,
  DeleteTableCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import type { TestProject } from 'vitest/node';
import { dynamoClientFor, startEmulators } from './emulators.js';

async function warmUp(endpoint: string): Promise<void> {
  const client = dynamoClientFor(endpoint);
  const TableName = 'airlock-warmup';
  try {
    await client.send(
      new CreateTableCommand({
        TableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
      }),
    );
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          client.send(
            new PutItemCommand({
              TableName,
              Item: { pk: { S: 'w' }, sk: { S: `${round}-${i}` }, d: { S: '{}' } },
              ConditionExpression: 'attribute_not_exists(pk)',
            }),
          ),
        ),
      );
      await client.send(
        new TransactWriteItemsCommand({
          TransactItems: [{ Put: { TableName, Item: { pk: { S: 't' }, sk: { S: String(round) }, d: { S: '{}' } } } }],
        }),
      );
      await client.send(
        new QueryCommand({
          TableName,
          KeyConditionExpression: 'pk = :p',
          ExpressionAttributeValues: { ':p': { S: 'w' } },
          ConsistentRead: true,
        }),
      );
    }
    await client.send(new DeleteTableCommand({ TableName }));
  } finally {
    client.destroy();
  }
}

/** True when a test file of this run uses the emulators. */
async function emulatorsNeeded(project: TestProject): Promise<boolean> {
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern ?? [];
  const { testFiles } = await project.globTestFiles(filters);
  for (const file of testFiles) {
    if (/\buseEmulators\b|airlockEmulators/.test(await readFile(file, 'utf8'))) return true;
  }
  return false;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const checking = Date.now();
  const needed = await emulatorsNeeded(project);
  if (process.env.AIRLOCK_TEST_DEBUG) console.error(`emulators needed: ${needed} (${Date.now() - checking} ms)`);
  if (!needed) return async () => {};
  const started = Date.now();
  const emulators = await startEmulators();
  // Best effort: a warm-up failure (e.g. a connection reset by a CPU-starved JVM) only
  // means the first tests run on a colder JVM; the adapters retry such failures anyway.
  await warmUp(emulators.dynamoEndpoint).catch((error: unknown) => {
    if (process.env.AIRLOCK_TEST_DEBUG) console.error('DynamoDB Local warm-up failed:', error);
  });
  if (process.env.AIRLOCK_TEST_DEBUG) console.error(`emulators ready in ${Date.now() - started} ms`);
  project.provide('airlockEmulators', {
    dynamoEndpoint: emulators.dynamoEndpoint,
    s3Endpoint: emulators.s3Endpoint,
    s3Directory: emulators.s3Directory,
  });
  return () => emulators.stop();
}
