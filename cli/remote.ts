import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { LaneUrls } from '#core/aws/sqs-lane-queue';
import { BackflowError, errorMessage } from '#core/errors';

/** `--stack`, `--region`, `--profile`: which deployment `--remote` acts on. */
export interface RemoteOptions {
  readonly stack: string;
  readonly region?: string | undefined;
  readonly profile?: string | undefined;
}

export interface RemoteClients {
  readonly cloudformation: CloudFormationClient;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly lambda: LambdaClient;
}

/** Clients with the usual AWS credential chain (env, profile, SSO, instance role). */
export function awsClients(options: RemoteOptions): RemoteClients {
  const config = {
    ...(options.region ? { region: options.region } : {}),
    ...(options.profile ? { profile: options.profile } : {}),
  };
  return {
    cloudformation: new CloudFormationClient(config),
    dynamodb: new DynamoDBClient(config),
    sqs: new SQSClient(config),
    lambda: new LambdaClient(config),
  };
}

export function destroyClients(clients: RemoteClients): void {
  for (const client of Object.values(clients)) (client as { destroy(): void }).destroy();
}

/**
 * What the CLI needs of a deployed stack, from its CloudFormation outputs (the contract with
 * infra/, documented in docs/cli.md#remote):
 * - `StateTableName`: the DynamoDB state table;
 * - `PlanFunctionName`: the plan Lambda function;
 * - `Lanes`: JSON `{ "<destination>": { "queueUrl": "…", "deadLetterUrl": "…" } }`.
 */
export interface StackResources {
  readonly stack: string;
  readonly stateTable: string;
  readonly planFunction: string;
  readonly lanes: Readonly<Record<string, LaneUrls>>;
}

/** A `--remote` command could not act on the deployed stack. Exit code 1. */
export class RemoteError extends BackflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RemoteError';
  }
}

/** Turns an AWS SDK error into a message that says what to check. */
export function awsProblem(what: string, error: unknown): RemoteError {
  const name = (error as { name?: string }).name ?? '';
  let hint = '';
  if (
    /CredentialsProviderError|ExpiredToken|UnrecognizedClient|InvalidClientTokenId|SignatureDoesNotMatch/.test(name)
  ) {
    hint = ' (check your AWS credentials: AWS_PROFILE or --profile, `aws sso login`, or the AWS_* variables)';
  } else if (/AccessDenied/.test(name)) {
    hint = ' (your AWS identity lacks the permission named above)';
  } else if (/Region/.test(errorMessage(error))) {
    hint = ' (set the region: --region, AWS_REGION or your profile)';
  }
  return new RemoteError(`${what}: ${errorMessage(error)}${hint}`, { cause: error });
}

export async function stackResources(clients: RemoteClients, stack: string): Promise<StackResources> {
  let outputs: Record<string, string>;
  try {
    const out = await clients.cloudformation.send(new DescribeStacksCommand({ StackName: stack }));
    const found = out.Stacks?.[0];
    if (!found) throw new RemoteError(`stack ${stack} not found`);
    outputs = Object.fromEntries(
      (found.Outputs ?? []).flatMap((o) =>
        o.OutputKey && o.OutputValue !== undefined ? [[o.OutputKey, o.OutputValue]] : [],
      ),
    );
  } catch (error) {
    if (error instanceof RemoteError) throw error;
    if (/does not exist/.test(errorMessage(error))) {
      throw new RemoteError(
        `stack ${stack} not found in this account and region: deploy it (npx cdk deploy) or name it with --stack NAME (and --region)`,
        { cause: error },
      );
    }
    throw awsProblem(`cannot describe stack ${stack}`, error);
  }
  const required = (key: string): string => {
    const value = outputs[key];
    if (!value) {
      throw new RemoteError(
        `stack ${stack} has no output ${key} (outputs: ${Object.keys(outputs).join(', ') || 'none'}); redeploy it with this version of Backflow`,
      );
    }
    return value;
  };
  const lanesText = required('Lanes');
  let lanes: Record<string, LaneUrls>;
  try {
    lanes = JSON.parse(lanesText) as Record<string, LaneUrls>;
    if (lanes === null || typeof lanes !== 'object' || Array.isArray(lanes)) throw new Error('not an object');
    for (const [name, urls] of Object.entries(lanes)) {
      if (typeof urls?.queueUrl !== 'string' || typeof urls?.deadLetterUrl !== 'string') {
        throw new Error(`lane ${name} lacks queueUrl or deadLetterUrl`);
      }
    }
  } catch (error) {
    throw new RemoteError(
      `stack ${stack}: output Lanes is not {"<destination>": {"queueUrl", "deadLetterUrl"}} JSON (${errorMessage(error)})`,
    );
  }
  return { stack, stateTable: required('StateTableName'), planFunction: required('PlanFunctionName'), lanes };
}

/** The lane of a destination in the deployed stack. */
export function laneOf(resources: StackResources, destination: string): LaneUrls {
  const urls = resources.lanes[destination];
  if (!urls) {
    throw new RemoteError(
      `stack ${resources.stack} has no lane for destination ${destination} (lanes: ${Object.keys(resources.lanes).join(', ') || 'none'}); deploy the current config`,
    );
  }
  return urls;
}

export interface QueueCounts {
  /** Waiting to be received. */
  readonly visible: number;
  /** Received and being handled (or waiting out a visibility timeout before a retry). */
  readonly inFlight: number;
  /** Sent with a delay (retries with backoff). */
  readonly delayed: number;
}

export async function queueCounts(sqs: SQSClient, queueUrl: string): Promise<QueueCounts> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  const a = out.Attributes ?? {};
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

export async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  const arn = out.Attributes?.QueueArn;
  if (!arn) throw new RemoteError(`SQS returned no QueueArn for ${queueUrl}`);
  return arn;
}
