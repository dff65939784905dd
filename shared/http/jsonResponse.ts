/**
 * BigInt-safe JSON, per the public contract ("Int64 values may be JSON numbers when safe,
 * else strings"): a bigint inside the safe-integer range becomes a number, any other
 * bigint its decimal string. Plain `JSON.stringify` throws on a bigint, which would turn a
 * good answer into a 500.
 */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString();
  });
}

/** A JSON response (BigInt-safe, see {@link jsonText}). */
export function jsonResponse(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(jsonText(value), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}
