export { Catalog } from './Catalog.js';
export { canonicalJson, contentId, sha256Hex } from './canonical.js';
export { diffTrees } from './diffTrees.js';
export { mergeTrees, sameSchema } from './mergeTrees.js';
export { validateColumnName, validateRefName, validateTableName } from './names.js';
export { looksLikeCommitId, parseRef } from './refs.js';
export type {
  BranchInfo,
  CatalogOptions,
  CommitOptions,
  CommitResult,
  ConstraintValidator,
  LakeSettings,
  MergeOptions,
  MergeResult,
  ResolvedRef,
  TableChange,
  TableInfo,
} from './Catalog.js';
export type { ColumnChange, TableDiff } from './diffTrees.js';
export type { TableConflict, TreeMergeResult } from './mergeTrees.js';
export type { ParsedRef } from './refs.js';
export type {
  Actor,
  BranchEvent,
  BranchEventType,
  ColumnStats,
  Commit,
  CommitKind,
  DataFile,
  Field,
  FieldType,
  TableConstraints,
  TableOp,
  TableSchema,
  TableVersion,
  Tree,
} from './model.js';
