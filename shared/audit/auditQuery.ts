/**
 * Parsing of the "why did this happen" filters shared by every interface (`airlock audit
 * log --since 2h --actor ann/bot`, HTTP, MCP), so they read the same everywhere.
 */
import { AirlockError } from '../errors/index.js';

/** Filters of {@link AuditLog.log}. All given filters must match. */
export interface AuditLogQuery {
  /** Entries at or after this time (ISO-8601, or a Date). */
  since?: string | Date;
  /** Entries of this person (any agent), or exactly this person and agent. */
  actor?: { person: string; agent?: string };
  /** Exact action, or a prefix ending in `*` (`branch.*`). */
  action?: string;
  /** Exact target. */
  target?: string;
  /** Exact outcome (`denied`, `approval_required`…). */
  outcome?: string;
  /** At most this many entries, newest first (default 50). */
  limit?: number;
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * The instant `text` names: an ISO-8601 date or time (`2024-05-01`, `2024-05-01T10:00Z`),
 * or a duration before `now` (`90s`, `15m`, `2h`, `7d`, `1w`). Throws `USAGE` otherwise.
 *
 * @example
 * parseSince('2h', new Date('2024-05-01T12:00:00Z')) // → 2024-05-01T10:00:00.000Z
 */
export function parseSince(text: string, now: Date = new Date()): Date {
  const trimmed = text.trim();
  const ago = /^(\d+)\s*([smhdw])$/i.exec(trimmed);
  if (ago) {
    const unit = UNITS[(ago[2] as string).toLowerCase()] as number;
    return new Date(now.getTime() - Number(ago[1]) * unit);
  }
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(trimmed)) {
    const date = new Date(/[T ]/.test(trimmed) && !/(Z|[+-]\d{2}:?\d{2})$/.test(trimmed) ? `${trimmed}Z` : trimmed);
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw new AirlockError(
    'USAGE',
    `--since expects an ISO-8601 time (2024-05-01, 2024-05-01T10:00:00Z) or a duration ago (15m, 2h, 7d), got '${text}'`,
  );
}

/**
 * The actor `person` or `person/agent` names. Agent names may hold slashes
 * (`ann/ci/nightly` is person `ann`, agent `ci/nightly`).
 */
export function parseActor(text: string): { person: string; agent?: string } {
  const at = text.indexOf('/');
  const person = at < 0 ? text : text.slice(0, at);
  const agent = at < 0 ? undefined : text.slice(at + 1);
  if (person === '' || agent === '') {
    throw new AirlockError('USAGE', `--actor expects person or person/agent, got '${text}'`);
  }
  return agent === undefined ? { person } : { person, agent };
}
