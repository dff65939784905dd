import type { Actor } from '../catalog/model.js';
import { conflict, denied, invalid, isConflict } from '../errors/index.js';
import type { CatalogItem, CatalogStore, ItemKey } from '../store/ports.js';
import { CAP_NAMES, type CapName, checkCapValue, checkCaps, isCapName } from './capValues.js';
import { DEFAULT_CAPS, type QueryCaps } from './types.js';

/** Where an effective cap comes from: the person's override, the lake's setting, or the safe default. */
export type CapSource = 'person' | 'lake' | 'default';

/** The caps that apply to a person (or to anyone without an override), and where each comes from. */
export interface EffectiveCaps {
  /** The person resolved for, or `null` for the lake-wide view (lake setting ▸ default). */
  person: string | null;
  /** The caps a query gets, every one finite. */
  caps: QueryCaps;
  /** Where each cap comes from. */
  sources: Record<CapName, CapSource>;
  /** The lake-wide settings (only the caps that are set). */
  lake: Partial<QueryCaps>;
  /** The person's overrides (only the caps that are set; empty for the lake-wide view). */
  override: Partial<QueryCaps>;
}

/** Which settings a change applies to: the whole lake, or one person (with all their agents). */
export interface CapScope {
  /** A person; absent for the lake-wide setting. */
  person?: string;
}

/** Options of {@link CapSettings}. */
export interface CapSettingsOptions {
  /** The lake's owner: the person who may change caps until users and roles exist. */
  owner: string;
  /** The caps used where neither the lake nor the person sets one (default {@link DEFAULT_CAPS}). */
  defaults?: QueryCaps;
  /** Clock for `updatedAt` (tests). */
  now?: () => Date;
  /** Compare-and-set attempts before giving up under contention (default 10). */
  maxCasAttempts?: number;
}

/** Partition of the lake's settings in the catalog store. */
const CONFIG_PK = 'config';
/** The lake-wide caps. */
const LAKE_KEY: ItemKey = { pk: CONFIG_PK, sk: 'caps' };
/** One person's overrides (one item per person, so no item grows with the number of persons). */
const personKey = (person: string): ItemKey => ({ pk: CONFIG_PK, sk: `caps#person#${person}` });

const MAX_PERSON_LENGTH = 256;

/**
 * Decides whether `actor` may change caps. The one place this is decided: when users and
 * roles arrive (issue 6) this function is what changes. Today the lake's owner may, when
 * acting as themself; an agent never may (an agent does at most what its person can, and
 * raising its own limits is exactly what an agent must not do), nor anyone else.
 */
export function mayChangeCaps(actor: Actor, owner: string): boolean {
  return actor.agent === undefined && actor.person === owner;
}

function checkPerson(person: string): string {
  if (typeof person !== 'string' || person.trim() === '' || person.length > MAX_PERSON_LENGTH) {
    throw invalid(`a person must be a non-empty name of at most ${MAX_PERSON_LENGTH} characters`, { person });
  }
  if (/[\u0000-\u001f\u007f]/.test(person)) throw invalid('a person name must not hold control characters');
  return person;
}

/** The caps stored in an item, checked: a damaged item is an error, never silently "no cap". */
function storedCaps(item: CatalogItem | undefined): Partial<QueryCaps> {
  if (!item) return {};
  const caps = item.data.caps;
  if (typeof caps !== 'object' || caps === null || Array.isArray(caps)) {
    throw invalid(`the caps item ${item.pk}/${item.sk} is damaged (no caps object); set the caps again`);
  }
  try {
    return checkCaps(caps as Record<string, unknown>);
  } catch (e) {
    throw invalid(
      `the caps item ${item.pk}/${item.sk} holds an invalid value; set the caps again`,
      { item: item.sk },
      e,
    );
  }
}

/**
 * Query caps configured per lake and per person, kept in the lake's {@link CatalogStore}
 * (so the embedded SQLite lake and the DynamoDB lake behave alike):
 *
 * - `config` / `caps`: the lake-wide setting, `{ caps: {maxRows?, …} }`;
 * - `config` / `caps#person#<person>`: that person's overrides.
 *
 * A query's caps resolve cap by cap as person override ▸ lake setting ▸ safe default,
 * with ONE consistent read of both items. Agents draw on their person's caps (callers
 * resolve for `actor.person`). Every change is a compare-and-set on the item's version
 * (`absent` for a new item), retried on conflict, so two concurrent changes to different
 * caps both land and none is lost. Values are checked: every cap is a finite whole number
 * ≥ 1 (see `checkCapValue`). Who may change them is decided by {@link mayChangeCaps}.
 *
 * @example
 * const settings = new CapSettings(store, { owner: lake.owner });
 * await settings.set(owner, { person: 'ann' }, { maxRows: 500 });
 * const { caps, sources } = await settings.effective('ann'); // maxRows 500 from 'person'
 */
export class CapSettings {
  private readonly owner: string;
  private readonly defaults: QueryCaps;
  private readonly now: () => Date;
  private readonly maxCasAttempts: number;

  constructor(
    private readonly store: CatalogStore,
    options: CapSettingsOptions,
  ) {
    this.owner = options.owner;
    this.defaults = { ...(options.defaults ?? DEFAULT_CAPS) };
    for (const name of CAP_NAMES) checkCapValue(name, this.defaults[name]);
    this.now = options.now ?? (() => new Date());
    this.maxCasAttempts = options.maxCasAttempts ?? 10;
  }

  /**
   * The caps of `person` (override ▸ lake ▸ default), or, without a person, the lake-wide
   * caps (lake ▸ default) that every person without an override gets.
   */
  async effective(person?: string): Promise<EffectiveCaps> {
    const keys = person === undefined ? [LAKE_KEY] : [LAKE_KEY, personKey(checkPerson(person))];
    const items = await this.store.getMany(keys);
    const lake = storedCaps(items.find((i) => i.sk === LAKE_KEY.sk));
    const override = person === undefined ? {} : storedCaps(items.find((i) => i.sk === personKey(person).sk));
    const caps = { ...this.defaults };
    const sources = {} as Record<CapName, CapSource>;
    for (const name of CAP_NAMES) {
      const own = override[name];
      const shared = lake[name];
      caps[name] = own ?? shared ?? this.defaults[name];
      sources[name] = own !== undefined ? 'person' : shared !== undefined ? 'lake' : 'default';
    }
    return { person: person ?? null, caps, sources, lake, override };
  }

  /**
   * Sets caps lake-wide or for one person (other caps of that scope are kept). Values are
   * checked first (INVALID naming the cap); the actor must pass {@link mayChangeCaps}
   * (DENIED otherwise). Returns the new effective caps of the scope.
   */
  async set(actor: Actor, scope: CapScope, changes: Partial<Record<CapName, unknown>>): Promise<EffectiveCaps> {
    const checked = checkCaps(changes as Record<string, unknown>);
    if (Object.keys(checked).length === 0) {
      throw invalid(`give at least one cap to set (${CAP_NAMES.join(', ')})`);
    }
    return this.change(actor, scope, (current) => ({ ...current, ...checked }));
  }

  /**
   * Removes caps from a scope so they fall back to the next level (a person's to the lake
   * setting, the lake's to the default); no names removes every cap of the scope.
   * Returns the new effective caps of the scope.
   */
  async unset(actor: Actor, scope: CapScope, names: readonly string[] = []): Promise<EffectiveCaps> {
    for (const name of names) {
      if (!isCapName(name)) {
        throw invalid(`unknown cap '${name}'; the caps are ${CAP_NAMES.join(', ')}`, { cap: name });
      }
    }
    return this.change(actor, scope, (current) => {
      if (names.length === 0) return {};
      const next = { ...current };
      for (const name of names) delete next[name as CapName];
      return next;
    });
  }

  private async change(
    actor: Actor,
    scope: CapScope,
    update: (current: Partial<QueryCaps>) => Partial<QueryCaps>,
  ): Promise<EffectiveCaps> {
    if (!mayChangeCaps(actor, this.owner)) {
      throw denied(
        `${actor.agent ? `agent ${actor.agent} of ${actor.person}` : actor.person} may not change query caps; only the lake's owner (${this.owner}) may`,
        { person: actor.person, ...(actor.agent ? { agent: actor.agent } : {}) },
      );
    }
    const person = scope.person === undefined ? undefined : checkPerson(scope.person);
    const key = person === undefined ? LAKE_KEY : personKey(person);
    for (let attempt = 0; attempt < this.maxCasAttempts; attempt++) {
      const current = await this.store.get(key);
      const next: CatalogItem = {
        ...key,
        v: (current?.v ?? 0) + 1,
        data: {
          caps: update(storedCaps(current)),
          ...(person === undefined ? {} : { person }),
          updatedBy: actor.person,
          updatedAt: this.now().toISOString(),
        },
      };
      try {
        // Written only if nobody changed the item since it was read: a concurrent change
        // to another cap makes this attempt fail and retry on top of it, never erase it.
        await this.store.put(next, current ? { kind: 'version', v: current.v ?? 0 } : { kind: 'absent' });
        return this.effective(person);
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
    throw conflict(`the caps of ${person ?? 'the lake'} kept changing under ${this.maxCasAttempts} attempts; retry`, {
      item: key.sk,
    });
  }
}
