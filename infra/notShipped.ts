/**
 * What a Lambda bundle gets instead of a package it does not ship (see `NEVER_SHIPPED` in
 * `lambdaAssets.ts`): importing it works, calling it says why it is missing.
 */
export default function notShipped(): never {
  throw new Error('this package is not in the Lambda bundle: the embedded (SQLite) backend does not run on AWS');
}
