import { AuditLog } from '../audit/index.js';
import { AuthDirectory, Authority, defaultAgentScopes, ROLES } from '../auth/index.js';
import type { Catalog } from '../catalog/index.js';
import { CapSettings } from '../query/index.js';
import type { CatalogStore, ObjectStore } from '../store/ports.js';
import type { DoctorSources } from './runDoctor.js';

/** What the doctor reads of a lake (a `Lake` has all of it). */
export interface DoctorLake {
  catalog: Catalog;
  stores: { store: CatalogStore; objects: ObjectStore };
  owner: string;
}

/** The checklist's sources for a lake: its people, tokens and masks (auth), caps and audit trail. */
export function doctorSourcesOf(
  lake: DoctorLake,
  options: Pick<DoctorSources, 'now' | 'anchorMaxAgeMs' | 'sampleRows'> = {},
): DoctorSources {
  const { store, objects } = lake.stores;
  const directory = new AuthDirectory(store);
  const authority = new Authority(directory, lake.owner);
  return {
    catalog: lake.catalog,
    store,
    objects,
    owner: lake.owner,
    caps: new CapSettings(store, { owner: lake.owner }),
    audit: new AuditLog(store, objects),
    auth: {
      people: () => directory.people(),
      tokens: () => directory.tokens(),
      mayApprove: (person, branch) => authority.mayApprove({ person }, branch),
      maskKind: async () => (await directory.settings()).maskKind,
      defaultAgentScopes,
      roles: ROLES,
    },
    ...options,
  };
}
