import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
import type { AirlockConcurrency, AirlockStackProps } from './AirlockStack.js';

/**
 * Reads the stack's options from CDK context (`cdk.json` or `cdk deploy -c key=value`):
 *
 * | key | value |
 * |---|---|
 * | `airlock:tableName`, `airlock:bucketName`, `airlock:auditBucketName` | physical names (default: generated) |
 * | `airlock:owner` | the person requests act as until tokens exist (default `owner`) |
 * | `airlock:protectedBranches` | list (or comma-separated) of branches / `prefix*` patterns |
 * | `airlock:concurrency` | `{"api":20,"runner":4,"stepExecutor":20,"ingest":4}` (object or JSON text), partial allowed |
 * | `airlock:ingestTarget` | the branch S3 uploads under `landing/` merge into (default `main`) |
 * | `airlock:ingestGate` | `protected` (default): an ingestion into a protected branch waits for approval; `none` merges |
 * | `airlock:auditRetentionDays` | Object Lock retention of audit anchors, days |
 * | `airlock:logRetentionDays` | log retention, one of CloudWatch's allowed values (e.g. 30, 365) |
 *
 * Values given with `-c` arrive as strings, so numbers, lists and objects are parsed here;
 * a malformed value fails the synth with a message naming the key.
 */
export function airlockPropsFromContext(node: Node): AirlockStackProps {
  const get = (key: string): unknown => node.tryGetContext(`airlock:${key}`);
  const text = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new Error(`airlock:${key} must be a string`);
    return v;
  };
  const number = (key: string): number | undefined => {
    const v = get(key);
    if (v === undefined || v === null || v === '') return undefined;
    const n = typeof v === 'number' ? v : Number(v);
    if (!Number.isFinite(n)) throw new Error(`airlock:${key} must be a number, got ${JSON.stringify(v)}`);
    return n;
  };
  const props: AirlockStackProps = {};
  const tableName = text('tableName');
  if (tableName) props.tableName = tableName;
  const bucketName = text('bucketName');
  if (bucketName) props.bucketName = bucketName;
  const auditBucketName = text('auditBucketName');
  if (auditBucketName) props.auditBucketName = auditBucketName;
  const owner = text('owner');
  if (owner) props.owner = owner;
  const ingestTarget = text('ingestTarget');
  const ingestGate = text('ingestGate');
  if (ingestGate !== undefined && ingestGate !== 'none' && ingestGate !== 'protected') {
    throw new Error(`airlock:ingestGate must be none or protected, got ${ingestGate}`);
  }
  if (ingestTarget || ingestGate) {
    props.ingest = {
      ...(ingestTarget ? { target: ingestTarget } : {}),
      ...(ingestGate ? { gate: ingestGate as 'none' | 'protected' } : {}),
    };
  }

  const branches = get('protectedBranches');
  if (branches !== undefined) {
    const list = typeof branches === 'string' ? branches.split(',').map((b) => b.trim()) : branches;
    if (!Array.isArray(list)) throw new Error('airlock:protectedBranches must be a list of branch names');
    props.protectedBranches = list as string[];
  }

  const concurrency = get('concurrency');
  if (concurrency !== undefined) {
    let value: unknown = concurrency;
    if (typeof concurrency === 'string') {
      try {
        value = JSON.parse(concurrency);
      } catch {
        throw new Error(`airlock:concurrency must be a JSON object, got ${concurrency}`);
      }
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('airlock:concurrency must be an object like {"api":20,"runner":4,"stepExecutor":20}');
    }
    const known = ['api', 'runner', 'stepExecutor', 'ingest'];
    const unknown = Object.keys(value).filter((k) => !known.includes(k));
    if (unknown.length > 0) throw new Error(`airlock:concurrency: unknown function ${unknown.join(', ')}`);
    props.concurrency = value as Partial<AirlockConcurrency>;
  }

  const auditRetentionDays = number('auditRetentionDays');
  if (auditRetentionDays !== undefined) props.auditRetentionDays = auditRetentionDays;
  const logRetentionDays = number('logRetentionDays');
  if (logRetentionDays !== undefined) {
    if (!Object.values(RetentionDays).includes(logRetentionDays as RetentionDays)) {
      throw new Error(
        `airlock:logRetentionDays ${logRetentionDays} is not a CloudWatch Logs retention (e.g. 30, 90, 365)`,
      );
    }
    props.logRetention = logRetentionDays as RetentionDays;
  }
  return props;
}
