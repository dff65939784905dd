import { Hono } from 'hono';
import { type APIGatewayProxyResult, type LambdaContext, type LambdaEvent, handle } from 'hono/aws-lambda';
import { GuardedLake } from '../shared/auth/index.js';
import { bearerActor, guardedHttpLake, inRequestScope } from '../shared/auth/http.js';
import { openApprovals } from '../shared/approvals/index.js';
import { type HttpApp, createHttpApp, errorResponse } from '../shared/http/index.js';
import { Lake } from '../shared/lake/Lake.js';

/**
 * The lake and its HTTP app, opened once per Lambda container from the environment
 * (`AIRLOCK_BACKEND=aws`, `AIRLOCK_DYNAMODB_TABLE`, `AIRLOCK_BUCKET`, as the CLI reads
 * them). A failed open is forgotten so that the next request tries again, rather than the
 * container failing every request until Lambda recycles it.
 */
let opened: Promise<HttpApp> | undefined;
function app(): Promise<HttpApp> {
  opened ??= Lake.openFromEnv().then(
    (lake) => {
      // As `airlock serve`: bearer tokens only (401 without one), every operation through the guard.
      const { approvals } = openApprovals(lake, {
        audit: false,
        mayApprove: (approver, approval) => guard.mayApprove(approver, approval.target, approval.action),
      });
      const guard: GuardedLake = new GuardedLake(lake, { approvals });
      for (const [action, executor] of Object.entries(guard.approvalExecutors())) {
        approvals.register(action as 'grant' | 'export' | 'unmask', executor);
      }
      // Runs go through the guard too; pipeline folders come from the lake bucket only (no server paths).
      // Decisions under /v1/approvals: the approver is the bearer token's actor, and the
      // service audits them itself (they do not pass through the guard).
      const { approvals: decisions } = openApprovals(lake, {
        mayApprove: (approver, approval) => guard.mayApprove(approver, approval.target, approval.action),
        executors: guard.approvalExecutors(),
      });
      return createHttpApp({
        lake: guardedHttpLake(guard),
        actorFor: bearerActor(guard),
        pipelines: { runs: guard },
        approvals: decisions,
      });
    },
    (error: unknown) => {
      opened = undefined;
      throw error;
    },
  );
  return opened;
}

/** Hands every request to the lake's app; a lake that cannot be opened answers with the usual error body. */
const front = new Hono();
front.onError((error) => errorResponse(error));
front.all('*', (c) => inRequestScope(async () => (await app()).fetch(c.req.raw)));

const lambdaHandler = handle(front);

/**
 * The `api` Lambda behind the function URL (payload format 2.0): the SAME Hono app that
 * `airlock serve` runs (`shared/http/createHttpApp.ts`), adapted by `hono/aws-lambda`, so
 * a request gets the same status, headers and body through either. Text and JSON bodies
 * are returned as text, other media types (Arrow IPC) base64-encoded.
 */
export function handler(event: LambdaEvent, context?: LambdaContext): Promise<APIGatewayProxyResult> {
  return lambdaHandler(event, context);
}
