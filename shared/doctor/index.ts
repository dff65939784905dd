/**
 * `airlock doctor`: the pre-launch safety checklist (agents read-only by default,
 * protected branches, finite caps, the approval gate, the audit chain and its anchors,
 * personal data tagged and masked, expiring tokens, people with roles).
 */
export { doctorSourcesOf } from './doctorSources.js';
export { luhnValid, piiKindOfName, piiKindOfValue, piiKindOfValues } from './piiDetection.js';
export { runDoctor } from './runDoctor.js';
export { tagColumns } from './tagColumns.js';

export type { DoctorLake } from './doctorSources.js';
export type { PiiKind } from './piiDetection.js';
export type { DoctorAuthView, DoctorCheck, DoctorReport, DoctorSources } from './runDoctor.js';
