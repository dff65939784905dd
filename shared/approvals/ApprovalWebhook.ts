import type { AuditLog } from '../audit/index.js';
import type { Actor, TableDiff } from '../catalog/index.js';
import { sha256Hex } from '../catalog/index.js';
import { conflict, denied, invalid, isConflict } from '../errors/index.js';
import type { CatalogStore, ItemKey } from '../store/ports.js';
import type { ApprovalNotifier } from './Approvals.js';
import { mergeDiffSummary } from './mergeExecutor.js';
import { type Approval, describeActor } from './model.js';

/** The body POSTed to the lake's webhook for each new approval request. */
export interface ApprovalWebhookBody {
  /** Plain text: chat incoming webhooks (Slack, Google Chat, Teams' simple cards) render it as the message. */
  text: string;
  approval: {
    id: string;
    action: string;
    target: string;
    requester: Actor;
    summary: string;
    diffSummary: string;
  };
  commands: { approve: string; reject: string };
}

/** What a delivery came to. */
export interface WebhookDelivery {
  delivered: boolean;
  attempts: number;
  /** HTTP status of the last attempt, when one answered. */
  status?: number;
  error?: string;
}

/** Options of {@link ApprovalWebhook}. */
export interface ApprovalWebhookOptions {
  /** The lake's owner: who may set the webhook unless `mayConfigure` says otherwise. */
  owner: string;
  /** Whether `actor` may set or unset the webhook. Default: the owner, acting as themself. */
  mayConfigure?: (actor: Actor) => boolean | Promise<boolean>;
  /** Timeout of one POST (default 3 s). */
  timeoutMs?: number;
  /** POSTs before giving up (default 3). */
  attempts?: number;
  /** Delay before the second attempt, doubled each time (default 250 ms). */
  backoffMs?: number;
  /** Replaces `fetch` (tests). */
  fetch?: typeof fetch;
  /** Where changes of the webhook are recorded (its URL redacted: chat webhook URLs are secrets). */
  audit?: AuditLog;
  now?: () => Date;
}

const KEY: ItemKey = { pk: 'config', sk: 'approvals-webhook' };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Checks a webhook URL: absolute http(s), no other scheme. Returns it normalised. */
export function checkWebhookUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(`'${text}' is not a URL; give an absolute http(s) URL such as https://hooks.example.com/T0/B0/x`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalid(`the webhook must be an http(s) URL, not ${url.protocol.replace(/:$/, '')}`);
  }
  return url.toString();
}

/** The URL with its path and query hidden: chat webhook URLs are secrets (their path is the key). */
export function redactWebhookUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}/…`;
}

/** A short text of an approval's diff: merges list their tables; other actions give their diff compactly. */
export function diffSummaryOf(approval: Approval): string {
  const diff = approval.diff as { changes?: unknown } | null;
  if (approval.action === 'merge' && diff && Array.isArray(diff.changes)) {
    return mergeDiffSummary(diff.changes as TableDiff[]);
  }
  const text = JSON.stringify(approval.diff ?? null);
  return text.length > 500 ? `${text.slice(0, 499)}…` : text;
}

/** The webhook body of an approval. */
export function webhookBody(approval: Approval): ApprovalWebhookBody {
  const approve = `airlock approvals approve ${approval.id}`;
  const reject = `airlock approvals reject ${approval.id} --reason "…"`;
  const diffSummary = diffSummaryOf(approval);
  return {
    text: [
      `Approval needed: ${describeActor(approval.requester)} asks to ${approval.summary}`,
      diffSummary,
      `Approve: ${approve}`,
      `Reject: ${reject}`,
    ].join('\n'),
    approval: {
      id: approval.id,
      action: approval.action,
      target: approval.target,
      requester: approval.requester,
      summary: approval.summary,
      diffSummary,
    },
    commands: { approve, reject },
  };
}

/**
 * The lake's approval webhook (one per lake, kept in the catalog store as
 * `config` / `approvals-webhook`): each new approval request is POSTed to it as JSON
 * ({@link ApprovalWebhookBody}). Delivery never fails the request: each POST has a
 * bounded timeout, failures are retried a few times with doubling backoff, and the
 * outcome is returned (and audited by {@link Approvals}) rather than thrown.
 *
 * @example
 * await new ApprovalWebhook(store, { owner }).set(owner, 'https://hooks.slack.com/services/…');
 */
export class ApprovalWebhook implements ApprovalNotifier {
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly post: typeof fetch;
  private readonly now: () => Date;

  constructor(
    private readonly store: CatalogStore,
    private readonly options: ApprovalWebhookOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.attempts = Math.max(1, options.attempts ?? 3);
    this.backoffMs = options.backoffMs ?? 250;
    this.post = options.fetch ?? fetch;
    this.now = options.now ?? (() => new Date());
  }

  /** The configured webhook, or undefined. */
  async get(): Promise<{ url: string; updatedBy: string; updatedAt: string } | undefined> {
    const item = await this.store.get(KEY);
    if (!item || typeof item.data.url !== 'string') return undefined;
    return { url: item.data.url, updatedBy: String(item.data.updatedBy), updatedAt: String(item.data.updatedAt) };
  }

  /** Sets the lake's webhook (INVALID unless http(s); DENIED unless `mayConfigure`). */
  async set(actor: Actor, url: string): Promise<{ url: string }> {
    const checked = checkWebhookUrl(url);
    await this.authorize(actor);
    await this.write(actor, { url: checked });
    await this.record(actor, 'approvals.webhook.set', { url: redactWebhookUrl(checked) });
    return { url: checked };
  }

  /** Removes the lake's webhook; true when one was set. */
  async unset(actor: Actor): Promise<boolean> {
    await this.authorize(actor);
    const had = (await this.get()) !== undefined;
    await this.write(actor, {});
    await this.record(actor, 'approvals.webhook.unset', { removed: had });
    return had;
  }

  /** POSTs the approval to the webhook, if one is set. Never throws. */
  async notify(approval: Approval): Promise<WebhookDelivery | undefined> {
    let url: string | undefined;
    try {
      url = (await this.get())?.url;
    } catch (e) {
      return { delivered: false, attempts: 0, error: `could not read the webhook: ${String(e)}` };
    }
    if (!url) return undefined;
    const body = JSON.stringify(webhookBody(approval));
    let last: WebhookDelivery = { delivered: false, attempts: 0 };
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      if (attempt > 1) await sleep(this.backoffMs * 2 ** (attempt - 2));
      try {
        const response = await this.post(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'airlock-approvals' },
          body,
          signal: AbortSignal.timeout(this.timeoutMs),
          redirect: 'error',
        });
        await response.body?.cancel().catch(() => undefined);
        if (response.ok) return { delivered: true, attempts: attempt, status: response.status };
        last = { delivered: false, attempts: attempt, status: response.status, error: `HTTP ${response.status}` };
        // A client error other than rate limiting will not get better by retrying.
        if (response.status >= 400 && response.status < 500 && response.status !== 429) return last;
      } catch (e) {
        const cause = (e as { cause?: { code?: string } }).cause?.code;
        last = {
          delivered: false,
          attempts: attempt,
          error: `${redactWebhookUrl(url)}: ${e instanceof Error ? e.message : String(e)}${cause ? ` (${cause})` : ''}`,
        };
      }
    }
    return last;
  }

  private async record(actor: Actor, action: string, details: Record<string, unknown>): Promise<void> {
    await this.options.audit?.append({
      person: actor.person,
      ...(actor.agent ? { agent: actor.agent } : {}),
      action,
      target: 'approvals-webhook',
      outcome: 'ok',
      requestHash: sha256Hex(JSON.stringify({ action, details })),
      details,
    });
  }

  private async authorize(actor: Actor): Promise<void> {
    const may = this.options.mayConfigure
      ? await this.options.mayConfigure(actor)
      : actor.agent === undefined && actor.person === this.options.owner;
    if (!may) {
      throw denied(`${describeActor(actor)} may not change the approval webhook`, { person: actor.person });
    }
  }

  private async write(actor: Actor, data: { url?: string }): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.store.get(KEY);
      try {
        await this.store.put(
          {
            ...KEY,
            v: (current?.v ?? 0) + 1,
            data: { ...data, updatedBy: actor.person, updatedAt: this.now().toISOString() },
          },
          current ? { kind: 'version', v: current.v ?? 0 } : { kind: 'absent' },
        );
        return;
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
    throw conflict('the approval webhook kept changing; retry');
  }
}
