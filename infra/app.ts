import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { AirlockStack, type AirlockStackProps } from './AirlockStack.js';
import { airlockPropsFromContext } from './context.js';

/**
 * The CDK app (`cdk.json`: `npx tsx infra/app.ts`): one {@link AirlockStack}, configured
 * from `airlock:*` context, checked by cdk-nag's AWS Solutions and Serverless packs on
 * every synth (an unacknowledged finding fails the synth).
 */
const app = new App();
const props: AirlockStackProps = {
  ...airlockPropsFromContext(app.node),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
};
new AirlockStack(app, (app.node.tryGetContext('airlock:stackName') as string | undefined) ?? 'Airlock', props);
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
app.synth();
