import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { manifests } from '#connectors/manifests';
import { type Config, loadConfig } from '#core/config/load';
import { ConfigFileError } from '#core/errors';
import { BackflowStack } from './BackflowStack.ts';
import { chooseConfigFile } from './config-path.ts';

/**
 * The CDK app (cdk.json runs it with tsx). Context: `config` (the backflow.yml to deploy),
 * `stackName` (default Backflow; one stack per deployment), `alarmEmail` (subscribed to alarms).
 */
const app = new App();
const { file, note } = chooseConfigFile(app.node.tryGetContext('config'), process.cwd());
if (note) console.error(note);

let config: Config;
try {
  config = loadConfig(file, manifests);
} catch (error) {
  // The same report as `backflow validate`, and no template.
  if (!(error instanceof ConfigFileError)) throw error;
  console.error(error.message);
  process.exit(2);
}

const context = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  return typeof value === 'string' && value !== '' ? value : undefined;
};
new BackflowStack(app, context('stackName') ?? 'Backflow', {
  config,
  alarmEmail: context('alarmEmail') ?? config.monitoring.email,
  description: 'Backflow reverse ETL: state table, lanes, plan schedules, dashboard and alarms',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
// The AwsSolutions checks run at every synth and fail it on any finding not acknowledged, with its
// reason, next to the resource that causes it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
