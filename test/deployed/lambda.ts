import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type KeySchemaElement,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import dynalite from 'dynalite';
import { buildSync } from 'esbuild';
import { accessKeyOf, authorize, callerKey, type EmulatedRole, loadRoles } from './iam.ts';
import { END_OF_OUTPUT, type InvokeMessage, type LambdaError, type RuntimeMessage } from './runtime-protocol.ts';
import { type SecretsManagerStub, startSecretsManager } from './secrets-manager.ts';
import { type Gate, type GateCall, type Refusal, startGate } from './service-gate.ts';
import type { Synthesized } from './synth.ts';
import {
  ACCOUNT,
  assertKnownProperties,
  type PhysicalResource,
  REGION,
  resolve,
  resourcesOf,
  type TemplateResource,
} from './template.ts';

/**
 * An emulation of what AWS Lambda does with the synthesized template, around the very bundles
 * `cdk synth` produced (see docs/testing.md for what it covers and what it cannot):
 *
 * - each function runs in child processes (execution environments) started with the template's
 *   environment, the variables Lambda defines, and the emulators' endpoints; an environment is
 *   reused (warm) and frozen (SIGSTOP) between invocations, and killed when an invocation runs
 *   past the function's timeout;
 * - SQS event source mappings as declared: batch size, batching window, maximum concurrency,
 *   ReportBatchItemFailures (only the succeeded messages are deleted; anything else waits out the
 *   queue's visibility timeout, and the queue's redrive policy dead-letters it);
 * - the Lambda Invoke API (RequestResponse and Event), asynchronous retries of failed events;
 * - EventBridge Scheduler firing a schedule's target with its input;
 * - the state table on dynalite, the queues on fauxqs, GetSecretValue on a stub.
 */

export interface EmulatorOptions {
  readonly synthesized: Pick<Synthesized, 'stackName' | 'template' | 'packages'>;
  /** Secrets Manager's content: name → JSON value. */
  readonly secrets: Record<string, unknown>;
  /** The `node` binary new execution environments run on. */
  readonly node: string;
  /**
   * Waits before the retries of a failed asynchronous invocation. Lambda waits about one minute,
   * then two; the default keeps the count and order and shortens the waits to seconds.
   */
  readonly asyncRetryDelaysMs?: readonly number[];
  /**
   * Pollers per SQS event source mapping. Lambda starts five and scales up to the mapping's
   * maximum concurrency; the machine has two cores, so by default three (never more than the
   * maximum concurrency).
   */
  readonly pollersPerMapping?: number;
}

export type InvocationOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly kind: 'function' | 'timeout' | 'crash' | 'init'; readonly error: LambdaError };

export interface Invocation {
  readonly functionName: string;
  readonly requestId: string;
  readonly invocationType: 'RequestResponse' | 'Event';
  /** What invoked it: `api` (Invoke), `sqs` (an event source mapping), `schedule`. */
  readonly trigger: 'api' | 'sqs' | 'schedule';
  /** 0 for the first try of an asynchronous event, then its retries. */
  readonly attempt: number;
  readonly event: unknown;
  /** `process.version` of the environment that ran it. */
  readonly nodeVersion: string;
  readonly coldStart: boolean;
  readonly startedAt: number;
  endedAt?: number;
  outcome?: InvocationOutcome;
  /** Everything the function wrote to stdout and stderr during this invocation. */
  readonly logs: string[];
}

/** One metric of an EMF document a function printed. */
export interface EmittedMetric {
  readonly functionName: string;
  readonly requestId: string;
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly namespace: string;
  readonly dimensions: Readonly<Record<string, string>>;
}

export interface DeployedFunction {
  readonly logicalId: string;
  readonly name: string;
  readonly arn: string;
  readonly taskRoot: string;
  readonly handler: string;
  readonly runtime: string;
  readonly memoryMiB: number;
  /** From the template (Timeout, default 3 s). */
  readonly timeoutMs: number;
  readonly environment: Readonly<Record<string, string>>;
  readonly maxAsyncRetries: number;
}

export interface DeployedQueue {
  readonly logicalId: string;
  readonly name: string;
  readonly arn: string;
  /** The URL the functions use (the SQS endpoint they are given). */
  readonly url: string;
  /** fauxqs's URL of the same queue, for the harness's own client. */
  readonly fauxqsUrl: string;
  readonly visibilityTimeoutSeconds: number;
  readonly redrive?: { readonly deadLetterArn: string; readonly maxReceiveCount: number };
}

export interface EventSourceMapping {
  readonly logicalId: string;
  readonly functionName: string;
  readonly queue: DeployedQueue;
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  readonly maxConcurrency: number;
  readonly reportBatchItemFailures: boolean;
  /** Most invocations of this mapping seen running at once. */
  readonly peakConcurrency: number;
}

export interface DeployedSchedule {
  readonly logicalId: string;
  readonly enabled: boolean;
  readonly expression: string;
  readonly targetFunction: string;
  /** The role Scheduler assumes to invoke the target. */
  readonly roleLogicalId: string;
  readonly input: unknown;
}

/** Lambda's reserved environment variables: a template setting one of them does not deploy. */
const RESERVED_VARIABLES = [
  '_HANDLER',
  '_X_AMZN_TRACE_ID',
  'AWS_DEFAULT_REGION',
  'AWS_REGION',
  'AWS_EXECUTION_ENV',
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  'AWS_LAMBDA_FUNCTION_VERSION',
  'AWS_LAMBDA_INITIALIZATION_TYPE',
  'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME',
  'AWS_ACCESS_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_LAMBDA_RUNTIME_API',
  'LAMBDA_TASK_ROOT',
  'LAMBDA_RUNTIME_DIR',
];
/** Lambda refuses a function whose environment variables take more than 4 KB. */
const MAX_ENVIRONMENT_BYTES = 4096;
/** Lambda's limit on a function's init phase (on-demand). */
const INIT_TIMEOUT_MS = 10_000;

/** The harness's own credentials: its calls are not checked against any role. */
const credentials = { accessKeyId: 'AKIAEMULATEDHARNESS0', secretAccessKey: 'emulated', sessionToken: 'emulated' };

/** The IAM action of an SQS operation: a batch operation is authorized as its single form. */
const sqsAction = (operation: string) => `sqs:${operation.replace(/Batch$/, '')}`;

export class LambdaEmulator {
  readonly invocations: Invocation[] = [];
  /** Invoke API calls: who called (trace header), which function, how. */
  readonly invokeCalls: { functionName: string; invocationType: string; payload: unknown }[] = [];
  readonly functions = new Map<string, DeployedFunction>();
  readonly queues = new Map<string, DeployedQueue>();
  readonly mappings: EventSourceMapping[] = [];
  readonly schedules: DeployedSchedule[] = [];
  tableName = '';
  ttlAttribute: string | undefined;
  /** The harness's own clients, on the emulators. */
  readonly sqs: SQSClient;
  readonly dynamodb: DynamoDBClient;

  private node: string;
  private nodeVersion: string;
  /** Calls the functions' IAM policies refused: who, what, on which resource. */
  readonly accessDenied: { functionName: string; action: string; resource: string; message: string }[] = [];
  private roles = new Map<string, EmulatedRole>();
  /** Function logical id → its role's logical id. */
  private readonly roleOf = new Map<string, string>();
  /** Queue URL the functions use → fauxqs's URL of the same queue. */
  private readonly fauxqsUrlOf = new Map<string, string>();
  private readonly timeoutOverrides = new Map<string, number>();
  private readonly environments = new Map<string, ExecutionEnvironment[]>();
  private readonly pollers: SqsPoller[] = [];
  private pendingAsync = 0;
  private running = 0;
  private stopped = false;

  private constructor(
    private readonly options: EmulatorOptions,
    private readonly services: {
      dynalite: Server;
      dynaliteUrl: string;
      dynamoGate: Gate;
      fauxqs: { close(): Promise<unknown> };
      fauxqsUrl: string;
      sqsGate: Gate;
      secrets: SecretsManagerStub;
      lambdaApi: Server;
      lambdaUrl: string;
      runtimeDir: string;
    },
  ) {
    this.node = options.node;
    this.nodeVersion = versionOf(options.node);
    this.sqs = new SQSClient({ region: REGION, credentials, endpoint: services.fauxqsUrl });
    this.dynamodb = new DynamoDBClient({ region: REGION, credentials, endpoint: services.dynaliteUrl });
  }

  static async start(options: EmulatorOptions): Promise<LambdaEmulator> {
    const runtimeDir = mkdtempSync(path.join(os.tmpdir(), 'backflow-deployed-runtime-'));
    // The runtime (bootstrap.ts) is compiled outside the repository, like Lambda's /var/runtime.
    buildSync({
      entryPoints: [path.join(import.meta.dirname, 'bootstrap.ts')],
      outfile: path.join(runtimeDir, 'bootstrap.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'silent',
    });
    const dynamo = dynalite({ createTableMs: 0 });
    await new Promise<void>((ok) => dynamo.listen(0, '127.0.0.1', () => ok()));
    const { buildApp } = await import('fauxqs');
    const fauxqs = buildApp({ logger: false });
    await fauxqs.listen({ port: 0, host: '127.0.0.1' });
    const fauxqsPort = (fauxqs.server.address() as AddressInfo).port;
    let emulator: LambdaEmulator | undefined;
    // fauxqs names its queues on a host this machine does not resolve (sqs.us-east-1.localhost),
    // and the SDK sends a request to its QueueUrl's host: the functions get queue URLs on the
    // gate's address, as an SQS queue URL is on the SQS endpoint, mapped back here.
    const sqsGate = await startGate({
      upstreamPort: fauxqsPort,
      check: (call) => emulator!.checkSqs(call),
      rewrite: (body) => {
        const mapped = typeof body.QueueUrl === 'string' ? emulator!.fauxqsUrlOf.get(body.QueueUrl) : undefined;
        return mapped ? { ...body, QueueUrl: mapped } : body;
      },
    });
    const dynamoGate = await startGate({
      upstreamPort: (dynamo.address() as AddressInfo).port,
      check: (call) => emulator!.checkDynamo(call),
    });
    const secrets = await startSecretsManager(options.secrets, (caller, arn) =>
      emulator!.denial(caller, 'secretsmanager:GetSecretValue', [arn]),
    );
    const lambdaApi = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        emulator!.handleInvokeApi(req, Buffer.concat(chunks).toString('utf8'), res).catch((error: unknown) => {
          res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'ServiceException' });
          res.end(JSON.stringify({ Type: 'Service', message: String(error) }));
        });
      });
    });
    await new Promise<void>((ok) => lambdaApi.listen(0, '127.0.0.1', ok));
    emulator = new LambdaEmulator(options, {
      dynalite: dynamo as unknown as Server,
      dynaliteUrl: `http://127.0.0.1:${(dynamo.address() as AddressInfo).port}`,
      dynamoGate,
      fauxqs,
      fauxqsUrl: `http://127.0.0.1:${fauxqsPort}`,
      sqsGate,
      secrets,
      lambdaApi,
      lambdaUrl: `http://127.0.0.1:${(lambdaApi.address() as AddressInfo).port}`,
      runtimeDir,
    });
    try {
      await emulator.deploy();
    } catch (error) {
      await emulator.stop();
      throw error;
    }
    return emulator;
  }

  /** Where the functions find each emulated service (their AWS_ENDPOINT_URL_* variables). */
  get endpoints(): { dynamodb: string; sqs: string; secretsManager: string; lambda: string } {
    return {
      dynamodb: this.services.dynamoGate.url,
      sqs: this.services.sqsGate.url,
      secretsManager: this.services.secrets.url,
      lambda: this.services.lambdaUrl,
    };
  }

  /** The Secrets Manager stub's content (tests add or remove secrets). */
  get secrets(): Map<string, unknown> {
    return this.services.secrets.secrets;
  }

  /** The `node` binary of environments started from now on; warm environments are discarded. */
  useNode(node: string): void {
    if (this.running > 0) throw new Error('switch the runtime between scenarios: invocations are running');
    this.node = node;
    this.nodeVersion = versionOf(node);
    for (const list of this.environments.values()) for (const env of list.splice(0)) env.discard();
  }

  /**
   * Runs a function as if its timeout were `ms` (its kill timer and its context's remaining time
   * both follow), until cleared with `undefined`. For scenarios that cannot wait the real timeout.
   */
  overrideTimeout(functionName: string, ms: number | undefined): void {
    if (ms === undefined) this.timeoutOverrides.delete(functionName);
    else this.timeoutOverrides.set(functionName, ms);
  }

  fn(predicate: (f: DeployedFunction) => boolean, what: string): DeployedFunction {
    const found = [...this.functions.values()].filter(predicate);
    if (found.length !== 1) throw new Error(`expected one function that ${what}, found ${found.length}`);
    return found[0]!;
  }

  // ---------------------------------------------------------------- deployment

  private async deploy(): Promise<void> {
    const { template, stackName, packages } = this.options.synthesized;
    const physical = new Map<string, PhysicalResource>();
    const lookup = (logicalId: string): PhysicalResource => {
      const found = physical.get(logicalId);
      if (!found) {
        const type = template.Resources[logicalId]?.Type ?? 'an unknown resource';
        throw new Error(`the harness does not emulate ${type} ${logicalId}, which the template refers to`);
      }
      return found;
    };
    const generatedName = (logicalId: string, max: number) => {
      const suffix = createHash('sha256')
        .update(`${stackName}/${logicalId}/${randomUUID()}`)
        .digest('hex')
        .slice(0, 12);
      const base = `${stackName}-${logicalId}`.slice(0, max - 13);
      return `${base}-${suffix.toUpperCase()}`;
    };

    const tables = resourcesOf(template, 'AWS::DynamoDB::Table');
    if (tables.length !== 1) throw new Error(`expected one DynamoDB table in the template, found ${tables.length}`);
    const [tableId, table] = tables[0]!;
    assertKnownProperties(
      tableId,
      table,
      ['TableName', 'KeySchema', 'AttributeDefinitions', 'BillingMode', 'TimeToLiveSpecification'],
      ['SSESpecification', 'PointInTimeRecoverySpecification', 'DeletionProtectionEnabled'],
    );
    const tp = table.Properties!;
    this.tableName = (tp.TableName as string | undefined) ?? generatedName(tableId, 255);
    await this.dynamodb.send(
      new CreateTableCommand({
        TableName: this.tableName,
        KeySchema: tp.KeySchema as KeySchemaElement[],
        AttributeDefinitions: tp.AttributeDefinitions as AttributeDefinition[],
        BillingMode: tp.BillingMode as 'PAY_PER_REQUEST',
      }),
    );
    for (let i = 0; ; i++) {
      const out = await this.dynamodb.send(new DescribeTableCommand({ TableName: this.tableName }));
      if (out.Table?.TableStatus === 'ACTIVE') break;
      if (i > 200) throw new Error('the state table did not become ACTIVE on dynalite');
      await sleep(10);
    }
    // dynalite has no TTL: the attribute is recorded, expired items are not removed (DynamoDB
    // removes them within days anyway, so nothing may rely on it).
    const ttl = tp.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
    this.ttlAttribute = ttl?.Enabled ? ttl.AttributeName : undefined;
    physical.set(tableId, {
      ref: this.tableName,
      attributes: { Arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${this.tableName}` },
    });

    // Queues without a redrive policy first: a redrive policy names its dead-letter queue's ARN.
    const queues = resourcesOf(template, 'AWS::SQS::Queue').sort(
      ([, a], [, b]) =>
        Number(a.Properties?.RedrivePolicy !== undefined) - Number(b.Properties?.RedrivePolicy !== undefined),
    );
    for (const [logicalId, queue] of queues) {
      assertKnownProperties(
        logicalId,
        queue,
        [
          'QueueName',
          'VisibilityTimeout',
          'MessageRetentionPeriod',
          'DelaySeconds',
          'RedrivePolicy',
          'ReceiveMessageWaitTimeSeconds',
          'MaximumMessageSize',
        ],
        ['SqsManagedSseEnabled', 'KmsMasterKeyId', 'KmsDataKeyReusePeriodSeconds'],
      );
      const p = resolve(queue.Properties ?? {}, lookup, stackName) as Record<string, unknown>;
      const name = (p.QueueName as string | undefined) ?? generatedName(logicalId, 80);
      const redrive = p.RedrivePolicy as { deadLetterTargetArn: string; maxReceiveCount: number } | undefined;
      const attributes: Record<string, string> = {};
      for (const key of [
        'VisibilityTimeout',
        'MessageRetentionPeriod',
        'DelaySeconds',
        'ReceiveMessageWaitTimeSeconds',
        'MaximumMessageSize',
      ]) {
        if (p[key] !== undefined) attributes[key] = String(p[key]);
      }
      if (redrive) attributes.RedrivePolicy = JSON.stringify(redrive);
      const created = await this.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      const arn = (
        await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: created.QueueUrl, AttributeNames: ['QueueArn'] }))
      ).Attributes!.QueueArn!;
      const url = `${this.services.sqsGate.url}${new URL(created.QueueUrl!).pathname}`;
      this.fauxqsUrlOf.set(url, created.QueueUrl!);
      this.queues.set(logicalId, {
        logicalId,
        name,
        arn,
        url,
        fauxqsUrl: created.QueueUrl!,
        visibilityTimeoutSeconds: Number(p.VisibilityTimeout ?? 30),
        ...(redrive && {
          redrive: { deadLetterArn: redrive.deadLetterTargetArn, maxReceiveCount: Number(redrive.maxReceiveCount) },
        }),
      });
      physical.set(logicalId, { ref: url, attributes: { Arn: arn, QueueName: name, QueueUrl: url } });
    }

    for (const [logicalId, group] of resourcesOf(template, 'AWS::Logs::LogGroup')) {
      // Not emulated beyond its name: the functions' output is kept per invocation instead.
      const name = (group.Properties?.LogGroupName as string | undefined) ?? generatedName(logicalId, 512);
      physical.set(logicalId, {
        ref: name,
        attributes: { Arn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${name}:*` },
      });
    }

    for (const [logicalId] of resourcesOf(template, 'AWS::IAM::Role')) {
      const name = generatedName(logicalId, 64);
      physical.set(logicalId, { ref: name, attributes: { Arn: `arn:aws:iam::${ACCOUNT}:role/${name}` } });
    }

    const functions = resourcesOf(template, 'AWS::Lambda::Function');
    // Names first: a function's environment may name another function.
    for (const [logicalId, fn] of functions) {
      const name = (fn.Properties?.FunctionName as string | undefined) ?? generatedName(logicalId, 64);
      const arn = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
      physical.set(logicalId, { ref: name, attributes: { Arn: arn } });
    }
    const retries = new Map<string, number>();
    for (const [logicalId, config] of resourcesOf(template, 'AWS::Lambda::EventInvokeConfig')) {
      assertKnownProperties(logicalId, config, ['FunctionName', 'Qualifier', 'MaximumRetryAttempts'], []);
      const p = resolve(config.Properties, lookup, stackName) as Record<string, unknown>;
      retries.set(String(p.FunctionName), Number(p.MaximumRetryAttempts ?? 2));
    }
    for (const [logicalId, fn] of functions) {
      this.functions.set(logicalId, this.deployFunction(logicalId, fn, lookup, packages, retries));
      this.roleOf.set(logicalId, roleIdOf(fn.Properties?.Role, `function ${logicalId}`));
    }
    this.roles = loadRoles(template, stackName, lookup);

    for (const [logicalId, mapping] of resourcesOf(template, 'AWS::Lambda::EventSourceMapping')) {
      assertKnownProperties(
        logicalId,
        mapping,
        [
          'FunctionName',
          'EventSourceArn',
          'BatchSize',
          'MaximumBatchingWindowInSeconds',
          'ScalingConfig',
          'FunctionResponseTypes',
          'Enabled',
        ],
        [],
      );
      const p = resolve(mapping.Properties, lookup, stackName) as Record<string, unknown>;
      const queue = [...this.queues.values()].find((q) => q.arn === p.EventSourceArn);
      if (!queue) throw new Error(`event source mapping ${logicalId}: only SQS queues of the template are emulated`);
      const fn = [...this.functions.values()].find((f) => f.name === p.FunctionName || f.arn === p.FunctionName);
      if (!fn) throw new Error(`event source mapping ${logicalId}: no function ${String(p.FunctionName)}`);
      // CloudFormation refuses the mapping when the function's role cannot read the queue.
      for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']) {
        const decision = authorize(this.roleOfFunction(fn), 'lambda', action, [queue.arn]);
        if (!decision.allowed) {
          throw new Error(
            `event source mapping ${logicalId}: the provided execution role does not have permissions to call ${action.slice(4)} on SQS (${decision.message})`,
          );
        }
      }
      const batchSize = Number(p.BatchSize ?? 10);
      const window = Number(p.MaximumBatchingWindowInSeconds ?? 0);
      if (batchSize > 10 && window < 1) {
        throw new Error(
          `event source mapping ${logicalId}: Lambda requires a batching window for a batch size over 10`,
        );
      }
      const poller = new SqsPoller(this, {
        logicalId,
        functionName: fn.name,
        queue,
        batchSize,
        maxBatchingWindowSeconds: window,
        maxConcurrency: Number(
          (p.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency ?? 1000,
        ),
        reportBatchItemFailures: ((p.FunctionResponseTypes as string[] | undefined) ?? []).includes(
          'ReportBatchItemFailures',
        ),
        peakConcurrency: 0,
      });
      this.mappings.push(poller.mapping);
      if (p.Enabled !== false) {
        this.pollers.push(poller);
        poller.start(Math.min(poller.mapping.maxConcurrency, this.options.pollersPerMapping ?? 3));
      }
    }

    for (const [logicalId, schedule] of resourcesOf(template, 'AWS::Scheduler::Schedule')) {
      const p = schedule.Properties ?? {};
      const target = p.Target as { Arn: unknown; Input?: string; RoleArn?: unknown };
      const arn = resolve(target.Arn, lookup, stackName) as string;
      const fn = [...this.functions.values()].find((f) => f.arn === arn);
      if (!fn) throw new Error(`schedule ${logicalId} targets ${arn}, which is not a function of the template`);
      this.schedules.push({
        logicalId,
        enabled: p.State !== 'DISABLED',
        expression: String(p.ScheduleExpression),
        targetFunction: fn.name,
        roleLogicalId: roleIdOf(target.RoleArn, `schedule ${logicalId}`),
        input: target.Input === undefined ? {} : JSON.parse(target.Input),
      });
    }
  }

  private deployFunction(
    logicalId: string,
    fn: TemplateResource,
    lookup: (logicalId: string) => PhysicalResource,
    packages: ReadonlyMap<string, string>,
    retries: ReadonlyMap<string, number>,
  ): DeployedFunction {
    assertKnownProperties(
      logicalId,
      fn,
      ['Code', 'Handler', 'Runtime', 'MemorySize', 'Timeout', 'Environment', 'FunctionName', 'LoggingConfig'],
      // Not emulated, by nature: the processor (arm64 runs on this machine's x64), IAM, the
      // description, and recursive loop detection (the template allows loops).
      ['Architectures', 'Role', 'Description', 'RecursiveLoop'],
    );
    const { stackName } = this.options.synthesized;
    // Only what the emulation uses is resolved: the role, for one, is not emulated.
    const used = ['Handler', 'Runtime', 'MemorySize', 'Timeout', 'Environment', 'LoggingConfig'] as const;
    const p = Object.fromEntries(used.map((key) => [key, resolve(fn.Properties?.[key], lookup, stackName)])) as Record<
      string,
      unknown
    >;
    const logging = (p.LoggingConfig ?? {}) as { LogGroup?: string; LogFormat?: string };
    if (logging.LogFormat !== undefined && logging.LogFormat !== 'Text') {
      throw new Error(`function ${logicalId}: the harness emulates the Text log format only, not ${logging.LogFormat}`);
    }
    const variables = ((p.Environment as { Variables?: Record<string, string> } | undefined)?.Variables ??
      {}) as Record<string, string>;
    const reserved = Object.keys(variables).filter((k) => RESERVED_VARIABLES.includes(k));
    if (reserved.length > 0) throw new Error(`function ${logicalId}: Lambda reserves ${reserved.join(', ')}`);
    const size = Object.entries(variables).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    if (size > MAX_ENVIRONMENT_BYTES) {
      throw new Error(`function ${logicalId}: its environment variables take ${size} bytes; Lambda allows 4 KB`);
    }
    const taskRoot = packages.get(logicalId);
    if (!taskRoot) throw new Error(`function ${logicalId}: no deployment package was synthesized`);
    const name = lookup(logicalId).ref;
    const memoryMiB = Number(p.MemorySize ?? 128);
    const runtime = String(p.Runtime);
    const logGroup = logging.LogGroup ?? `/aws/lambda/${name}`;
    return {
      logicalId,
      name,
      arn: lookup(logicalId).attributes.Arn!,
      taskRoot,
      handler: String(p.Handler),
      runtime,
      memoryMiB,
      timeoutMs: Number(p.Timeout ?? 3) * 1000,
      maxAsyncRetries: retries.get(name) ?? 2,
      environment: {
        ...variables,
        _HANDLER: String(p.Handler),
        AWS_EXECUTION_ENV: `AWS_Lambda_${runtime}`,
        AWS_LAMBDA_FUNCTION_NAME: name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMiB),
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
        AWS_LAMBDA_LOG_GROUP_NAME: logGroup,
        AWS_REGION: REGION,
        AWS_DEFAULT_REGION: REGION,
        LAMBDA_TASK_ROOT: taskRoot,
        LAMBDA_RUNTIME_DIR: this.services.runtimeDir,
        TZ: ':UTC',
        LANG: 'en_US.UTF-8',
        PATH: '/usr/local/bin:/usr/bin/:/bin',
        // Temporary credentials of the function's role: the emulated services tell callers apart by them.
        AWS_ACCESS_KEY_ID: accessKeyOf(logicalId),
        AWS_SECRET_ACCESS_KEY: 'emulated',
        AWS_SESSION_TOKEN: 'emulated',
        // The one difference from Lambda: the AWS SDK's service-specific endpoints point at the emulators.
        AWS_ENDPOINT_URL_DYNAMODB: this.services.dynamoGate.url,
        AWS_ENDPOINT_URL_SQS: this.services.sqsGate.url,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: this.services.secrets.url,
        AWS_ENDPOINT_URL_LAMBDA: this.services.lambdaUrl,
      },
    };
  }

  // ---------------------------------------------------------------- invocations

  private byName(name: string): DeployedFunction {
    const bare = name.startsWith('arn:') ? name.split(':')[6]! : name;
    const fn = [...this.functions.values()].find((f) => f.name === bare);
    if (!fn) throw new FunctionNotFound(name);
    return fn;
  }

  /** A synchronous invocation (RequestResponse), as `aws lambda invoke` or an event source mapping does. */
  invoke(functionName: string, event: unknown, trigger: Invocation['trigger'] = 'api'): Promise<Invocation> {
    return this.run(this.byName(functionName), event, 'RequestResponse', trigger, 0);
  }

  /**
   * An asynchronous invocation (Event): queued, run, and retried on error (function error,
   * timeout, crash) up to the function's maximum retry attempts, as Lambda's event queue does.
   */
  invokeAsync(functionName: string, event: unknown, trigger: Invocation['trigger'] = 'api'): void {
    const fn = this.byName(functionName);
    this.pendingAsync++;
    void (async () => {
      try {
        const delays = this.options.asyncRetryDelaysMs ?? [1000, 2000];
        for (let attempt = 0; attempt <= fn.maxAsyncRetries && !this.stopped; attempt++) {
          if (attempt > 0) await sleep(delays[Math.min(attempt - 1, delays.length - 1)]);
          const invocation = await this.run(fn, event, 'Event', trigger, attempt);
          if (invocation.outcome?.ok) return;
        }
      } finally {
        this.pendingAsync--;
      }
    })();
  }

  /** EventBridge Scheduler fires a schedule: its target is invoked asynchronously with its input. */
  fireSchedule(predicate: (s: DeployedSchedule) => boolean): DeployedSchedule {
    const found = this.schedules.filter(predicate);
    if (found.length !== 1) throw new Error(`expected one schedule, found ${found.length}`);
    const schedule = found[0]!;
    if (!schedule.enabled) throw new Error(`schedule ${schedule.logicalId} is disabled: Scheduler never fires it`);
    const fn = this.byName(schedule.targetFunction);
    const decision = authorize(this.roles.get(schedule.roleLogicalId)!, 'scheduler', 'lambda:InvokeFunction', [fn.arn]);
    if (!decision.allowed)
      throw new Error(`schedule ${schedule.logicalId} cannot invoke its target: ${decision.message}`);
    this.invokeAsync(schedule.targetFunction, schedule.input, 'schedule');
    return schedule;
  }

  private async run(
    fn: DeployedFunction,
    event: unknown,
    invocationType: Invocation['invocationType'],
    trigger: Invocation['trigger'],
    attempt: number,
  ): Promise<Invocation> {
    this.running++;
    try {
      const pool = this.environments.get(fn.name) ?? [];
      this.environments.set(fn.name, pool);
      let environment = pool.find((e) => e.idle);
      const coldStart = environment === undefined;
      if (!environment) {
        environment = new ExecutionEnvironment(fn, this.node, path.join(this.services.runtimeDir, 'bootstrap.mjs'));
        pool.push(environment);
      }
      const invocation: Invocation = {
        functionName: fn.name,
        requestId: randomUUID(),
        invocationType,
        trigger,
        attempt,
        event,
        nodeVersion: this.nodeVersion,
        coldStart,
        startedAt: Date.now(),
        logs: [],
      };
      this.invocations.push(invocation);
      const timeoutMs = this.timeoutOverrides.get(fn.name) ?? fn.timeoutMs;
      invocation.outcome = await environment.invoke(invocation, timeoutMs);
      invocation.endedAt = Date.now();
      const index = pool.indexOf(environment);
      if (!environment.alive && index >= 0) pool.splice(index, 1);
      return invocation;
    } finally {
      this.running--;
    }
  }

  /** The Lambda API's Invoke, as the AWS SDK calls it (REST-JSON). */
  private async handleInvokeApi(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      res.writeHead(400, { 'content-type': 'application/json', 'x-amzn-errortype': 'InvalidRequestContentException' });
      res.end(JSON.stringify({ Type: 'User', message: `not emulated: ${req.method} ${req.url}` }));
      return;
    }
    const name = decodeURIComponent(match[1]!);
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    let payload: unknown;
    try {
      payload = body === '' ? {} : JSON.parse(body);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json', 'x-amzn-errortype': 'InvalidRequestContentException' });
      res.end(JSON.stringify({ Type: 'User', message: 'Could not parse request body into json' }));
      return;
    }
    let fn: DeployedFunction;
    try {
      fn = this.byName(name);
    } catch (error) {
      if (!(error instanceof FunctionNotFound)) throw error;
      res.writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' });
      res.end(
        JSON.stringify({
          Type: 'User',
          Message: `Function not found: arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`,
        }),
      );
      return;
    }
    const denied = this.denial(callerKey(req.headers.authorization), 'lambda:InvokeFunction', [fn.arn]);
    if (denied !== undefined) {
      res.writeHead(403, { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException' });
      res.end(JSON.stringify({ Type: 'User', Message: denied }));
      return;
    }
    this.invokeCalls.push({ functionName: fn.name, invocationType, payload });
    if (invocationType === 'Event') {
      this.invokeAsync(fn.name, payload, 'api');
      res.writeHead(202, { 'x-amzn-requestid': randomUUID() });
      res.end();
      return;
    }
    if (invocationType === 'DryRun') {
      res.writeHead(204);
      res.end();
      return;
    }
    const invocation = await this.invoke(fn.name, payload, 'api');
    const outcome = invocation.outcome!;
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-amz-executed-version': '$LATEST',
      ...(!outcome.ok && { 'x-amz-function-error': 'Unhandled' }),
    });
    res.end(JSON.stringify(outcome.ok ? outcome.value : outcome.error));
  }

  // ---------------------------------------------------------------- IAM

  private roleOfFunction(fn: DeployedFunction): EmulatedRole {
    const role = this.roles.get(this.roleOf.get(fn.logicalId)!);
    if (!role) throw new Error(`function ${fn.logicalId}: its role is not a role of the template`);
    return role;
  }

  /**
   * Why a call with these credentials may not perform `action` on `resources`, or undefined. Only
   * the functions' credentials are checked (the harness and the tests act as an administrator).
   */
  denial(caller: string | undefined, action: string, resources: readonly string[]): string | undefined {
    const fn = [...this.functions.values()].find((f) => accessKeyOf(f.logicalId) === caller);
    if (!fn) return undefined;
    const decision = authorize(this.roleOfFunction(fn), fn.name, action, resources);
    if (decision.allowed) return undefined;
    this.accessDenied.push({
      functionName: fn.name,
      action,
      resource: resources.join(', '),
      message: decision.message,
    });
    return decision.message;
  }

  private checkSqs(call: GateCall): Refusal | undefined {
    const { QueueUrl, QueueName } = call.body as { QueueUrl?: string; QueueName?: string };
    const queue = [...this.queues.values()].find((q) => q.url === QueueUrl || (QueueName && q.name === QueueName));
    const message = this.denial(call.caller, sqsAction(call.operation), [queue?.arn ?? '*']);
    if (message === undefined) return undefined;
    return {
      status: 400,
      body: { __type: 'com.amazon.coral.service#AccessDeniedException', message },
      headers: { 'x-amzn-query-error': 'AccessDenied;Sender' },
    };
  }

  private checkDynamo(call: GateCall): Refusal | undefined {
    const table = (name: unknown, index?: unknown) =>
      `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${String(name)}${index ? `/index/${String(index)}` : ''}`;
    const body = call.body as Record<string, unknown>;
    const checks: [string, string][] = [];
    if (call.operation === 'BatchGetItem' || call.operation === 'BatchWriteItem') {
      for (const name of Object.keys((body.RequestItems ?? {}) as object)) checks.push([call.operation, table(name)]);
    } else if (call.operation === 'TransactWriteItems' || call.operation === 'TransactGetItems') {
      const single: Record<string, string> = {
        Put: 'PutItem',
        Update: 'UpdateItem',
        Delete: 'DeleteItem',
        ConditionCheck: 'ConditionCheckItem',
        Get: 'GetItem',
      };
      for (const item of (body.TransactItems ?? []) as Record<string, { TableName: string }>[]) {
        for (const [kind, op] of Object.entries(item)) checks.push([single[kind] ?? kind, table(op.TableName)]);
      }
    } else {
      checks.push([call.operation, table(body.TableName, body.IndexName)]);
    }
    for (const [operation, resource] of checks) {
      const message = this.denial(call.caller, `dynamodb:${operation}`, [resource]);
      if (message !== undefined) {
        return { status: 400, body: { __type: 'com.amazon.coral.service#AccessDeniedException', Message: message } };
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------- observation

  /** The EMF metrics the functions printed (lines of pure JSON with `_aws`, as CloudWatch extracts them). */
  metrics(filter: { functionName?: string; name?: string } = {}): EmittedMetric[] {
    const out: EmittedMetric[] = [];
    for (const invocation of this.invocations) {
      if (filter.functionName && invocation.functionName !== filter.functionName) continue;
      for (const line of invocation.logs) {
        if (!line.startsWith('{')) continue;
        let doc: Record<string, unknown>;
        try {
          doc = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        const aws = doc._aws as
          | {
              CloudWatchMetrics?: {
                Namespace: string;
                Dimensions: string[][];
                Metrics: { Name: string; Unit?: string }[];
              }[];
            }
          | undefined;
        for (const directive of aws?.CloudWatchMetrics ?? []) {
          for (const metric of directive.Metrics) {
            if (filter.name && metric.Name !== filter.name) continue;
            const dimensions = Object.fromEntries(directive.Dimensions.flat().map((d) => [d, String(doc[d])]));
            const values = doc[metric.Name];
            for (const value of Array.isArray(values) ? values : [values]) {
              out.push({
                functionName: invocation.functionName,
                requestId: invocation.requestId,
                name: metric.Name,
                value: Number(value),
                unit: metric.Unit ?? 'None',
                namespace: directive.Namespace,
                dimensions,
              });
            }
          }
        }
      }
    }
    return out;
  }

  /** Sum of an EMF metric over every invocation, for the given dimension values. */
  metricSum(name: string, dimensions: Record<string, string> = {}): number {
    return this.metrics({ name })
      .filter((m) => Object.entries(dimensions).every(([k, v]) => m.dimensions[k] === v))
      .reduce((sum, m) => sum + m.value, 0);
  }

  /** Visible, in flight and delayed messages of a queue. */
  async depth(queue: DeployedQueue): Promise<{ visible: number; inFlight: number; delayed: number; total: number }> {
    const out = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queue.fauxqsUrl,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const a = out.Attributes ?? {};
    const visible = Number(a.ApproximateNumberOfMessages ?? 0);
    const inFlight = Number(a.ApproximateNumberOfMessagesNotVisible ?? 0);
    const delayed = Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
    return { visible, inFlight, delayed, total: visible + inFlight + delayed };
  }

  /**
   * Resolves when nothing is left to do: no invocation running, no asynchronous event waiting,
   * no batch held by a poller, and every queue an event source reads empty (delayed and in-flight
   * messages included). Throws after `timeoutMs` with what was still pending and the last errors.
   */
  async waitForIdle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let quiet = 0;
    let pending = '';
    while (Date.now() < deadline) {
      pending = await this.pendingWork();
      quiet = pending === '' ? quiet + 1 : 0;
      // Twice in a row: a poller may be between a receive and its invocation.
      if (quiet >= 2) return;
      await sleep(200);
    }
    const failures = this.invocations
      .filter((i) => i.outcome && !i.outcome.ok)
      .slice(-5)
      .map((i) => `${i.functionName} ${i.requestId}: ${JSON.stringify(i.outcome)}`);
    throw new Error(
      `the emulated deployment was still busy after ${timeoutMs} ms: ${pending}\nlast failed invocations:\n${failures.join('\n')}`,
    );
  }

  private async pendingWork(): Promise<string> {
    const busy: string[] = [];
    if (this.running > 0) busy.push(`${this.running} invocation(s) running`);
    if (this.pendingAsync > 0) busy.push(`${this.pendingAsync} asynchronous event(s) pending`);
    for (const poller of this.pollers) if (poller.holding > 0) busy.push(`${poller.mapping.logicalId} holds a batch`);
    for (const mapping of this.mappings) {
      const depth = await this.depth(mapping.queue);
      if (depth.total > 0) busy.push(`${mapping.queue.logicalId}: ${JSON.stringify(depth)}`);
    }
    return busy.join('; ');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.pollers.map((p) => p.stop()));
    for (const list of this.environments.values()) for (const env of list.splice(0)) env.discard();
    this.sqs.destroy();
    this.dynamodb.destroy();
    await this.services.sqsGate.stop();
    await this.services.dynamoGate.stop();
    await this.services.secrets.stop();
    this.services.lambdaApi.closeAllConnections();
    await new Promise<void>((ok) => this.services.lambdaApi.close(() => ok()));
    await this.services.fauxqs.close();
    await new Promise<void>((ok) => this.services.dynalite.close(() => ok()));
    rmSync(this.services.runtimeDir, { recursive: true, force: true });
  }
}

class FunctionNotFound extends Error {}

/**
 * One execution environment: a child process running the bootstrap, initialized once, then
 * invoked one request at a time, frozen in between, killed at the invocation's timeout.
 */
class ExecutionEnvironment {
  alive = true;
  idle = false;
  private readonly child: ChildProcess;
  private readonly ready: Promise<LambdaError | undefined>;
  private current:
    | {
        invocation: Invocation;
        settle: (outcome: InvocationOutcome) => void;
        /** The child's answer. */
        result: (outcome: InvocationOutcome) => void;
        /** One of the child's two output streams reached the end of the invocation's output. */
        endOfOutput: () => void;
      }
    | undefined;
  private readonly initLogs: string[] = [];
  private frozen = false;

  constructor(
    private readonly fn: DeployedFunction,
    node: string,
    bootstrap: string,
  ) {
    this.child = spawn(node, [`--max-old-space-size=${fn.memoryMiB}`, bootstrap], {
      cwd: fn.taskRoot,
      env: {
        ...fn.environment,
        AWS_LAMBDA_LOG_STREAM_NAME: `${new Date().toISOString().slice(0, 10)}/[$LATEST]${randomUUID().replaceAll('-', '')}`,
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (!line.startsWith(END_OF_OUTPUT)) (this.current?.invocation.logs ?? this.initLogs).push(line);
        else if (this.current?.invocation.requestId === line.slice(END_OF_OUTPUT.length)) this.current.endOfOutput();
      });
    }
    this.ready = new Promise((resolveReady) => {
      const onMessage = (message: RuntimeMessage) => {
        if (message.type === 'ready') resolveReady(undefined);
        else if (message.type === 'initError') resolveReady(message.error);
        else if (message.type === 'result' && this.current?.invocation.requestId === message.requestId) {
          this.current.result(
            message.ok ? { ok: true, value: message.value } : { ok: false, kind: 'function', error: message.error },
          );
        }
      };
      this.child.on('message', onMessage);
      this.child.on('exit', (code, signal) => {
        this.alive = false;
        resolveReady({
          errorType: 'Runtime.ExitError',
          errorMessage: `Runtime exited during init: ${describeExit(code, signal)}`,
          trace: [],
        });
        this.current?.settle({
          ok: false,
          kind: 'crash',
          error: {
            errorType: 'Runtime.ExitError',
            errorMessage: `RequestId: ${this.current.invocation.requestId} Error: Runtime exited with error: ${describeExit(code, signal)}`,
            trace: [],
          },
        });
      });
    });
    this.child.on('error', () => {});
  }

  async invoke(invocation: Invocation, timeoutMs: number): Promise<InvocationOutcome> {
    this.idle = false;
    const logs = invocation.logs;
    logs.push(...this.initLogs.splice(0));
    let initTimer: NodeJS.Timeout | undefined;
    const initError = await Promise.race([
      this.ready,
      new Promise<'timeout'>((resolveTimeout) => {
        initTimer = setTimeout(() => resolveTimeout('timeout'), INIT_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(initTimer);
    if (initError !== undefined) {
      this.discard();
      const error =
        initError === 'timeout'
          ? {
              errorType: 'Runtime.InitError',
              errorMessage: `init phase exceeded ${INIT_TIMEOUT_MS / 1000} s`,
              trace: [],
            }
          : initError;
      return { ok: false, kind: 'init', error };
    }
    if (this.frozen) {
      this.child.kill('SIGCONT');
      this.frozen = false;
    }
    const started = Date.now();
    const message: InvokeMessage = {
      type: 'invoke',
      requestId: invocation.requestId,
      event: invocation.event,
      deadlineMs: started + timeoutMs,
      traceId: `Root=1-${Math.floor(started / 1000).toString(16)}-${randomUUID().replaceAll('-', '').slice(0, 24)};Sampled=0`,
    };
    logs.push(`START RequestId: ${invocation.requestId} Version: $LATEST`);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await new Promise<InvocationOutcome>((settle) => {
      let answer: InvocationOutcome | undefined;
      let ended = 0;
      const finish = () => {
        if (answer && ended === 2) settle(answer);
      };
      this.current = {
        invocation,
        settle,
        result: (outcome) => {
          answer = outcome;
          finish();
        },
        endOfOutput: () => {
          ended++;
          finish();
        },
      };
      timer = setTimeout(() => {
        this.discard();
        settle({
          ok: false,
          kind: 'timeout',
          error: {
            errorType: 'Sandbox.Timedout',
            errorMessage: `${new Date().toISOString()} ${invocation.requestId} Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`,
            trace: [],
          },
        });
      }, timeoutMs);
      this.child.send(message);
    });
    clearTimeout(timer);
    this.current = undefined;
    logs.push(`END RequestId: ${invocation.requestId}`);
    logs.push(
      `REPORT RequestId: ${invocation.requestId}\tDuration: ${Date.now() - started} ms\tMemory Size: ${this.fn.memoryMiB} MB`,
    );
    if (this.alive) {
      // Lambda freezes the environment until its next invocation: no timer or socket of the
      // function runs in between.
      this.child.kill('SIGSTOP');
      this.frozen = true;
      this.idle = true;
    }
    return outcome;
  }

  discard(): void {
    if (!this.alive) return;
    this.alive = false;
    this.idle = false;
    this.child.kill('SIGKILL');
  }
}

/** The role logical id of `{"Fn::GetAtt": [role, "Arn"]}`. */
function roleIdOf(value: unknown, where: string): string {
  const getAtt = (value as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'];
  if (getAtt?.[1] !== 'Arn') throw new Error(`${where}: only a role of the template is emulated`);
  return getAtt[0];
}

function versionOf(node: string): string {
  return execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal: ${signal}` : `exit status ${code}`;
}

/**
 * Lambda's pollers of one SQS event source mapping: receive up to the batch size (waiting up to
 * the batching window to fill it), invoke the function synchronously, then delete what succeeded.
 */
class SqsPoller {
  readonly mapping: EventSourceMapping & { peakConcurrency: number };
  /** Batches received and not yet settled. */
  holding = 0;
  private active = 0;
  private running = true;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly emulator: LambdaEmulator,
    mapping: EventSourceMapping,
  ) {
    this.mapping = { ...mapping };
  }

  start(pollers: number): void {
    this.loops = Array.from({ length: pollers }, () => this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async receive(max: number, waitSeconds: number): Promise<Message[]> {
    const out = await this.emulator.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.mapping.queue.fauxqsUrl,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    return out.Messages ?? [];
  }

  private async loop(): Promise<void> {
    const { batchSize, maxBatchingWindowSeconds } = this.mapping;
    while (this.running) {
      let batch: Message[];
      try {
        batch = await this.receive(batchSize, 1);
        if (batch.length === 0) continue;
        this.holding++;
        const until = Date.now() + maxBatchingWindowSeconds * 1000;
        while (batch.length < batchSize && Date.now() < until) {
          const more = await this.receive(batchSize - batch.length, 0);
          if (more.length === 0) await sleep(100);
          batch.push(...more);
        }
      } catch (error) {
        if (!this.running) return;
        throw error;
      }
      try {
        await this.deliver(batch);
      } finally {
        this.holding--;
      }
    }
  }

  private async deliver(batch: Message[]): Promise<void> {
    const { queue } = this.mapping;
    const records = batch.map((m) => ({
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
      attributes: {
        ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: m.Attributes?.SentTimestamp ?? '',
        SenderId: m.Attributes?.SenderId ?? ACCOUNT,
        ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? '',
        ...(m.Attributes?.AWSTraceHeader && { AWSTraceHeader: m.Attributes.AWSTraceHeader }),
      },
      messageAttributes: Object.fromEntries(
        Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
          k,
          {
            stringValue: v.StringValue,
            binaryValue: v.BinaryValue,
            stringListValues: [],
            binaryListValues: [],
            dataType: v.DataType,
          },
        ]),
      ),
      md5OfBody: m.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: queue.arn,
      awsRegion: REGION,
    }));
    this.active++;
    this.mapping.peakConcurrency = Math.max(this.mapping.peakConcurrency, this.active);
    let invocation: Invocation;
    try {
      invocation = await this.emulator.invoke(this.mapping.functionName, { Records: records }, 'sqs');
    } finally {
      this.active--;
    }
    const outcome = invocation.outcome!;
    // A failed invocation deletes nothing: the batch comes back after the visibility timeout.
    if (!outcome.ok) return;
    const failed = this.mapping.reportBatchItemFailures
      ? failedIds(
          outcome.value,
          records.map((r) => r.messageId),
        )
      : new Set<string>();
    if (failed === 'all') return;
    const done = records.filter((r) => !failed.has(r.messageId));
    for (let i = 0; i < done.length; i += 10) {
      await this.emulator.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queue.fauxqsUrl,
          Entries: done.slice(i, i + 10).map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle })),
        }),
      );
    }
  }
}

/**
 * The messages a ReportBatchItemFailures response names, with Lambda's rules: no response, or no
 * or an empty list, is a success; an entry without a known messageId fails the whole batch.
 */
function failedIds(response: unknown, messageIds: readonly string[]): Set<string> | 'all' {
  if (response === null || response === undefined) return new Set();
  if (typeof response !== 'object') return 'all';
  const list = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (list === null || list === undefined) return new Set();
  if (!Array.isArray(list)) return 'all';
  const ids = new Set<string>();
  for (const entry of list) {
    const id = (entry as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || id === '' || !messageIds.includes(id)) return 'all';
    ids.add(id);
  }
  return ids;
}
