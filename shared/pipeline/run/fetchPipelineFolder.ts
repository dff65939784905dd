import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { invalid, limitExceeded, notFound } from '../../errors/index.js';
import type { ObjectStore } from '../../store/ports.js';
import { assertObjectKey } from '../../store/objectKeys.js';

/** Limits of {@link fetchPipelineFolder}: a pipeline folder is code, not data. */
export const PIPELINE_FOLDER_LIMITS = { maxFiles: 2_000, maxBytes: 100 * 1024 * 1024 };

/**
 * The local folder that {@link fetchPipelineFolder} fills for `prefix` under `root`:
 * `<root>/<prefix>`. Deterministic, so a run started from an object-store folder records a
 * path from which {@link pipelinePrefixOf} gets the prefix back when the run is resumed
 * (in another process or Lambda container, where the folder must be fetched again).
 */
export function fetchedPipelineDir(root: string, prefix: string): string {
  return join(resolve(root), ...normalizePrefix(prefix).split('/').filter(Boolean));
}

/**
 * The object-store prefix a folder made by {@link fetchPipelineFolder} came from, or
 * `undefined` when `dir` is not under `root` (a pipeline that was run from local files).
 */
export function pipelinePrefixOf(dir: string, root: string): string | undefined {
  const rel = relative(resolve(root), resolve(dir));
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return undefined;
  return `${rel.split(sep).join('/')}/`;
}

/**
 * Copies the pipeline folder stored under `prefix` in an object store (e.g. the lake
 * bucket's `pipelines/daily/`, uploaded with `aws s3 sync`) to
 * {@link fetchedPipelineDir}, replacing whatever an earlier fetch left there, and returns
 * that directory. Keys ending in `/` (folder markers) are skipped. Refuses an empty
 * folder (NOT_FOUND), a prefix or key that could escape the directory (INVALID), and more
 * than {@link PIPELINE_FOLDER_LIMITS} files or bytes (LIMIT_EXCEEDED) before writing
 * anything.
 *
 * @example
 * const dir = await fetchPipelineFolder(lake.stores.objects, 'pipelines/daily/', '/tmp/airlock-pipelines');
 * await runner.start(actor, { pipelineDir: dir, branch: 'dev' });
 */
export async function fetchPipelineFolder(
  objects: ObjectStore,
  prefix: string,
  root: string,
  limits: { maxFiles: number; maxBytes: number } = PIPELINE_FOLDER_LIMITS,
): Promise<string> {
  const normalized = normalizePrefix(prefix);
  const files: { key: string; path: string }[] = [];
  let bytes = 0;
  for await (const o of objects.list(normalized)) {
    if (o.key.endsWith('/')) continue;
    files.push({ key: o.key, path: o.key.slice(normalized.length) });
    bytes += o.size;
    if (files.length > limits.maxFiles || bytes > limits.maxBytes) {
      throw limitExceeded(
        `the pipeline folder '${normalized}' has more than ${limits.maxFiles} files or ${limits.maxBytes} bytes`,
        { prefix: normalized, ...limits },
      );
    }
  }
  if (files.length === 0) throw notFound(`no pipeline folder at '${normalized}' (no objects under that prefix)`);
  for (const f of files) assertObjectKey(f.path);
  const dir = fetchedPipelineDir(root, normalized);
  await rm(dir, { recursive: true, force: true });
  for (const f of files) {
    const target = join(dir, ...f.path.split('/'));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, await objects.get(f.key));
  }
  return dir;
}

/** `a/b` → `a/b/`; refuses an empty, absolute or `..` prefix. */
function normalizePrefix(prefix: string): string {
  if (typeof prefix !== 'string' || prefix.replace(/\/+$/, '') === '') {
    throw invalid('a pipeline folder prefix is required, e.g. pipelines/daily/');
  }
  const trimmed = prefix.replace(/\/+$/, '');
  try {
    assertObjectKey(trimmed);
  } catch (error) {
    throw invalid(`invalid pipeline folder prefix '${prefix}'`, { prefix }, error);
  }
  return `${trimmed}/`;
}
