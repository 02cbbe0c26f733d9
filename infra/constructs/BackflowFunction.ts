import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, RecursiveLoop, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { type FunctionSizing, LOG_RETENTION } from '../settings.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Node.js of the functions; the ESM bundle targets the same version. */
export const FUNCTION_RUNTIME = Runtime.NODEJS_22_X;

/**
 * Modules left out of the bundle. `@duckdb/node-api` is native and only the embedded DuckDB
 * connector (local runs) loads it, lazily; `pg-native` is an optional peer of `pg` we never use.
 */
export const EXTERNAL_MODULES = ['@duckdb/node-api', 'pg-native'];

export interface BackflowFunctionProps {
  /** The generated bundle entry (infra/bundles.ts); its `handler` export is the entry point. */
  readonly entry: string;
  readonly description: string;
  readonly sizing: FunctionSizing;
  /** The deployed config file (see deployed-config.ts), copied into the bundle as backflow.yml. */
  readonly configFile: string;
  readonly environment: Readonly<Record<string, string>>;
  /** Set only where the function must know its own name before deployment (self-invocation). */
  readonly functionName?: string;
}

/**
 * A Backflow Lambda function: Node.js 22 on arm64, an ESM bundle built by the local esbuild with
 * source maps, the validated config bundled next to the handler, its own log group with a
 * retention period, and a role that starts with nothing but writing to that log group.
 */
export class BackflowFunction extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: LogGroup;
  readonly role: Role;

  constructor(scope: Construct, id: string, props: BackflowFunctionProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Logs', { retention: LOG_RETENTION, removalPolicy: RemovalPolicy.DESTROY });
    // An explicit role instead of the default one, which attaches the AWS managed
    // AWSLambdaBasicExecutionRole (log writes to every log group of the account).
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: props.description,
    });
    this.logGroup.grantWrite(this.role);
    const configFile = props.configFile;
    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      functionName: props.functionName,
      description: props.description,
      runtime: FUNCTION_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: props.sizing.memoryMiB,
      timeout: props.sizing.timeout,
      role: this.role,
      logGroup: this.logGroup,
      // Both functions re-trigger themselves on purpose: an exporter gives paced, throttled and
      // retryable batches back to its own queue, the planner continues a long run in a fresh
      // invocation. Lambda would stop such a chain after 16 hops and drop the batch; the engine
      // bounds these loops itself (attempts, throttles, run progress).
      // https://docs.aws.amazon.com/lambda/latest/dg/invocation-recursion.html
      recursiveLoop: RecursiveLoop.ALLOW,
      depsLockFilePath: path.join(ROOT, 'package-lock.json'),
      projectRoot: ROOT,
      environment: {
        BACKFLOW_CONFIG: 'backflow.yml',
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        minify: true,
        keepNames: true,
        sourceMap: true,
        sourcesContent: false,
        forceDockerBundling: false,
        // The AWS SDK is bundled at the versions the tests ran with, not taken from the runtime.
        bundleAwsSDK: true,
        externalModules: EXTERNAL_MODULES,
        // CommonJS dependencies bundled into ESM still call require() and read __dirname.
        inject: [path.join(ROOT, 'infra', 'cjs-globals.ts')],
        banner:
          "import { createRequire as backflowCreateRequire } from 'node:module'; const require = backflowCreateRequire(import.meta.url);",
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir: string, outputDir: string) => [
            `cp ${shellQuote(configFile)} ${shellQuote(path.join(outputDir, 'backflow.yml'))}`,
          ],
        },
      },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Pinned on purpose to nodejs22.x, a supported Lambda runtime (Node.js 22 is maintained until April 2027), the version the ESM bundle targets (esbuild target node22) and the project tests for; moving to a newer runtime is a deliberate upgrade of FUNCTION_RUNTIME and the bundle target together.',
    });
  }

  /** Lets the function read the named Secrets Manager secrets, and no other. */
  grantSecrets(names: Iterable<string>): void {
    const unique = [...new Set(names)];
    for (const name of unique) {
      Secret.fromSecretNameV2(this, `Secret-${name}`, name).grantRead(this.function);
    }
    if (unique.length === 0) return;
    // A secret encrypted with a customer managed key also needs kms:Decrypt on that key, through
    // Secrets Manager only. The key is not known here (the secret is created outside the stack),
    // so the grant names no key but is limited to decryption on behalf of Secrets Manager in this
    // account and region; the key's own policy must still allow the account to delegate it.
    // https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html
    const stack = Stack.of(this);
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
        conditions: {
          StringEquals: {
            'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com`,
            'kms:CallerAccount': stack.account,
          },
        },
      }),
    );
    // cdk-nag names the finding by the ARN as it renders it: tokens as <AWS::…>, known values as is.
    const shown = (value: string, name: string) => (Token.isUnresolved(value) ? `<AWS::${name}>` : value);
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:${shown(stack.partition, 'Partition')}:kms:${shown(stack.region, 'Region')}:${shown(stack.account, 'AccountId')}:key/*]`,
      reason:
        'kms:Decrypt for secrets under a customer managed key: the key ARN is unknown at deploy time, and the grant only works through Secrets Manager (kms:ViaService) in this account.',
    });
  }
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}
