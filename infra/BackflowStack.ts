import { Annotations, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { manifests } from '#connectors/manifests';
import type { Config } from '#core/config/load';
import { BackflowMonitoring } from './constructs/BackflowMonitoring.ts';
import { Lane } from './constructs/Lane.ts';
import { Planner } from './constructs/Planner.ts';
import { StateTable } from './constructs/StateTable.ts';
import { deployedConfigText, stageDeployedConfig } from './deployed-config.ts';
import type { AlarmThresholds } from './thresholds.ts';

export interface BackflowStackProps extends StackProps {
  /** The validated backflow.yml. */
  readonly config: Config;
  /** E-mail address subscribed to the alarm topic. */
  readonly alarmEmail?: string;
  readonly thresholds?: AlarmThresholds;
}

/**
 * A Backflow deployment: the state table, a lane per destination, the plan function with its
 * schedules, and the dashboard and alarms. Everything is derived from one backflow.yml.
 */
export class BackflowStack extends Stack {
  readonly state: StateTable;
  readonly lanes: ReadonlyMap<string, Lane>;
  readonly planner: Planner;
  readonly monitoring: BackflowMonitoring;

  constructor(scope: Construct, id: string, props: BackflowStackProps) {
    super(scope, id, props);
    const { config } = props;
    const configFile = stageDeployedConfig(deployedConfigText(config));

    this.state = new StateTable(this, 'State');
    const lanes = new Map<string, Lane>();
    for (const destination of Object.values(config.destinations)) {
      const manifest = manifests.destinations.get(destination.type);
      if (!manifest) throw new Error(`destination ${destination.name}: no connector of type ${destination.type}`);
      lanes.set(
        destination.name,
        new Lane(this, `Lane-${destination.name}`, {
          destination,
          limits: manifest.limits,
          table: this.state.table,
          configFile,
        }),
      );
    }
    this.lanes = lanes;
    this.planner = new Planner(this, 'Planner', { config, table: this.state.table, lanes, configFile });
    this.monitoring = new BackflowMonitoring(this, 'Monitoring', {
      config,
      lanes: [...lanes.values()],
      planner: this.planner,
      thresholds: props.thresholds,
      alarmEmail: props.alarmEmail,
    });

    new CfnOutput(this, 'StateTableName', {
      description: 'DynamoDB state table (retained when the stack is deleted)',
      value: this.state.table.tableName,
    });
    new CfnOutput(this, 'PlanFunctionName', {
      description: 'Plan function: invoke with {"syncId": "..."} to run a sync now',
      value: this.planner.functionName,
    });
    // The CLI's --remote commands read the lanes from this one output (docs/cli.md).
    new CfnOutput(this, 'Lanes', {
      description: 'Lanes as JSON: destination → queue and dead-letter queue URLs',
      value: this.toJsonString(
        Object.fromEntries(
          [...lanes].map(([name, lane]) => [
            name,
            { queueUrl: lane.queue.queueUrl, deadLetterUrl: lane.deadLetterQueue.queueUrl },
          ]),
        ),
      ),
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'SNS topic of every alarm',
      value: this.monitoring.topic.topicArn,
    });
    const dashboard = this.monitoring.facade.createdDashboard();
    if (dashboard)
      new CfnOutput(this, 'DashboardName', { description: 'CloudWatch dashboard', value: dashboard.dashboardName });

    const embedded = [...Object.values(config.sources), ...Object.values(config.destinations)].filter(
      (connector) => connector.type === 'duckdb',
    );
    if (embedded.length > 0) {
      Annotations.of(this).addWarningV2(
        'backflow:embedded-duckdb',
        `${embedded.map((c) => c.name).join(', ')}: embedded DuckDB is for local runs; on Lambda the DuckDB module is not bundled and the files are not there. Use a warehouse or database reachable from AWS.`,
      );
    }
  }
}
