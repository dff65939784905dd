import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirlockError, invalid, isAirlockError } from '../shared/errors/index.js';
import type { StepExecutorEvent, StepExecutorResult } from '../shared/pipeline/run/stepExecutorProtocol.js';
import { INLINE_LIMIT_BYTES } from '../shared/pipeline/run/stepExecutorProtocol.js';
import { runCodeStep } from '../shared/pipeline/sandbox/index.js';

const NAME = /^[A-Za-z_$][A-Za-z0-9_$]{0,62}$/;

/** Checks the event's shape; the executor trusts nothing it is sent. */
function validate(event: StepExecutorEvent): void {
  const e = event as Partial<StepExecutorEvent> | null;
  if (!e || typeof e !== 'object') throw invalid('step executor: the event is not an object');
  if (
    !e.step ||
    typeof e.step.code !== 'string' ||
    typeof e.step.name !== 'string' ||
    typeof e.step.hash !== 'string'
  ) {
    throw invalid('step executor: step {name, hash, code} is required');
  }
  if (!Array.isArray(e.inputs)) throw invalid('step executor: inputs must be an array');
  for (const input of e.inputs as unknown[]) {
    const i = (input ?? {}) as Record<string, unknown>;
    if (!NAME.test(String(i.name))) throw invalid('step executor: every input needs an identifier name');
    if (typeof i.url !== 'string' && typeof i.inline !== 'string') {
      throw invalid(`step executor: input ${String(i.name)} has neither url nor inline data`);
    }
    if (typeof i.url === 'string' && !/^https?:\/\//.test(i.url)) {
      throw invalid(`step executor: input ${String(i.name)} url is not http(s)`);
    }
  }
  if (!e.output || !('url' in e.output || 'inline' in e.output))
    throw invalid('step executor: output {url} or {inline: true} is required');
  if (e.params && typeof e.params !== 'object') throw invalid('step executor: params must be an object');
}

async function fetchInput(name: string, url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok)
    throw new AirlockError('INTERNAL', `step executor: input ${name} could not be read (HTTP ${res.status})`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * The step-executor Lambda. Its role has no data permissions: it reads inputs and writes
 * the output only through the presigned URLs (or inline bytes) in the event, and runs the
 * step in the same child-process sandbox as the embedded runner (permission model, empty
 * environment, memory and time limits; network and PID namespaces where the runtime
 * allows them). Step failures come back as `{ ok: false, error }` with the sandbox's
 * details, so the orchestrator records them exactly as it does locally.
 *
 * Each step spawns its own process (no `SandboxPool` here, unlike `airlock serve`): Lambda
 * freezes the container as soon as the handler returns, so a pool's background refill
 * would only run during the next invocation — on that step's critical path — or delay
 * this response. (The runner Lambda runs no step processes at all: its executor invokes
 * this function.)
 */
export async function handler(event: StepExecutorEvent): Promise<StepExecutorResult> {
  let dir: string | undefined;
  try {
    validate(event);
    dir = await mkdtemp(join(tmpdir(), 'airlock-step-'));
    const file = join(dir, `${event.step.hash.replace(/[^0-9a-f]/gi, '').slice(0, 32) || 'step'}.mjs`);
    await writeFile(file, event.step.code);
    const inputs: Record<string, Uint8Array> = {};
    await Promise.all(
      event.inputs.map(async (i) => {
        inputs[i.name] = 'url' in i ? await fetchInput(i.name, i.url) : new Uint8Array(Buffer.from(i.inline, 'base64'));
      }),
    );
    const result = await runCodeStep({
      bundle: { file, step: event.step.name, hash: event.step.hash, cached: false },
      inputs,
      params: event.params ?? {},
      ...(event.limits ? { limits: event.limits } : {}),
    });
    const bytes = result.outputIpc.byteLength;
    const done = {
      ok: true as const,
      bytes,
      logs: result.logs,
      durationMs: result.durationMs,
      warnings: result.warnings,
    };
    if ('url' in event.output) {
      const res = await fetch(event.output.url, { method: 'PUT', body: result.outputIpc });
      if (!res.ok)
        throw new AirlockError('INTERNAL', `step executor: the output could not be written (HTTP ${res.status})`);
      return done;
    }
    if (bytes > INLINE_LIMIT_BYTES) {
      throw new AirlockError(
        'LIMIT_EXCEEDED',
        `step ${event.step.name} output is ${bytes} bytes; more than ${INLINE_LIMIT_BYTES} needs an output URL`,
      );
    }
    return { ...done, inline: Buffer.from(result.outputIpc).toString('base64') };
  } catch (e) {
    const error = isAirlockError(e) ? e : new AirlockError('INTERNAL', e instanceof Error ? e.message : String(e));
    return { ok: false, error: error.toJSON() };
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}
