/**
 * The CDK stack, synthesized in-process: every property the deployment promises is read
 * back from the CloudFormation template, then cdk-nag's AWS Solutions and Serverless
 * packs run over the construct tree. A last test runs `cdk synth` the way users do.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AirlockStack, DATA_PLANE_ASSET, STEP_EXECUTOR_ASSET } from '../infra/AirlockStack.js';
import { buildLambdaAsset } from '../infra/lambdaAssets.js';
import { airlockPropsFromContext } from '../infra/context.js';
import { DYNAMO_TIME_INDEX } from '../shared/store/DynamoCatalogStore.js';

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

const CAPS = { api: 7, runner: 3, stepExecutor: 11, ingest: 5 };
const REPO = join(import.meta.dirname, '..');

let stack: AirlockStack;
let template: Template;
let resources: Record<string, Resource>;
const id = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);

/** The function whose handler is `handler`, with its logical id. */
function fn(handler: string): { id: string; props: Record<string, unknown> } {
  const found = Object.entries(template.findResources('AWS::Lambda::Function', { Properties: { Handler: handler } }));
  expect(found).toHaveLength(1);
  const [logicalId, r] = found[0] as [string, Resource];
  return { id: logicalId, props: r.Properties };
}

/** Every statement of every policy attached to the role `roleId`. */
function statementsOf(roleId: string): Statement[] {
  const role = resources[roleId] as Resource;
  const inline = ((role.Properties.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
    (p) => p.PolicyDocument.Statement,
  );
  const attached = Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => JSON.stringify((p as Resource).Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap((p) => ((p as Resource).Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  return [...inline, ...attached];
}

const actionsOf = (statements: Statement[]) =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();

/** The role logical id of a function (its `Role: {Fn::GetAtt: [id, 'Arn']}`). */
function roleOf(props: Record<string, unknown>): string {
  return ((props.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'] as [string, string])[0];
}

describe('AirlockStack (synthesized template)', () => {
  beforeAll(() => {
    // Staging would copy the ~120 MB code directories into the output: the template does
    // not change with it, and the `cdk synth` test below stages for real.
    const app = new App({ context: { 'aws:cdk:disable-asset-staging': true } });
    stack = new AirlockStack(app, 'AirlockTest', { concurrency: CAPS, auditRetentionDays: 400 });
    template = Template.fromStack(stack);
    resources = template.toJSON().Resources as Record<string, Resource>;
  }, 600_000);

  it('keeps the catalog in an on-demand table with the store key schema, PITR and deletion protection, retained', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 't', AttributeType: 'S' },
        ]),
        LocalSecondaryIndexes: [
          {
            IndexName: DYNAMO_TIME_INDEX,
            KeySchema: [
              { AttributeName: 'pk', KeyType: 'HASH' },
              { AttributeName: 't', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    });
  });

  it('makes the lake bucket versioned, encrypted, private, logged and retained', () => {
    const lake = resources[id(stack.lakeBucket)] as Resource;
    expect(lake.DeletionPolicy).toBe('Retain');
    expect(lake.Properties).toMatchObject({
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LoggingConfiguration: { LogFilePrefix: 'lake/' },
    });
  });

  it('refuses every non-TLS request to the lake and audit buckets', () => {
    for (const bucket of [stack.lakeBucket, stack.auditBucket]) {
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id(bucket) },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 's3:*',
              Principal: { AWS: '*' },
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  it('locks audit anchors in compliance mode for the configured retention', () => {
    const audit = resources[id(stack.auditBucket)] as Resource;
    expect(audit.DeletionPolicy).toBe('Retain');
    expect(audit.Properties).toMatchObject({
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } },
      },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, RestrictPublicBuckets: true },
    });
    expect((resources[id(stack.lakeBucket)] as Resource).Properties.ObjectLockEnabled).toBeUndefined();
  });

  it('gives a function URL to the api function only, without IAM auth (Airlock checks bearer tokens itself)', () => {
    const urls = Object.values(template.findResources('AWS::Lambda::Url')) as Resource[];
    expect(urls).toHaveLength(1);
    expect(urls[0]?.Properties).toMatchObject({
      AuthType: 'NONE',
      TargetFunctionArn: { 'Fn::GetAtt': [fn('api.handler').id, 'Arn'] },
    });
  });

  it('runs every function on Node 22 with its own reserved concurrency, memory, timeout and tracing', () => {
    for (const [handler, cap] of [
      ['api.handler', CAPS.api],
      ['runner.handler', CAPS.runner],
      ['stepExecutor.handler', CAPS.stepExecutor],
      ['ingest.handler', CAPS.ingest],
    ] as const) {
      expect(fn(handler).props).toMatchObject({
        Runtime: 'nodejs22.x',
        ReservedConcurrentExecutions: cap,
        MemorySize: expect.any(Number),
        Timeout: expect.any(Number),
        TracingConfig: { Mode: 'Active' },
      });
    }
  });

  it('sends every function log to its own log group with a retention', () => {
    for (const handler of ['api.handler', 'runner.handler', 'stepExecutor.handler', 'ingest.handler']) {
      const logGroup = (fn(handler).props.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      const group = resources[logGroup] as Resource;
      expect(group.Type).toBe('AWS::Logs::LogGroup');
      expect(group.Properties.RetentionInDays).toBe(365);
    }
  });

  it('points api and runner at the lake as the CLI reads it, and tells the step executor nothing', () => {
    const lakeEnv = {
      AIRLOCK_BACKEND: 'aws',
      AIRLOCK_DYNAMODB_TABLE: { Ref: id(stack.table) },
      AIRLOCK_BUCKET: { Ref: id(stack.lakeBucket) },
    };
    expect(fn('api.handler').props.Environment).toMatchObject({ Variables: lakeEnv });
    expect(fn('runner.handler').props.Environment).toMatchObject({
      Variables: { ...lakeEnv, AIRLOCK_STEP_EXECUTOR_FUNCTION: { Ref: fn('stepExecutor.handler').id } },
    });
    expect(JSON.stringify(fn('stepExecutor.handler').props.Environment ?? {})).not.toMatch(/AIRLOCK|Table|Bucket/);
  });

  it('gives the step executor role no data permission at all: only its own logs and X-Ray', () => {
    const step = fn('stepExecutor.handler');
    const role = roleOf(step.props);
    expect((resources[role] as Resource).Properties.ManagedPolicyArns).toBeUndefined();
    const statements = statementsOf(role);
    expect(actionsOf(statements)).toEqual([
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'xray:PutTelemetryRecords',
      'xray:PutTraceSegments',
    ]);
    expect(JSON.stringify(statements)).not.toMatch(/dynamodb|s3:|Table|Bucket/);
  });

  it('grants the api catalog item operations, lake object reads and writes, deletes under data/ only, and nothing to invoke', () => {
    const statements = statementsOf(roleOf(fn('api.handler').props));
    const actions = actionsOf(statements);
    const withAction = (a: string) => statements.filter((s) => actionsOf([s]).includes(a));
    expect(withAction('s3:PutObject').map((s) => s.Resource)).toEqual([
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [id(stack.lakeBucket), 'Arn'] }, '/*']] },
    ]);
    expect(withAction('s3:DeleteObject').map((s) => s.Resource)).toEqual([
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [id(stack.lakeBucket), 'Arn'] }, '/data/*']] },
    ]);
    expect(actions).toEqual(
      expect.arrayContaining([
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        's3:GetObject',
        's3:ListBucket',
      ]),
    );
    expect(
      actions.filter((a) => /^lambda:|^dynamodb:(CreateTable|DeleteTable|Scan)|^s3:(Put|Delete)(?!Object$)/.test(a)),
    ).toEqual([]);
    const catalog = statements.find((s) => actionsOf([s]).includes('dynamodb:GetItem'));
    expect(catalog?.Resource).toEqual([
      { 'Fn::GetAtt': [id(stack.table), 'Arn'] },
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [id(stack.table), 'Arn'] }, `/index/${DYNAMO_TIME_INDEX}`]] },
    ]);
  });

  it('lets the runner write lake objects, delete only step transfers, and invoke only the step executor', () => {
    const statements = statementsOf(roleOf(fn('runner.handler').props));
    const withAction = (a: string) => statements.filter((s) => actionsOf([s]).includes(a));
    expect(withAction('s3:DeleteObject').map((s) => s.Resource)).toEqual([
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [id(stack.lakeBucket), 'Arn'] }, '/steps/*']] },
    ]);
    expect(withAction('s3:PutObject')).toHaveLength(1);
    expect(withAction('lambda:InvokeFunction').map((s) => s.Resource)).toEqual([
      { 'Fn::GetAtt': [fn('stepExecutor.handler').id, 'Arn'] },
    ]);
  });

  it('never retries a failed asynchronous run and sends it to a failure queue', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fn('runner.handler').id },
      MaximumRetryAttempts: 0,
      DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    });
  });

  it('invokes the ingest function for objects created under landing/ only', () => {
    const ingest = fn('ingest.handler');
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: id(stack.lakeBucket) },
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          {
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'landing/' }] } },
            LambdaFunctionArn: { 'Fn::GetAtt': [ingest.id, 'Arn'] },
          },
        ],
      },
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [ingest.id, 'Arn'] },
      Principal: 's3.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [id(stack.lakeBucket), 'Arn'] },
    });
    expect(ingest.props.Environment).toMatchObject({
      Variables: {
        AIRLOCK_BACKEND: 'aws',
        AIRLOCK_BUCKET: { Ref: id(stack.lakeBucket) },
        AIRLOCK_INGEST_TARGET: 'main',
        AIRLOCK_INGEST_GATE: 'protected',
        AIRLOCK_INGEST_PERSON: 'ingest',
      },
    });
  });

  it('retries a failed ingestion twice, then keeps the event in a dead-letter queue', () => {
    const [queueId] = Object.keys(template.findResources('AWS::SQS::Queue')).filter((k) =>
      k.startsWith('IngestFailures'),
    );
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fn('ingest.handler').id },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
  });

  it('lets ingest read the lake and write only data files, spilled documents and audit anchors', () => {
    const statements = statementsOf(roleOf(fn('ingest.handler').props));
    const lakeArn = { 'Fn::GetAtt': [id(stack.lakeBucket), 'Arn'] };
    const under = (prefix: string) => ({ 'Fn::Join': ['', [lakeArn, `/${prefix}`]] });
    const withAction = (a: string) => statements.filter((s) => actionsOf([s]).includes(a));
    expect(withAction('s3:PutObject').map((s) => s.Resource)).toEqual([
      [under('data/*'), under('meta/*'), under('audit/anchors/*')],
    ]);
    expect(withAction('s3:DeleteObject').map((s) => s.Resource)).toEqual([under('data/*')]);
    expect(withAction('s3:GetObjectVersion').map((s) => s.Resource)).toEqual([under('landing/*')]);
    expect(withAction('dynamodb:PutItem')).toHaveLength(1);
    expect(
      actionsOf(statements).filter((a) =>
        /^lambda:|^s3:(PutBucket|DeleteBucket)|^dynamodb:(CreateTable|DeleteTable|Scan)/.test(a),
      ),
    ).toEqual([]);
  });

  it('outputs the function URL, table and bucket', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const [urlId] = Object.keys(template.findResources('AWS::Lambda::Url'));
    expect(outputs.ApiUrl?.Value).toEqual({ 'Fn::GetAtt': [urlId, 'FunctionUrl'] });
    expect(outputs.TableName?.Value).toEqual({ Ref: id(stack.table) });
    expect(outputs.BucketName?.Value).toEqual({ Ref: id(stack.lakeBucket) });
  });

  it('has no unacknowledged cdk-nag finding (AWS Solutions and Serverless), and every acknowledgment has a reason', () => {
    for (const pack of [new AwsSolutionsChecks(), new ServerlessChecks()]) {
      const report = pack.validateScope(stack);
      expect(
        report.violations.map((v) => `${v.ruleName} @ ${v.violatingResources.map((r) => r.constructPath)}`),
      ).toEqual([]);
    }
    const reasons: [string, string][] = [];
    const walk = (c: IConstruct) => {
      for (const m of c.node.metadata) {
        if (m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) {
          for (const [rule, reason] of Object.entries(m.data as Record<string, string>)) reasons.push([rule, reason]);
        }
      }
      for (const child of c.node.children) walk(child);
    };
    walk(stack);
    expect(reasons.length).toBeGreaterThan(5);
    for (const [rule, reason] of reasons) expect(reason.length, rule).toBeGreaterThan(30);
  });

  it('cdk-nag does report findings on a stack that ignores them (the check above can fail)', () => {
    const bare = new Stack(new App(), 'Bare');
    new Bucket(bare, 'Plain');
    const rules = new AwsSolutionsChecks().validateScope(bare).violations.map((v) => v.ruleName);
    expect(rules).toEqual(expect.arrayContaining(['AwsSolutions-S1', 'AwsSolutions-S10']));
  });
});

describe('the Lambda code directories', () => {
  it('bundle every handler so that it loads from its own directory and exports a handler', async () => {
    for (const spec of [DATA_PLANE_ASSET, STEP_EXECUTOR_ASSET]) {
      const { dir } = buildLambdaAsset(spec);
      for (const entry of Object.keys(spec.entries)) {
        const module = await import(pathToFileURL(join(dir, `${entry}.mjs`)).href);
        expect(typeof module.handler, `${spec.name}/${entry}.mjs`).toBe('function');
      }
    }
    // The step executor gets the sandbox only: no DuckDB, no data-plane packages.
    expect(readdirSync(join(buildLambdaAsset(STEP_EXECUTOR_ASSET).dir, 'node_modules')).sort()).toEqual([
      '@esbuild',
      'esbuild',
    ]);
  }, 300_000);
});

describe('stack options from CDK context', () => {
  const node = (context: Record<string, unknown>) => new App({ context }).node;

  it('parses -c values given as text (numbers, lists, JSON objects)', () => {
    expect(
      airlockPropsFromContext(
        node({
          'airlock:protectedBranches': 'main, release*',
          'airlock:concurrency': '{"api":5}',
          'airlock:auditRetentionDays': '30',
          'airlock:logRetentionDays': '90',
          'airlock:tableName': 'lake-catalog',
          'airlock:ingestGate': 'protected',
        }),
      ),
    ).toEqual({
      protectedBranches: ['main', 'release*'],
      concurrency: { api: 5 },
      auditRetentionDays: 30,
      logRetention: 90,
      tableName: 'lake-catalog',
      ingest: { gate: 'protected' },
    });
  });

  it('refuses a malformed value, naming the key', () => {
    expect(() => airlockPropsFromContext(node({ 'airlock:concurrency': '{"apii":5}' }))).toThrow(
      /airlock:concurrency: unknown function apii/,
    );
    expect(() => airlockPropsFromContext(node({ 'airlock:logRetentionDays': '45' }))).toThrow(
      /airlock:logRetentionDays/,
    );
    expect(() => airlockPropsFromContext(node({ 'airlock:ingestGate': 'always' }))).toThrow(/airlock:ingestGate/);
    expect(() => new AirlockStack(new App(), 'Bad', { concurrency: { api: 0 } })).toThrow(/concurrency\.api/);
  });
});

describe('the CDK app entry (what `cdk synth` runs)', () => {
  // `npx cdk synth` runs cdk.json's "app" command, which does exactly this import with the
  // CLI's context and output directory in CDK_CONTEXT_JSON / CDK_OUTDIR. Spawning the CLI
  // itself took 80 s here at load 6 and 300 s at load 18, so the test imports the entry.
  it('synthesizes offline with cdk.json context and cdk-nag enabled (a finding would fail it)', async () => {
    const cdkJson = JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8'));
    expect(cdkJson.app).toBe('npx tsx infra/app.ts');
    const out = mkdtempSync(join(tmpdir(), 'airlock-cdk-out-'));
    const saved = { outdir: process.env.CDK_OUTDIR, context: process.env.CDK_CONTEXT_JSON };
    process.env.CDK_OUTDIR = out;
    process.env.CDK_CONTEXT_JSON = JSON.stringify({ ...cdkJson.context, 'airlock:owner': 'ann' });
    try {
      await import('../infra/app.js');
      const synthesized = JSON.parse(readFileSync(join(out, 'Airlock.template.json'), 'utf8'));
      const functions = Object.values(synthesized.Resources as Record<string, Resource>).filter(
        (r) => r.Type === 'AWS::Lambda::Function',
      );
      // Airlock's four, plus CDK's deploy-time handler that sets the bucket notification.
      expect(functions.map((f) => f.Properties.Handler).sort()).toEqual([
        'api.handler',
        'index.handler',
        'ingest.handler',
        'runner.handler',
        'stepExecutor.handler',
      ]);
      const api = functions.find((f) => f.Properties.Handler === 'api.handler');
      expect(api?.Properties.Environment).toMatchObject({
        Variables: {
          AIRLOCK_OWNER: 'ann',
          AIRLOCK_PROTECTED_BRANCHES: cdkJson.context['airlock:protectedBranches'].join(','),
        },
      });
      const assets = JSON.parse(readFileSync(join(out, 'Airlock.assets.json'), 'utf8'));
      expect(Object.keys(assets.files).length).toBeGreaterThanOrEqual(3); // two code directories + the template
    } finally {
      for (const [key, value] of [
        ['CDK_OUTDIR', saved.outdir],
        ['CDK_CONTEXT_JSON', saved.context],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      rmSync(out, { recursive: true, force: true });
    }
  }, 600_000);
});
