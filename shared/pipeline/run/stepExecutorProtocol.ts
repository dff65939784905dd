import type { ErrorCode } from '../../errors/index.js';
import type { SandboxLimits } from '../sandbox/index.js';

/**
 * The request the orchestrator sends to the step-executor Lambda. The executor has no
 * data permissions: it gets the step's bundled code inline, each input either inline
 * (small) or as a short-lived presigned GET URL for one exact key, and the output slot as
 * a presigned PUT URL for one exact key.
 */
export interface StepExecutorEvent {
  step: {
    /** The step's file name, for messages. */
    name: string;
    /** Content hash of the bundle. */
    hash: string;
    /** The bundled step (harness + step + its imports): one self-contained ES module. */
    code: string;
  };
  /** Inputs by name: Arrow IPC stream bytes, base64 inline or at a presigned GET URL. */
  inputs: Array<{ name: string; url: string } | { name: string; inline: string }>;
  /** Where the output (Arrow IPC stream) goes: a presigned PUT URL, or back inline in the response. */
  output: { url: string } | { inline: true };
  params: Record<string, string>;
  limits?: Partial<SandboxLimits>;
}

/** The executor's answer. Step failures are data (with the sandbox's details), not Lambda errors. */
export type StepExecutorResult =
  | {
      ok: true;
      /** Bytes of the output's Arrow IPC stream. */
      bytes: number;
      logs: string[];
      durationMs: number;
      warnings: string[];
      /** The output, base64, when the request asked for it inline. */
      inline?: string;
    }
  | { ok: false; error: { code: ErrorCode; message: string; details?: Record<string, unknown> } };

/**
 * Largest data carried inline (raw bytes, before base64's 4/3): keeps a request or
 * response under Lambda's 6 MB synchronous payload limit with room for the code.
 */
export const INLINE_LIMIT_BYTES = 3 * 1024 * 1024;
