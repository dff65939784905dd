import { CfnOutput, Duration, RemovalPolicy, Size, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, type IRole, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Architecture,
  type Code,
  Function as LambdaFunction,
  FunctionUrlAuthType,
  Runtime,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { LambdaDestination } from 'aws-cdk-lib/aws-s3-notifications';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  EventType,
  ObjectLockRetention,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { type LambdaAssetSpec, lambdaCode } from './lambdaAssets.js';

/**
 * The Lambda runtime. Node 22, not Node 20 (deprecated by Lambda on 2026-04-30), nor 24
 * (not yet tested with the step sandbox's permission flags). The bundles target Node 20
 * syntax, so the same code runs locally on Node ≥ 20.
 */
export const RUNTIME = Runtime.NODEJS_22_X;

/** The index the DynamoDB catalog store queries by event time (`DYNAMO_TIME_INDEX`). */
const TIME_INDEX = 'byTime';

/** The code of `api`, `runner` and `ingest`: one asset, three entry files. */
export const DATA_PLANE_ASSET: LambdaAssetSpec = {
  name: 'data-plane',
  entries: { api: 'functions/api.ts', runner: 'functions/runner.ts', ingest: 'functions/ingest.ts' },
  // DuckDB (native), esbuild (native; the runner bundles code steps), apache-arrow (read
  // from disk when a step is bundled), parquet-wasm (loads its .wasm next to itself).
  packages: ['@duckdb/node-api', 'esbuild', 'apache-arrow', 'parquet-wasm'],
  // The sandbox harness, bundled in front of every code step by the runner.
  files: [
    'shared/pipeline/sandbox/harness.ts',
    'shared/pipeline/sandbox/protocol.ts',
    'shared/pipeline/sandbox/rowsToTable.ts',
  ],
};

/** The code of the step executor: no DuckDB, no lake code, only the sandbox. */
export const STEP_EXECUTOR_ASSET: LambdaAssetSpec = {
  name: 'step-executor',
  entries: { stepExecutor: 'functions/stepExecutor.ts' },
  packages: ['esbuild'],
};

/** Reserved concurrency of each function: a runaway caller cannot take the account's capacity. */
export interface AirlockConcurrency {
  api: number;
  runner: number;
  stepExecutor: number;
  ingest: number;
}

/** The object key prefix whose uploads are ingested (`landing/<namespace>/<table>/<file>`). */
export const LANDING_PREFIX = 'landing/';

/** Options of {@link AirlockStack}; `infra/app.ts` fills them from `cdk.json` context (`airlock:*`). */
export interface AirlockStackProps extends StackProps {
  /** Physical names; by default CloudFormation generates unique ones. */
  tableName?: string;
  bucketName?: string;
  auditBucketName?: string;
  /** The person requests act as until bearer tokens exist (`AIRLOCK_OWNER`; default `owner`). */
  owner?: string;
  /** Branch names or `prefix*` patterns that change only by merge (default `['main']`). */
  protectedBranches?: string[];
  /** Reserved concurrency caps (defaults: api 20, runner 4, step executor 20, ingest 4). */
  concurrency?: Partial<AirlockConcurrency>;
  /** Days a written audit anchor cannot be deleted or overwritten by anyone (default 365). */
  auditRetentionDays?: number;
  /** Retention of every function's log group (default one year). */
  logRetention?: RetentionDays;
  /**
   * S3-upload ingestion: the branch uploads merge into (default `main`) and whether an
   * ingestion into a protected branch waits for approval (`protected`) or merges (`none`,
   * default). See `shared/ingest`.
   */
  ingest?: { target?: string; gate?: 'none' | 'protected' };
}

export const DEFAULT_CONCURRENCY: AirlockConcurrency = { api: 20, runner: 4, stepExecutor: 20, ingest: 4 };

/**
 * Airlock in one AWS account: the DynamoDB catalog table, the lake bucket, the audit-anchor
 * bucket (S3 Object Lock, compliance mode), and the Lambda functions — `api` behind a
 * function URL, `runner` (asynchronous pipeline runs) and `step-executor` (one sandboxed
 * code step; its role has no data permission at all).
 *
 * Every stateful resource is retained when the stack is deleted, and every function has its
 * own role granting exactly the table and bucket actions its code performs. Every cdk-nag
 * finding that is accepted rather than fixed is acknowledged next to the resource, with the
 * reason.
 */
export class AirlockStack extends Stack {
  readonly table: Table;
  readonly lakeBucket: Bucket;
  readonly auditBucket: Bucket;
  readonly api: LambdaFunction;
  readonly runner: LambdaFunction;
  readonly stepExecutor: LambdaFunction;
  readonly ingest: LambdaFunction;

  constructor(scope: Construct, id: string, props: AirlockStackProps = {}) {
    super(scope, id, props);
    const concurrency = { ...DEFAULT_CONCURRENCY, ...props.concurrency };
    const ingestGate = props.ingest?.gate ?? 'protected';
    if (ingestGate !== 'none' && ingestGate !== 'protected') {
      throw new Error(`airlock:ingestGate must be none or protected, got ${String(ingestGate)}`);
    }
    for (const [name, n] of Object.entries(concurrency)) {
      if (!Number.isInteger(n) || n < 1)
        throw new Error(`airlock:concurrency.${name} must be a whole number ≥ 1, got ${n}`);
    }
    const protectedBranches = props.protectedBranches ?? ['main'];
    if (protectedBranches.length === 0 || protectedBranches.some((b) => typeof b !== 'string' || b === '')) {
      throw new Error('airlock:protectedBranches must be a non-empty list of branch names or patterns');
    }
    const auditRetentionDays = props.auditRetentionDays ?? 365;
    if (!Number.isInteger(auditRetentionDays) || auditRetentionDays < 1) {
      throw new Error(`airlock:auditRetentionDays must be a whole number ≥ 1, got ${auditRetentionDays}`);
    }
    const logRetention = props.logRetention ?? RetentionDays.ONE_YEAR;

    // ------------------------------------------------------------------ catalog table
    // The key schema is exactly the one `ensureDynamoTable` (shared/store/DynamoCatalogStore.ts)
    // creates and checks: pk/sk strings plus the LSI `byTime` on `t` (an LSI can only be
    // made with the table), so `airlock init` accepts this table as an Airlock catalog.
    this.table = new Table(this, 'CatalogTable', {
      ...(props.tableName ? { tableName: props.tableName } : {}),
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table.addLocalSecondaryIndex({
      indexName: TIME_INDEX,
      sortKey: { name: 't', type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });

    // ------------------------------------------------------------------ buckets
    const accessLogs = new Bucket(this, 'AccessLogsBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // S3 log delivery writes with the log-delivery group's ACL unless the CDK flag
      // serverAccessLogsUseBucketPolicy is set; ObjectWriter accepts both ways.
      objectOwnership: ObjectOwnership.OBJECT_WRITER,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This bucket receives the server access logs of the lake and audit buckets; logging it into itself would loop.',
    });

    this.lakeBucket = new Bucket(this, 'LakeBucket', {
      ...(props.bucketName ? { bucketName: props.bucketName } : {}),
      versioned: true,
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'lake/',
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.auditBucket = new Bucket(this, 'AuditAnchorBucket', {
      ...(props.auditBucketName ? { bucketName: props.auditBucketName } : {}),
      versioned: true,
      objectLockEnabled: true,
      // Compliance mode: no one, including the account root, can delete or overwrite an
      // anchor version before its retention ends — which is what makes the anchors evidence.
      objectLockDefaultRetention: ObjectLockRetention.compliance(Duration.days(auditRetentionDays)),
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'audit/',
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ------------------------------------------------------------------ functions
    const dataPlane = lambdaCode(DATA_PLANE_ASSET);
    const stepExecutorCode = lambdaCode(STEP_EXECUTOR_ASSET);
    const lakeEnvironment = {
      AIRLOCK_BACKEND: 'aws',
      AIRLOCK_DYNAMODB_TABLE: this.table.tableName,
      AIRLOCK_BUCKET: this.lakeBucket.bucketName,
      AIRLOCK_AUDIT_BUCKET: this.auditBucket.bucketName,
      AIRLOCK_OWNER: props.owner ?? 'owner',
      AIRLOCK_PROTECTED_BRANCHES: protectedBranches.join(','),
      // DuckDB looks for a home directory; /tmp is the only writable one in Lambda.
      HOME: '/tmp',
    };

    this.stepExecutor = this.fn('StepExecutor', {
      code: stepExecutorCode,
      handler: 'stepExecutor.handler',
      memoryMiB: 1024,
      timeout: Duration.minutes(5),
      concurrency: concurrency.stepExecutor,
      logRetention,
      // No environment: it is told nothing about the lake.
      environment: {},
    });
    Validations.of(this.stepExecutor).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: 'Only invoked synchronously by the runner, which records a failed step in the run log.',
    });

    this.api = this.fn('Api', {
      code: dataPlane,
      handler: 'api.handler',
      memoryMiB: 2048,
      timeout: Duration.seconds(90),
      ephemeralMiB: 2048,
      concurrency: concurrency.api,
      logRetention,
      environment: lakeEnvironment,
    });
    this.grantCatalog(this.api.role as IRole);
    this.grantLakeRead(this.api.role as IRole);
    // The write routes put lake objects (imported data files, run outputs, large idempotent
    // answers); a refused import deletes the data file it put, which only lives under data/.
    this.api.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteLakeObjects',
        actions: ['s3:PutObject'],
        resources: [this.lakeBucket.arnForObjects('*')],
      }),
    );
    this.api.addToRolePolicy(
      new PolicyStatement({
        sid: 'DeleteRefusedImports',
        actions: ['s3:DeleteObject'],
        resources: [this.lakeBucket.arnForObjects('data/*')],
      }),
    );
    const url = this.api.addFunctionUrl({ authType: FunctionUrlAuthType.NONE });
    Validations.of(this.api).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: 'Only invoked synchronously through its function URL; errors go back to the HTTP caller.',
    });

    const runnerFailures = new Queue(this, 'RunnerFailures', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    for (const id of ['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy']) {
      Validations.of(runnerFailures).acknowledge({
        id,
        reason: 'This queue is itself the failure destination of the runner; people read it, nothing consumes it.',
      });
    }
    this.runner = this.fn('Runner', {
      code: dataPlane,
      handler: 'runner.handler',
      memoryMiB: 3008,
      timeout: Duration.minutes(15),
      ephemeralMiB: 4096,
      concurrency: concurrency.runner,
      logRetention,
      environment: { ...lakeEnvironment, AIRLOCK_STEP_EXECUTOR_FUNCTION: this.stepExecutor.functionName },
    });
    // A retried start would start a second run: failures are recorded, and resumed on purpose.
    this.runner.configureAsyncInvoke({ retryAttempts: 0, onFailure: new SqsDestination(runnerFailures) });
    Validations.of(this.runner).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: 'Asynchronous failures go to the RunnerFailures on-failure destination, which also keeps the error.',
    });
    this.grantCatalog(this.runner.role as IRole);
    this.grantLakeRead(this.runner.role as IRole);
    this.runner.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteLakeObjects',
        actions: ['s3:PutObject'],
        resources: [this.lakeBucket.arnForObjects('*')],
      }),
    );
    this.runner.addToRolePolicy(
      new PolicyStatement({
        sid: 'DeleteStepTransfers',
        actions: ['s3:DeleteObject'],
        resources: [this.lakeBucket.arnForObjects('steps/*')],
      }),
    );
    // The unqualified function only (no `:*` for versions and aliases): the runner invokes it by name.
    this.runner.addToRolePolicy(
      new PolicyStatement({
        sid: 'InvokeStepExecutor',
        actions: ['lambda:InvokeFunction'],
        resources: [this.stepExecutor.functionArn],
      }),
    );
    const lakeObjects = `Resource::<${this.getLogicalId(this.lakeBucket.node.defaultChild as CfnBucket)}.Arn>`;
    for (const role of [this.api.role, this.runner.role]) {
      Validations.of(role as IRole).acknowledge({
        id: `AwsSolutions-IAM5[${lakeObjects}/*]`,
        reason:
          'Lake objects (Parquet data files, spilled manifests) have content-addressed keys not known at deploy time; the grant is limited to this one bucket and to the actions listed.',
      });
    }
    Validations.of(this.api.role as IRole).acknowledge({
      id: `AwsSolutions-IAM5[${lakeObjects}/data/*]`,
      reason:
        'An import refused after its data file was put deletes that file; data files get a fresh random key under data/.',
    });
    Validations.of(this.runner.role as IRole).acknowledge({
      id: `AwsSolutions-IAM5[${lakeObjects}/steps/*]`,
      reason: 'Step transfer objects get a fresh random key under steps/ per step; the runner deletes only those.',
    });

    // ------------------------------------------------------------------ ingestion
    // S3 invokes the function asynchronously per upload under landing/; Lambda retries a
    // failed invocation twice, then the event lands in the IngestFailures queue. Processing is
    // idempotent per (bucket, key, version id, sequencer), so retries and S3's own
    // duplicate deliveries import once (shared/ingest).
    const ingestFailures = new Queue(this, 'IngestFailures', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    for (const id of ['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy']) {
      Validations.of(ingestFailures).acknowledge({
        id,
        reason:
          'This queue is itself the dead-letter queue of the ingest function; people inspect and redrive it, nothing consumes it.',
      });
    }
    this.ingest = this.fn('Ingest', {
      code: dataPlane,
      handler: 'ingest.handler',
      memoryMiB: 2048,
      // Below the 15-minute lease after which another worker takes over an unfinished event.
      timeout: Duration.minutes(10),
      ephemeralMiB: 4096,
      concurrency: concurrency.ingest,
      logRetention,
      environment: {
        ...lakeEnvironment,
        AIRLOCK_INGEST_TARGET: props.ingest?.target ?? 'main',
        AIRLOCK_INGEST_GATE: ingestGate,
        AIRLOCK_INGEST_PERSON: 'ingest',
      },
    });
    this.ingest.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new SqsDestination(ingestFailures),
    });
    Validations.of(this.ingest).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'Failed S3 events go to the IngestFailures on-failure destination (the dead-letter queue), which also keeps the error and the event.',
    });
    this.grantCatalog(this.ingest.role as IRole);
    this.grantLakeRead(this.ingest.role as IRole);
    this.ingest.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadLandingVersions',
        actions: ['s3:GetObjectVersion'],
        resources: [this.lakeBucket.arnForObjects(`${LANDING_PREFIX}*`)],
      }),
    );
    // Imported Parquet files, spilled catalog documents, audit anchors — nothing else.
    this.ingest.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteLakeData',
        actions: ['s3:PutObject'],
        resources: ['data/*', 'meta/*', 'audit/anchors/*'].map((k) => this.lakeBucket.arnForObjects(k)),
      }),
    );
    // An import whose commit fails removes the data file it had just written.
    this.ingest.addToRolePolicy(
      new PolicyStatement({
        sid: 'DeleteUncommittedData',
        actions: ['s3:DeleteObject'],
        resources: [this.lakeBucket.arnForObjects('data/*')],
      }),
    );
    this.lakeBucket.addEventNotification(EventType.OBJECT_CREATED, new LambdaDestination(this.ingest), {
      prefix: LANDING_PREFIX,
    });
    // addEventNotification adds CDK's singleton custom resource that writes the bucket's
    // notification configuration (the direct way would make bucket and function depend on
    // each other). It runs at deploy time only.
    const notificationsHandler = this.node.children.find((c) => c.node.id.startsWith('BucketNotificationsHandler'));
    if (!notificationsHandler) throw new Error('expected the S3 notifications handler of addEventNotification');
    for (const c of [notificationsHandler, ...notificationsHandler.node.findAll()]) {
      Validations.of(c).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason:
          "CDK's own deploy-time handler that sets the lake bucket's notification configuration; it runs only during deployments and its role is made by aws-s3 (only logs via this managed policy, plus s3:PutBucketNotification).",
      });
    }
    for (const prefix of [`${LANDING_PREFIX}*`, 'data/*', 'meta/*', 'audit/anchors/*']) {
      Validations.of(this.ingest.role as IRole).acknowledge({
        id: `AwsSolutions-IAM5[${lakeObjects}/${prefix}]`,
        reason: `Keys under ${prefix.slice(0, -1)} are chosen at run time (uploaded files, random or content-addressed data keys); the grant is limited to this prefix of this bucket and the actions listed.`,
      });
    }
    Validations.of(this.ingest.role as IRole).acknowledge({
      id: `AwsSolutions-IAM5[${lakeObjects}/*]`,
      reason:
        'Reading lake objects (existing data files checked against unique keys, spilled manifests) needs the keys chosen at run time; read-only, this bucket only.',
    });

    for (const f of [this.api, this.runner, this.stepExecutor, this.ingest]) {
      for (const id of ['AwsSolutions-L1', 'Serverless-LambdaLatestVersion']) {
        Validations.of(f).acknowledge({
          id,
          reason: `${RUNTIME.name} on purpose: the code is built for and tested on Node 20/22, and the step sandbox relies on Node 22's --experimental-permission flag.`,
        });
      }
    }

    new CfnOutput(this, 'ApiUrl', { value: url.url, description: 'Function URL of the Airlock HTTP API (/v1/…)' });
    new CfnOutput(this, 'TableName', { value: this.table.tableName, description: 'AIRLOCK_DYNAMODB_TABLE' });
    new CfnOutput(this, 'BucketName', { value: this.lakeBucket.bucketName, description: 'AIRLOCK_BUCKET' });
    new CfnOutput(this, 'AuditBucketName', { value: this.auditBucket.bucketName });
    new CfnOutput(this, 'RunnerFunction', { value: this.runner.functionName });
    new CfnOutput(this, 'IngestFunction', {
      value: this.ingest.functionName,
      description: `Ingests uploads to s3://<BucketName>/${LANDING_PREFIX}<namespace>/<table>/<file>`,
    });
  }

  /** A function with its own role, log group, caps and tracing. */
  private fn(
    id: string,
    o: {
      code: Code;
      handler: string;
      memoryMiB: number;
      timeout: Duration;
      ephemeralMiB?: number;
      concurrency: number;
      logRetention: RetentionDays;
      environment: Record<string, string>;
    },
  ): LambdaFunction {
    const logGroup = new LogGroup(this, `${id}Logs`, {
      retention: o.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const role = new Role(this, `${id}Role`, { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    // Instead of the AWSLambdaBasicExecutionRole managed policy (logs on every group):
    // write to this function's own log group only.
    role.addToPolicy(
      new PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    const f = new LambdaFunction(this, id, {
      runtime: RUNTIME,
      architecture: Architecture.X86_64,
      code: o.code,
      handler: o.handler,
      role,
      memorySize: o.memoryMiB,
      timeout: o.timeout,
      ...(o.ephemeralMiB ? { ephemeralStorageSize: Size.mebibytes(o.ephemeralMiB) } : {}),
      reservedConcurrentExecutions: o.concurrency,
      logGroup,
      tracing: Tracing.ACTIVE,
      environment: o.environment,
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'X-Ray tracing: xray:PutTraceSegments and PutTelemetryRecords do not support resource-level permissions.',
    });
    return f;
  }

  /** Read and write catalog items: exactly the item operations of the DynamoDB catalog store. */
  private grantCatalog(role: IRole): void {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'CatalogItems',
        effect: Effect.ALLOW,
        actions: [
          'dynamodb:GetItem',
          'dynamodb:BatchGetItem',
          'dynamodb:Query',
          'dynamodb:PutItem',
          'dynamodb:DeleteItem',
          'dynamodb:BatchWriteItem',
          'dynamodb:ConditionCheckItem',
        ],
        resources: [this.table.tableArn, `${this.table.tableArn}/index/${TIME_INDEX}`],
      }),
    );
  }

  /** Read lake objects and list the bucket (without ListBucket a missing key reads as 403, not 404). */
  private grantLakeRead(role: IRole): void {
    role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'ListLake', actions: ['s3:ListBucket'], resources: [this.lakeBucket.bucketArn] }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'ReadLakeObjects',
        actions: ['s3:GetObject'],
        resources: [this.lakeBucket.arnForObjects('*')],
      }),
    );
  }
}
