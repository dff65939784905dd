/**
 * The in-sandbox half of a code step. This file is bundled (with apache-arrow) in front
 * of every step and runs inside the sandboxed child process only — never in the parent.
 * It owns stdin/stdout/fd 3; the step gets a console that writes to stderr, so nothing the
 * step prints can corrupt the output stream.
 */
import { writeSync } from 'node:fs';
import { RecordBatch, Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import { CONTROL_FD, type ControlMessage, decodeRequest, type SerializedStepError } from './protocol.js';
import { rowsToTable } from './rowsToTable.js';

type Phase = SerializedStepError['phase'];

function serializeError(e: unknown, phase: Phase): SerializedStepError {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause as { code?: unknown; message?: unknown } | undefined;
    const out: SerializedStepError = { name: e.name, message: e.message, phase };
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    if (cause && typeof cause === 'object') {
      if (typeof cause.code === 'string') out.causeCode = cause.code;
      if (typeof cause.message === 'string') out.causeMessage = cause.message;
    }
    if (typeof e.stack === 'string') out.stack = e.stack;
    return out;
  }
  return { name: 'Error', message: `a non-Error value was thrown: ${String(e)}`, phase };
}

function control(message: ControlMessage): void {
  const text = `${JSON.stringify(message)}\n`;
  writeSync(CONTROL_FD, text);
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

function toTable(result: unknown): Table {
  if (result instanceof Table) return result;
  if (result instanceof RecordBatch) return new Table(result);
  if (Array.isArray(result)) return rowsToTable(result as Record<string, unknown>[]);
  const what = result === null ? 'null' : typeof result;
  throw new Error(`run() must return an Arrow Table or an array of row objects, but returned ${what}`);
}

/** The static part of a step, as plain JSON for the parent to validate. */
function describe(step: Record<string, unknown>): unknown {
  return {
    output: step.output,
    inputs: step.inputs,
    expect: step.expect,
    hasRun: typeof step.run === 'function',
  };
}

/**
 * Runs the harness: load the step while reading the request, then describe it or run it
 * and write its output. Every failure becomes one `error` control message and exit code 1.
 */
export async function runHarness(load: () => Promise<unknown>): Promise<void> {
  const writeStdout = process.stdout.write.bind(process.stdout);
  // The step's console and stdout writes become log lines on stderr.
  globalThis.console = new console.Console({ stdout: process.stderr, stderr: process.stderr });
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    (process.stderr.write as (...a: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stdout.write;

  let phase: Phase = 'load';
  let failed = false;
  const fail = (e: unknown) => {
    if (failed) return;
    failed = true;
    try {
      control({ type: 'error', error: serializeError(e, phase) });
    } finally {
      process.exit(1);
    }
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);

  try {
    // The step module loads while the parent is still preparing the request (a process
    // may be started ahead of its inputs), so neither waits for the other. A load error
    // is reported once the request is in, under phase 'load'.
    const loading = load();
    loading.then(() => control({ type: 'ready' })).catch(() => undefined);
    const { header, inputs } = decodeRequest(await readStdin());
    const mod = (await loading) as { default?: unknown };
    const step = mod.default;
    if (step === null || typeof step !== 'object') {
      throw new Error(
        'a code step must `export default { output, inputs, run }`; this module has no default export object',
      );
    }
    if (header.mode === 'describe') {
      phase = 'describe';
      control({ type: 'describe', spec: describe(step as Record<string, unknown>) });
      process.exit(0);
    }
    phase = 'run';
    const run = (step as { run?: unknown }).run;
    if (typeof run !== 'function') throw new Error('the default export has no run(inputs, { params }) function');
    const tables: Record<string, Table> = Object.create(null);
    for (const input of inputs) tables[input.name] = tableFromIPC(input.ipc);
    const params = Object.freeze({ ...header.params });
    const result: unknown = await run.call(step, tables, { params });
    phase = 'output';
    const table = toTable(result);
    const bytes = tableToIPC(table, 'stream');
    await new Promise<void>((resolve, reject) =>
      writeStdout(bytes, (err?: Error | null) => (err ? reject(err) : resolve())),
    );
    control({ type: 'ok', rows: table.numRows, bytes: bytes.byteLength });
    process.exit(0);
  } catch (e) {
    fail(e);
  }
}
