import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/index.js';
import type { Actor } from '../catalog/index.js';
import { canonicalJson } from '../catalog/index.js';
import { conflict, denied, invalid, isAirlockError, isConflict, notFound } from '../errors/index.js';
import type { CatalogItem, CatalogStore, ItemKey } from '../store/ports.js';
import {
  APPROVAL_ACTIONS,
  type Approval,
  type ApprovalAction,
  type ApprovalInput,
  type ApprovalStatus,
  approvalHash,
  describeActor,
} from './model.js';

/**
 * Performs one kind of approved action. Registered per {@link ApprovalAction} (see
 * {@link Approvals.register}); `merge` comes built in through `mergeExecutor`.
 *
 * Exactly-once rests on two things the executor provides: `execute` must itself be
 * conditional on the approval's binding (it fails with CONFLICT when the bound state
 * moved, rather than acting on a different state), and `findExecuted` must recognise an
 * execution whose result was never recorded (a crash between executing and recording).
 */
export interface ApprovalExecutor {
  /** What moved since the request, one sentence each; empty while the binding still holds. */
  moved(approval: Approval): Promise<string[]>;
  /** Performs the action as the requester, approved by `approver`. Conditional on the binding. */
  execute(approval: Approval, approver: Actor): Promise<Record<string, unknown>>;
  /** The result of an execution that already happened (found in the lake), or undefined. */
  findExecuted?(approval: Approval): Promise<Record<string, unknown> | undefined>;
}

/** Something told about each new request (the lake's webhook). It must never throw. */
export interface ApprovalNotifier {
  notify(approval: Approval): Promise<{ delivered: boolean; attempts: number; error?: string } | undefined>;
}

/** Filter of {@link Approvals.list}. */
export interface ApprovalFilter {
  status?: ApprovalStatus;
  action?: ApprovalAction;
  /** Only requests by this person (with any of their agents). */
  requester?: string;
}

/** Options of {@link Approvals}. */
export interface ApprovalsOptions {
  /**
   * Whether `approver` may approve or reject `approval`, beyond the fixed rules (an agent
   * never may; nor the requester's person). The auth module supplies the role check.
   * Default: any person.
   */
  mayApprove?: (approver: Actor, approval: Approval) => boolean | Promise<boolean>;
  /** Executors by action (more can be added with {@link Approvals.register}). */
  executors?: Partial<Record<ApprovalAction, ApprovalExecutor>>;
  /** Where requests, approvals and rejections are recorded. */
  audit?: AuditLog;
  /** Told about every new request (never fails it). */
  notifier?: ApprovalNotifier;
  /**
   * How long an `approved` approval's execution is left to the process that claimed it
   * before another approve call recovers it (finds the executed action or runs it). Default 60 s.
   */
  leaseMs?: number;
  /** How long a racing approve call waits for the winner's result before returning it unfinished. Default 30 s. */
  waitMs?: number;
  now?: () => Date;
}

const PARTITION = 'approvals';
const HASH_PARTITION = 'approval-hash';
const MAX_DIFF_BYTES = 200 * 1024;
const MAX_TEXT = 2000;
const ID = /^[0-9a-f]{12}$/;
const approvalKey = (id: string): ItemKey => ({ pk: PARTITION, sk: id });
const hashKey = (hash: string): ItemKey => ({ pk: HASH_PARTITION, sk: hash });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Stored {
  approval: Approval;
  v: number;
}

function checkInput(input: ApprovalInput): ApprovalInput {
  if (!APPROVAL_ACTIONS.includes(input.action)) {
    throw invalid(`unknown approval action '${String(input.action)}' (one of ${APPROVAL_ACTIONS.join(', ')})`);
  }
  if (typeof input.target !== 'string' || input.target === '' || input.target.length > 512) {
    throw invalid('an approval needs a target (a non-empty name of at most 512 characters)');
  }
  const isObject = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObject(input.params)) throw invalid('approval params must be a JSON object');
  if (!isObject(input.binding) || Object.values(input.binding).some((v) => typeof v !== 'string')) {
    throw invalid('an approval binding maps names to strings (e.g. sourceCommit, targetHead)');
  }
  if (typeof input.summary !== 'string' || input.summary.trim() === '') throw invalid('an approval needs a summary');
  let diff = input.diff ?? null;
  const bytes = Buffer.byteLength(JSON.stringify(diff));
  if (bytes > MAX_DIFF_BYTES) {
    diff = { omitted: `the diff is ${bytes} bytes, over ${MAX_DIFF_BYTES}; see it with the dry run of the action` };
  }
  return {
    action: input.action,
    target: input.target,
    params: JSON.parse(canonicalJson(input.params)) as Record<string, unknown>,
    binding: { ...input.binding },
    summary: input.summary.slice(0, MAX_TEXT),
    diff,
  };
}

function checkActor(actor: Actor, role: string): void {
  if (typeof actor?.person !== 'string' || actor.person === '') throw invalid(`the ${role} must be a person`);
}

/** Just the person and agent: callers may pass richer actors (token id, scopes) that an approval must not keep. */
const bare = (actor: Actor): Actor =>
  actor.agent ? { person: actor.person, agent: actor.agent } : { person: actor.person };

/**
 * Approval requests for boundary-crossing actions, kept in the lake's {@link CatalogStore}
 * (SQLite, DynamoDB or memory alike):
 *
 * - `approvals` / `<id>`: one approval (its state changes by compare-and-set on `v`);
 * - `approval-hash` / `<hash>`: the approval currently holding a binding hash, so asking
 *   again for the same pending thing returns the same approval.
 *
 * The life of one approval, and why each step is safe under races and crashes:
 *
 *   pending ──approve──▶ approved (claimed: CAS on v) ──execute──▶ executed (CAS on v)
 *      │                     │ the executor's own write is conditional on the binding
 *      │                     └─ crash here: a later approve, once the lease ran out, asks
 *      │                        the executor whether the action already happened
 *      ├──binding moved──▶ void (says what moved)
 *      └──reject──▶ rejected
 *
 * Two approvers racing: both read `pending`; only one CAS to `approved` lands; the other
 * re-reads, waits for the winner's result and returns it. A replayed approve of an
 * `executed` approval is a no-op returning the stored result.
 *
 * @example
 * const approvals = new Approvals(store, { executors: { merge: mergeExecutor(catalog) }, audit });
 * const a = await approvals.request(bot, await prepareMergeApproval(catalog, 'agent/bot/fix', 'main'));
 * await approvals.approve({ person: 'bob' }, a.id); // merges once, as the bot, approved by bob
 */
export class Approvals {
  private readonly executors = new Map<ApprovalAction, ApprovalExecutor>();
  private readonly mayApprove: (approver: Actor, approval: Approval) => boolean | Promise<boolean>;
  private readonly audit: AuditLog | undefined;
  private readonly notifier: ApprovalNotifier | undefined;
  private readonly leaseMs: number;
  private readonly waitMs: number;
  private readonly now: () => Date;

  constructor(
    private readonly store: CatalogStore,
    options: ApprovalsOptions = {},
  ) {
    for (const [action, executor] of Object.entries(options.executors ?? {})) {
      if (executor) this.register(action as ApprovalAction, executor);
    }
    this.mayApprove = options.mayApprove ?? (() => true);
    this.audit = options.audit;
    this.notifier = options.notifier;
    this.leaseMs = options.leaseMs ?? 60_000;
    this.waitMs = options.waitMs ?? 30_000;
    this.now = options.now ?? (() => new Date());
  }

  /** Adds (or replaces) the executor of an action, e.g. the auth module's `grant`. */
  register(action: ApprovalAction, executor: ApprovalExecutor): this {
    if (!APPROVAL_ACTIONS.includes(action)) throw invalid(`unknown approval action '${action}'`);
    this.executors.set(action, executor);
    return this;
  }

  /**
   * Records a request for approval and returns it (status `pending`), or returns the
   * pending approval that already holds the same hash (asking twice creates one approval).
   * Audited as `approval.request`; the lake's webhook is told about a new one.
   */
  async request(requester: Actor, input: ApprovalInput): Promise<Approval> {
    checkActor(requester, 'requester');
    const checked = checkInput(input);
    const hash = approvalHash(checked);
    for (let attempt = 1; attempt <= 10; attempt++) {
      const index = await this.store.get(hashKey(hash));
      if (index) {
        const existing = await this.read(String(index.data.id));
        if (existing?.approval.status === 'pending') {
          await this.record(requester, 'approval.request', existing.approval, 'approval_required', { existing: true });
          return existing.approval;
        }
      }
      const approval: Approval = {
        id: randomBytes(6).toString('hex'),
        ...checked,
        hash,
        requester: bare(requester),
        status: 'pending',
        createdAt: this.now().toISOString(),
      };
      try {
        // One transaction: the approval and the hash index pointing at it. The index write
        // is conditional on what was read, so two requests of the same thing racing make
        // one approval; the loser re-reads and returns the winner's.
        await this.store.transact([
          { op: 'put', item: this.item(approval, 1), condition: { kind: 'absent' } },
          {
            op: 'put',
            item: { ...hashKey(hash), v: (index?.v ?? 0) + 1, data: { id: approval.id } },
            condition: index ? { kind: 'version', v: index.v ?? 0 } : { kind: 'absent' },
          },
        ]);
      } catch (e) {
        if (isConflict(e)) continue;
        throw e;
      }
      await this.record(requester, 'approval.request', approval, 'approval_required', {});
      const delivery = await this.notifier?.notify(approval).catch(() => undefined);
      if (delivery && this.audit) {
        await this.record(requester, 'approval.notify', approval, delivery.delivered ? 'ok' : 'error', {
          attempts: delivery.attempts,
          ...(delivery.error ? { error: delivery.error } : {}),
        });
      }
      return approval;
    }
    throw conflict(`could not record the approval request for ${checked.target}: it kept changing; retry`);
  }

  /** Approvals, newest first, optionally filtered. */
  async list(filter: ApprovalFilter = {}): Promise<Approval[]> {
    const out: Approval[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.query(PARTITION, { limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const item of page.items) {
        const a = item.data as unknown as Approval;
        if (filter.status && a.status !== filter.status) continue;
        if (filter.action && a.action !== filter.action) continue;
        if (filter.requester && a.requester.person !== filter.requester) continue;
        out.push(a);
      }
      cursor = page.cursor;
    } while (cursor);
    return out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  }

  /** One approval; NOT_FOUND when there is none with this id. */
  async get(id: string): Promise<Approval> {
    const stored = await this.read(id);
    if (!stored) throw notFound(`no approval '${id}' (see 'airlock approvals list')`, { approval: id });
    return stored.approval;
  }

  /**
   * Approves and executes, exactly once. DENIED for an agent, for the requester's own
   * person, and for anyone `mayApprove` refuses. CONFLICT when the approval was rejected,
   * voided or failed, and when what it is bound to moved (the approval becomes `void`
   * and the message says what moved). Approving an executed approval again returns it
   * unchanged (no second execution).
   */
  async approve(approver: Actor, id: string): Promise<Approval> {
    checkActor(approver, 'approver');
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const stored = await this.read(id);
      if (!stored) throw notFound(`no approval '${id}' (see 'airlock approvals list')`, { approval: id });
      const { approval } = stored;
      await this.authorize(approver, approval, 'approve');
      switch (approval.status) {
        case 'executed':
          await this.record(approver, 'approval.approve', approval, 'ok', { replay: true });
          return approval;
        case 'rejected':
        case 'void':
        case 'failed':
          throw conflict(`approval ${id} is ${approval.status}${approval.reason ? `: ${approval.reason}` : ''}`, {
            approval: id,
            status: approval.status,
          });
        case 'pending': {
          const executor = this.executor(approval.action);
          const moved = await executor.moved(approval);
          if (moved.length > 0) {
            await this.voidApproval(stored, approver, moved);
            continue; // re-read: reports the void (or what a racing approver did)
          }
          const claimed: Approval = {
            ...approval,
            status: 'approved',
            decidedBy: bare(approver),
            decidedAt: this.now().toISOString(),
            claim: { by: bare(approver), at: this.now().toISOString() },
          };
          if (!(await this.cas(stored, claimed))) continue; // another approver won: follow what they did
          await this.record(approver, 'approval.approve', claimed, 'approved', {});
          return this.execute({ approval: claimed, v: stored.v + 1 }, approver, executor);
        }
        case 'approved': {
          const claimedAt = Date.parse(approval.claim?.at ?? approval.decidedAt ?? approval.createdAt);
          if (this.now().getTime() - claimedAt < this.leaseMs) {
            // Another process is executing it right now: wait for its result.
            if (Date.now() >= deadline) return approval;
            await sleep(50);
            continue;
          }
          return this.recover(stored, approver);
        }
      }
    }
  }

  /**
   * Rejects a pending approval with a reason. The same people who may approve may reject
   * (never an agent, never the requester's person). CONFLICT once it is no longer pending.
   */
  async reject(approver: Actor, id: string, reason: string): Promise<Approval> {
    checkActor(approver, 'approver');
    if (typeof reason !== 'string' || reason.trim() === '') throw invalid('a rejection needs a reason');
    for (;;) {
      const stored = await this.read(id);
      if (!stored) throw notFound(`no approval '${id}' (see 'airlock approvals list')`, { approval: id });
      await this.authorize(approver, stored.approval, 'reject');
      if (stored.approval.status !== 'pending') {
        throw conflict(`approval ${id} is ${stored.approval.status}, not pending: it can no longer be rejected`, {
          approval: id,
          status: stored.approval.status,
        });
      }
      const rejected: Approval = {
        ...stored.approval,
        status: 'rejected',
        reason: reason.slice(0, MAX_TEXT),
        decidedBy: bare(approver),
        decidedAt: this.now().toISOString(),
      };
      if (!(await this.cas(stored, rejected))) continue;
      await this.record(approver, 'approval.reject', rejected, 'rejected', { reason: rejected.reason });
      return rejected;
    }
  }

  // ------------------------------------------------------------------ internals

  private executor(action: ApprovalAction): ApprovalExecutor {
    const executor = this.executors.get(action);
    if (!executor) throw invalid(`no executor is registered for '${action}' approvals in this process`);
    return executor;
  }

  /** The fixed rules first (agent, own request), then the injected role check. */
  private async authorize(approver: Actor, approval: Approval, verb: 'approve' | 'reject'): Promise<void> {
    const refuse = async (why: string) => {
      await this.record(approver, `approval.${verb}`, approval, 'denied', { why });
      throw denied(`${describeActor(approver)} may not ${verb} approval ${approval.id}: ${why}`, {
        approval: approval.id,
        person: approver.person,
        ...(approver.agent ? { agent: approver.agent } : {}),
      });
    };
    if (approver.agent !== undefined) return refuse('an agent can never approve or reject; a person must');
    if (approver.person === approval.requester.person) {
      return refuse(`it was requested by ${describeActor(approval.requester)}; another person must decide`);
    }
    if (!(await this.mayApprove(approver, approval))) return refuse('they do not hold the approver role');
  }

  /** Runs a claimed approval and records its result, or voids / fails it. */
  private async execute(stored: Stored, approver: Actor, executor: ApprovalExecutor): Promise<Approval> {
    const { approval } = stored;
    let result: Record<string, unknown>;
    try {
      result = await executor.execute(approval, approver);
    } catch (error) {
      // It may have happened after all (e.g. the write landed but its answer was lost).
      const found = await executor.findExecuted?.(approval).catch(() => undefined);
      if (found) return this.finish(stored, approver, found);
      if (isConflict(error)) {
        const moved = await executor.moved(approval).catch(() => []);
        const why = moved.length > 0 ? moved : [isAirlockError(error) ? error.message : String(error)];
        const voided = await this.voidApproval(stored, approver, why);
        throw conflict(`approval ${approval.id} is void: ${why.join('; ')}`, {
          approval: approval.id,
          status: voided?.status ?? 'void',
          moved: why,
        });
      }
      const failed: Approval = {
        ...approval,
        status: 'failed',
        reason: (error instanceof Error ? error.message : String(error)).slice(0, MAX_TEXT),
      };
      if (await this.cas(stored, failed)) {
        await this.record(approver, 'approval.execute', failed, 'error', { reason: failed.reason });
      }
      throw error;
    }
    return this.finish(stored, approver, result);
  }

  /** Records an execution's result (CAS from the claimed state); a racing recorder's result wins if first. */
  private async finish(stored: Stored, approver: Actor, result: Record<string, unknown>): Promise<Approval> {
    const executed: Approval = { ...stored.approval, status: 'executed', result };
    delete executed.claim;
    if (await this.cas(stored, executed)) {
      await this.record(approver, 'approval.execute', executed, 'ok', { result });
      return executed;
    }
    return this.get(stored.approval.id);
  }

  /**
   * An `approved` approval whose executor's lease ran out (its process died, or is very
   * slow): find the execution in the lake, or void it if the binding moved, or run it.
   * The order matters: "moved" is checked before "found", so an execution landing in
   * between is found rather than voided; running it again is safe because the executor's
   * write is conditional on the binding.
   */
  private async recover(stored: Stored, approver: Actor): Promise<Approval> {
    const executor = this.executor(stored.approval.action);
    const moved = await executor.moved(stored.approval);
    const found = await executor.findExecuted?.(stored.approval);
    if (found) return this.finish(stored, approver, found);
    if (moved.length > 0) {
      await this.voidApproval(stored, approver, moved);
      return this.approve(approver, stored.approval.id);
    }
    const reclaimed: Approval = { ...stored.approval, claim: { by: bare(approver), at: this.now().toISOString() } };
    if (!(await this.cas(stored, reclaimed))) return this.approve(approver, stored.approval.id);
    return this.execute({ approval: reclaimed, v: stored.v + 1 }, approver, executor);
  }

  private async voidApproval(stored: Stored, actor: Actor, moved: string[]): Promise<Approval | undefined> {
    const voided: Approval = {
      ...stored.approval,
      status: 'void',
      reason: moved.join('; ').slice(0, MAX_TEXT),
      decidedAt: this.now().toISOString(),
    };
    delete voided.claim;
    if (!(await this.cas(stored, voided))) return undefined;
    await this.record(actor, 'approval.void', voided, 'void', { moved });
    return voided;
  }

  private item(approval: Approval, v: number): CatalogItem {
    return { ...approvalKey(approval.id), v, data: approval as unknown as Record<string, unknown> };
  }

  private async read(id: string): Promise<Stored | undefined> {
    if (typeof id !== 'string' || !ID.test(id)) {
      throw invalid(`'${String(id)}' is not an approval id (12 hex characters, see 'airlock approvals list')`);
    }
    const item = await this.store.get(approvalKey(id));
    return item && { approval: item.data as unknown as Approval, v: item.v ?? 0 };
  }

  /** Compare-and-set of an approval: true when it landed, false when someone changed it first. */
  private async cas(stored: Stored, next: Approval): Promise<boolean> {
    try {
      await this.store.put(this.item(next, stored.v + 1), { kind: 'version', v: stored.v });
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  private async record(
    actor: Actor,
    action: string,
    approval: Approval,
    outcome: string,
    details: Record<string, unknown>,
  ): Promise<void> {
    if (!this.audit) return;
    await this.audit.append({
      person: actor.person,
      ...(actor.agent ? { agent: actor.agent } : {}),
      action,
      target: approval.target,
      outcome,
      requestHash: approval.hash,
      details: { approval: approval.id, action: approval.action, ...details },
    });
  }
}
