// Runs s3rver in its own Node process, started with --openssl-legacy-provider: s3rver 3.x
// encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node ≥ 17) only
// offers through the legacy provider. Without it any truncated listing (> 1,000 keys, or
// MaxKeys) fails with InternalError. Prints one JSON line {port, directory} when ready,
// and exits when its stdin closes (so it never outlives the test run that started it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

const directory = mkdtempSync(join(tmpdir(), 'airlock-s3rver-'));
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(process.env.S3RVER_PORT ?? 0),
  directory,
  silent: true,
  configureBuckets: [],
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port, directory })}\n`);

const stop = async () => {
  await server.close().catch(() => undefined);
  rmSync(directory, { recursive: true, force: true });
  process.exit(0);
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
