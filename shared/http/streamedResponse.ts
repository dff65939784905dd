/** Writes one chunk of a streamed body; resolves when the client can take more (backpressure). */
export type WriteChunk = (chunk: Uint8Array | string) => Promise<void>;

/** Bytes buffered for a slow client before the producer is paused. */
const HIGH_WATER_MARK = 256 * 1024;

/** Raised into the producer when the client went away, so the query stops early. */
class ClientGone extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientGone';
  }
}

/**
 * Runs a producer that writes a response body piece by piece, and resolves to a
 * streaming `Response` as soon as the first byte exists.
 *
 * Why wait for the first byte: a query refused by the engine (bad SQL, unknown ref, a
 * cap) fails before it writes anything, and then the caller must still be able to
 * answer with a proper status and JSON error body. So a failure before the first byte
 * rejects the returned promise; a failure after it (a timeout mid-result) can no longer
 * change the status and instead aborts the body, which a client sees as a broken chunked
 * transfer, never as a complete but short result.
 *
 * Backpressure: `write` resolves only once the client has drained the buffer below
 * {@link HIGH_WATER_MARK} bytes, and rejects when the client disconnects, so the
 * producer (and the engine behind it) stops instead of running on for nobody.
 */
export async function streamedResponse(
  produce: (write: WriteChunk) => Promise<void>,
  init: { status?: number; headers: Record<string, string> },
  onLateError: (error: unknown) => void = () => {},
): Promise<Response> {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let resume: (() => void) | undefined;
  let gone = false;
  const wake = () => {
    const r = resume;
    resume = undefined;
    r?.();
  };
  const body = new ReadableStream<Uint8Array>(
    {
      start: (c) => {
        controller = c;
      },
      pull: wake,
      cancel: () => {
        gone = true;
        wake();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_MARK }),
  );

  let started = false;
  let markStarted!: () => void;
  const firstByte = new Promise<void>((resolve) => {
    markStarted = resolve;
  });
  const write: WriteChunk = async (chunk) => {
    if (gone) throw new ClientGone();
    const bytes = typeof chunk === 'string' ? encoder.encode(chunk) : chunk;
    if (bytes.byteLength === 0) return;
    controller.enqueue(bytes);
    if (!started) {
      started = true;
      markStarted();
    }
    while (!gone && (controller.desiredSize ?? 1) <= 0) {
      await new Promise<void>((r) => {
        resume = r;
      });
    }
    if (gone) throw new ClientGone();
  };

  const done = produce(write).then(
    () => {
      if (!gone) controller.close();
    },
    (error: unknown) => {
      if (!started) throw error;
      if (!gone) {
        controller.error(error);
        onLateError(error);
      }
    },
  );
  await Promise.race([firstByte, done]);
  return new Response(body, { status: init.status ?? 200, headers: init.headers });
}
