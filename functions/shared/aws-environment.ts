import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { ConnectorCatalogue } from '#connectors/sdk/catalogue';
import type { DestinationConnection } from '#connectors/sdk/destination';
import { DynamoPacer } from '#core/aws/dynamo-pacer';
import { DynamoStateStore } from '#core/aws/dynamo-state-store';
import { SecretsManagerSecrets } from '#core/aws/secrets-manager';
import { type LaneUrls, SqsLaneQueue } from '#core/aws/sqs-lane-queue';
import { loadConfig } from '#core/config/load';
import { connectDestination, paceOfLane } from '#core/connect';
import { ConnectorConfigError } from '#core/errors';
import { type Metrics, systemClock } from '#core/ports';
import type { Environment } from './environment.ts';

export const logger = new Logger({ serviceName: 'backflow' });
export const metrics = new PowertoolsMetrics({ namespace: 'Backflow', serviceName: 'backflow' });

/** Our Metrics port on Powertools EMF: one metric line per call, with its own dimensions. */
export function powertoolsMetrics(target: PowertoolsMetrics): Metrics {
  return {
    count(name, value, dimensions) {
      const single = target.singleMetric();
      single.addDimensions(dimensions);
      single.addMetric(name, MetricUnit.Count, value);
    },
    milliseconds(name, value, dimensions) {
      const single = target.singleMetric();
      single.addDimensions(dimensions);
      single.addMetric(name, MetricUnit.Milliseconds, value);
    },
  };
}

export function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new ConnectorConfigError(`environment variable ${name} is not set on this function`);
  return value;
}

let cached: Environment | undefined;

/**
 * The Lambda environment: the connectors of the function's bundle, config bundled next to the
 * handler (BACKFLOW_CONFIG), DynamoDB table BACKFLOW_TABLE, lanes BACKFLOW_LANES (JSON:
 * destination → queue and DLQ URLs), secrets from Secrets Manager, Powertools logger and EMF
 * metrics. `continuePlan` comes from the function: only the plan function bundles the Lambda
 * client it takes (continue-plan.ts).
 */
export function awsEnvironment(connectors: ConnectorCatalogue, continuePlan: Environment['continuePlan']): Environment {
  if (cached) return cached;
  const config = loadConfig(process.env.BACKFLOW_CONFIG ?? 'backflow.yml', connectors);
  const lanes = JSON.parse(required('BACKFLOW_LANES')) as Record<string, LaneUrls>;
  const connections = new Map<string, Promise<DestinationConnection>>();
  const secrets = new SecretsManagerSecrets();
  const dynamodb = new DynamoDBClient({});
  const pacer = new DynamoPacer(dynamodb, required('BACKFLOW_TABLE'));
  cached = {
    connectors,
    config,
    state: new DynamoStateStore(dynamodb, required('BACKFLOW_TABLE')),
    pacer,
    queue: new SqsLaneQueue(new SQSClient({}), (lane) => {
      const urls = lanes[lane];
      if (!urls) throw new ConnectorConfigError(`no lane for destination ${lane} in BACKFLOW_LANES`);
      return urls;
    }),
    secrets,
    clock: systemClock,
    metrics: powertoolsMetrics(metrics),
    logger,
    continuePlan,
    destination(lane) {
      let connection = connections.get(lane);
      if (!connection) {
        const pace = paceOfLane(connectors, config, lane, pacer);
        connection = connectDestination(connectors, config, lane, secrets, undefined, pace, 'write');
        connection.catch(() => connections.delete(lane));
        connections.set(lane, connection);
      }
      return connection;
    },
  };
  return cached;
}
