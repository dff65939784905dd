export { DuckDbConstraintValidator } from './DuckDbConstraintValidator.js';
export { duckdbType, fieldTypeOf, sqlIdent, sqlString } from './duckdbTypes.js';
export { withConnection } from './duckdbSession.js';
export { exportRows, tableRelationSql } from './exportTable.js';
export { checkUniqueIn, inputFormat, normaliseColumnName, prepareImport } from './importFile.js';
export type { ImportRequest, InputFormat, PreparedImport } from './importFile.js';
