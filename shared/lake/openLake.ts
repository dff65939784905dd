import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { AirlockError, invalid, notFound } from '../errors/index.js';
import type { CatalogStore, ObjectStore } from '../store/ports.js';

/** Where a lake lives: a local directory (embedded) or a DynamoDB table plus an S3 bucket. */
export type LakeLocation = { backend: 'local'; dir: string } | { backend: 'aws'; table: string; bucket: string };

/** The marker file of an embedded lake. */
export interface LakeManifest {
  format: 'airlock-lake';
  version: 1;
  id: string;
  owner: string;
  created: string;
}

/** The opened stores of a lake, and where to stage new data files. */
export interface LakeStores {
  location: LakeLocation;
  store: CatalogStore;
  objects: ObjectStore;
  /** A directory on the same filesystem as the object store where possible (zero-copy moves). */
  stagingDir: string;
  /** The person the embedded CLI acts as when no token is given. */
  owner: string;
}

/**
 * Reads the lake location from flags and the environment, per the public contract:
 * `--lake DIR` or `AIRLOCK_LAKE` (default `./.airlock`); `AIRLOCK_BACKEND=aws` with
 * `AIRLOCK_DYNAMODB_TABLE` and `AIRLOCK_BUCKET`.
 */
/**
 * The protected-branch patterns a deployment asks for: `AIRLOCK_PROTECTED_BRANCHES`,
 * comma-separated (e.g. `main,release/*`), empty when unset.
 */
export function protectedBranchesFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.AIRLOCK_PROTECTED_BRANCHES ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

export function lakeLocation(flags: { lake?: string }, env: NodeJS.ProcessEnv = process.env): LakeLocation {
  const backend = env.AIRLOCK_BACKEND ?? 'local';
  if (backend === 'aws') {
    const table = env.AIRLOCK_DYNAMODB_TABLE;
    const bucket = env.AIRLOCK_BUCKET;
    if (!table || !bucket) {
      throw invalid('AIRLOCK_BACKEND=aws needs AIRLOCK_DYNAMODB_TABLE and AIRLOCK_BUCKET');
    }
    return { backend: 'aws', table, bucket };
  }
  if (backend !== 'local') throw invalid(`unknown AIRLOCK_BACKEND '${backend}' (use local or aws)`);
  return { backend: 'local', dir: resolve(flags.lake ?? env.AIRLOCK_LAKE ?? '.airlock') };
}

const MANIFEST = 'lake.json';

/**
 * Opens a lake's stores. With `create`, makes the directory / table / bucket when missing
 * (`airlock init`); otherwise a location that is not a lake is a clear NOT_FOUND.
 * AWS adapters are imported lazily so embedded commands never load the AWS SDK.
 */
export async function openLakeStores(location: LakeLocation, options: { create?: boolean } = {}): Promise<LakeStores> {
  if (location.backend === 'local') return openLocal(location, !!options.create);
  const [{ openDynamoCatalogStore, ensureDynamoTable, createDynamoDbClient }, s3] = await Promise.all([
    import('../store/DynamoCatalogStore.js'),
    import('../store/S3ObjectStore.js'),
  ]);
  const client = createDynamoDbClient();
  const s3client = s3.createS3Client();
  if (options.create) {
    await ensureDynamoTable(client, location.table);
    await s3.ensureBucket(s3client, location.bucket);
  }
  const stagingDir = join(tmpdir(), 'airlock-staging');
  mkdirSync(stagingDir, { recursive: true });
  return {
    location,
    store: openDynamoCatalogStore({ tableName: location.table, client }),
    objects: s3.openS3ObjectStore({ bucket: location.bucket, client: s3client }),
    stagingDir,
    owner: process.env.AIRLOCK_OWNER ?? 'owner',
  };
}

async function openLocal(location: { backend: 'local'; dir: string }, create: boolean): Promise<LakeStores> {
  const { dir } = location;
  const manifestPath = join(dir, MANIFEST);
  let manifest: LakeManifest;
  if (existsSync(manifestPath)) {
    try {
      manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as LakeManifest;
    } catch (e) {
      throw new AirlockError('INVALID', `${manifestPath} is not valid JSON: the lake marker is damaged`, { cause: e });
    }
    if (manifest.format !== 'airlock-lake')
      throw invalid(`${dir} is not an Airlock lake (${MANIFEST} has another format)`);
  } else if (!create) {
    const exists = existsSync(dir);
    throw notFound(
      exists
        ? `${dir} is not an Airlock lake (no ${MANIFEST}); run 'airlock init --lake ${dir}' or pick another --lake`
        : `no lake at ${dir}; run 'airlock init' first (or set --lake / AIRLOCK_LAKE)`,
      { lake: dir },
    );
  } else {
    manifest = createManifest(dir, manifestPath);
  }
  const [{ openSqliteCatalogStore }, { openLocalObjectStore }] = await Promise.all([
    import('../store/SqliteCatalogStore.js'),
    import('../store/LocalObjectStore.js'),
  ]);
  const stagingDir = join(dir, 'staging');
  mkdirSync(stagingDir, { recursive: true });
  return {
    location,
    store: openSqliteCatalogStore(join(dir, 'catalog.db')),
    objects: openLocalObjectStore(join(dir, 'objects')),
    stagingDir,
    owner: manifest.owner,
  };
}

/** Writes a new lake's marker; a concurrent `init` that won the race is reused. */
function createManifest(dir: string, manifestPath: string): LakeManifest {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw invalid(`${dir} exists and is not empty; refusing to turn it into a lake`, { lake: dir });
  }
  mkdirSync(dir, { recursive: true });
  const manifest: LakeManifest = {
    format: 'airlock-lake',
    version: 1,
    id: randomUUID(),
    owner: safeUser(),
    created: new Date().toISOString(),
  };
  try {
    writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx' });
    return manifest;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return JSON.parse(readFileSync(manifestPath, 'utf8')) as LakeManifest;
  }
}

function safeUser(): string {
  try {
    return userInfo().username || 'owner';
  } catch {
    return 'owner';
  }
}
