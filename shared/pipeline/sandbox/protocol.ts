/**
 * The wire format between the parent and a sandboxed step process. It is deliberately
 * tiny and has no dependency but the platform, because the harness side is bundled into
 * every step.
 *
 * stdin  : [u32 LE header length][header JSON][input 1 IPC bytes][input 2 IPC bytes]…
 * stdout : the output table as one Arrow IPC stream (nothing else; console is redirected)
 * stderr : the step's log lines (console.*, process.stdout/stderr writes, Node's own
 *          fatal messages such as a heap out-of-memory report)
 * fd 3   : control messages from the harness, one JSON object per line
 */

/** What the parent asks the harness to do. */
export type SandboxMode = 'run' | 'describe';

/** The JSON header at the start of stdin. */
export interface SandboxRequestHeader {
  mode: SandboxMode;
  params: Record<string, string>;
  /** Inputs in the order their bytes follow the header. */
  inputs: Array<{ name: string; bytes: number }>;
}

/** An error as the harness reports it: plain data, it crossed a process boundary. */
export interface SerializedStepError {
  name: string;
  message: string;
  code?: string;
  causeCode?: string;
  causeMessage?: string;
  stack?: string;
  /** Where the error happened: loading the step module, or inside `run`/conversion. */
  phase: 'load' | 'describe' | 'run' | 'output';
}

/** A control message on fd 3. */
export type ControlMessage =
  /** The step module has loaded; the process waits for (or is reading) its request. */
  | { type: 'ready' }
  | { type: 'describe'; spec: unknown }
  | { type: 'ok'; rows: number; bytes: number }
  | { type: 'error'; error: SerializedStepError };

/** File descriptor of the control channel in the child. */
export const CONTROL_FD = 3;

/** Frames a request for stdin: header then the inputs' IPC bytes, in order. */
export function encodeRequest(
  mode: SandboxMode,
  params: Record<string, string>,
  inputs: Array<{ name: string; ipc: Uint8Array }>,
): Uint8Array[] {
  const header: SandboxRequestHeader = {
    mode,
    params,
    inputs: inputs.map((i) => ({ name: i.name, bytes: i.ipc.byteLength })),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, json.byteLength, true);
  return [len, json, ...inputs.map((i) => i.ipc)];
}

/** Splits a framed request back into its header and its inputs' IPC bytes (views, no copy). */
export function decodeRequest(bytes: Uint8Array): {
  header: SandboxRequestHeader;
  inputs: Array<{ name: string; ipc: Uint8Array }>;
} {
  if (bytes.byteLength < 4) throw new Error('sandbox request is truncated');
  const len = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + len))) as SandboxRequestHeader;
  let at = 4 + len;
  const inputs = header.inputs.map((i) => {
    const ipc = bytes.subarray(at, at + i.bytes);
    at += i.bytes;
    return { name: i.name, ipc };
  });
  if (at !== bytes.byteLength) throw new Error('sandbox request length mismatch');
  return { header, inputs };
}
