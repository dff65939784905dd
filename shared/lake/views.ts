import type { Commit, TableVersion } from '../catalog/index.js';

/**
 * The JSON of one table at a ref, shared by the CLI, HTTP and MCP: the shape `airlock table show --json` prints
 * (`name`, `version`, `rowCount`, `bytes`, `files`, `schema.fields[{name,type,nullable,tags}]`,
 * `constraints`, `ref`).
 */
export function tableView(name: string, ref: string, id: string, version: TableVersion) {
  return {
    name,
    version: id,
    rowCount: version.rowCount,
    bytes: version.bytes,
    files: version.files.length,
    schema: version.schema,
    constraints: version.constraints,
    ref,
  };
}

/** The JSON of one commit in a history: the shape of each entry of `airlock log --json`. */
export function logEntryView(c: Commit) {
  return {
    id: c.id,
    parents: c.parents,
    author: c.author,
    agent: c.agent,
    message: c.message,
    time: c.time,
    kind: c.kind,
    runId: c.runId,
  };
}
