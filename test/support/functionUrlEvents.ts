/**
 * Lambda function-URL request events (payload format 2.0), shaped as Lambda delivers them,
 * for tests that invoke the api handler directly.
 */
import { randomUUID } from 'node:crypto';

const HOST = 'abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws';

/** One request: method, path, query string, headers, and a body sent as text or base64. */
export interface UrlCall {
  method: string;
  path: string;
  query?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Send the body base64-encoded, as function URLs do for non-text content types. */
  base64?: boolean;
}

/**
 * A function-URL event for `call`.
 *
 * @example
 * const res = await handler(functionUrlEvent({ method: 'GET', path: '/v1/branches', headers: auth }));
 */
export function functionUrlEvent<E>(call: UrlCall): E {
  const now = new Date();
  const query = call.query ?? '';
  const apiId = HOST.split('.')[0] as string;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: call.path,
    rawQueryString: query,
    headers: { host: HOST, 'x-forwarded-proto': 'https', 'user-agent': 'vitest', ...(call.headers ?? {}) },
    ...(query ? { queryStringParameters: Object.fromEntries(new URLSearchParams(query)) } : {}),
    requestContext: {
      accountId: 'anonymous',
      apiId,
      domainName: HOST,
      domainPrefix: apiId,
      http: {
        method: call.method,
        path: call.path,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.7',
        userAgent: 'vitest',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(call.body !== undefined
      ? { body: call.base64 ? Buffer.from(call.body).toString('base64') : call.body, isBase64Encoded: !!call.base64 }
      : { isBase64Encoded: false }),
  } as unknown as E;
}
