/**
 * The runtime inside one emulated Lambda execution environment (a child process), standing in
 * for the Node.js runtime's /var/runtime: it loads the handler named by `_HANDLER` from
 * `LAMBDA_TASK_ROOT` once (the init phase), then runs one invocation at a time as the emulator
 * sends them over IPC, with a Lambda context whose remaining time counts down to the deadline the
 * emulator enforces. console.* writes Lambda's text log format (timestamp, request id, level), so
 * only lines written straight to stdout — as Powertools writes its EMF and JSON logs — are JSON.
 *
 * Compiled by esbuild into a directory outside the repository and run with plain `node`
 * (Node 20 or 22): it imports nothing but Node's own modules.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { END_OF_OUTPUT, type InvokeMessage, type LambdaError, type RuntimeMessage } from './runtime-protocol.ts';

type Handler = (event: unknown, context: object, callback?: (error: unknown, value?: unknown) => void) => unknown;

let currentRequestId: string | undefined;

function patchConsole(): void {
  const levels = [
    ['log', 'INFO'],
    ['info', 'INFO'],
    ['warn', 'WARN'],
    ['error', 'ERROR'],
    ['debug', 'DEBUG'],
    ['trace', 'TRACE'],
  ] as const;
  for (const [method, level] of levels) {
    console[method] = (...args: unknown[]) => {
      // Lambda keeps a multi-line message in one log event by turning its newlines into \r.
      const message = format(...args).replaceAll('\n', '\r');
      process.stdout.write(`${new Date().toISOString()}\t${currentRequestId ?? 'undefined'}\t${level}\t${message}\n`);
    };
  }
}

function toLambdaError(error: unknown): LambdaError {
  if (error instanceof Error) {
    return { errorType: error.name, errorMessage: error.message, trace: (error.stack ?? '').split('\n') };
  }
  return { errorType: 'string', errorMessage: String(error), trace: [] };
}

/** As the Node.js runtime does: `index.handler` is `handler` of index.js, index.mjs or index.cjs. */
async function loadHandler(): Promise<Handler> {
  const spec = process.env._HANDLER ?? '';
  const dot = spec.lastIndexOf('.');
  const moduleName = spec.slice(0, dot);
  const exportName = spec.slice(dot + 1);
  const root = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
  const file = ['.js', '.mjs', '.cjs'].map((ext) => path.join(root, moduleName + ext)).find((f) => existsSync(f));
  if (!file) {
    throw Object.assign(new Error(`Cannot find module '${moduleName}'`), { name: 'Runtime.ImportModuleError' });
  }
  const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const handler = module[exportName];
  if (typeof handler !== 'function') {
    throw Object.assign(new Error(`${spec} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  }
  return handler as Handler;
}

function send(message: RuntimeMessage): void {
  if (message.type === 'result') {
    process.stdout.write(`${END_OF_OUTPUT}${message.requestId}\n`);
    process.stderr.write(`${END_OF_OUTPUT}${message.requestId}\n`);
  }
  process.send!(message);
}

async function invoke(handler: Handler, message: InvokeMessage): Promise<void> {
  currentRequestId = message.requestId;
  process.env._X_AMZN_TRACE_ID = message.traceId;
  const name = process.env.AWS_LAMBDA_FUNCTION_NAME ?? '';
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:000000000000:function:${name}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128',
    awsRequestId: message.requestId,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME ?? '',
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME ?? '',
    getRemainingTimeInMillis: () => Math.max(0, message.deadlineMs - Date.now()),
  };
  try {
    const value =
      handler.length >= 3
        ? await new Promise((resolve, reject) =>
            handler(message.event, context, (error, result) => (error ? reject(error) : resolve(result))),
          )
        : await handler(message.event, context);
    // What Lambda returns is the result's JSON.
    send({ type: 'result', requestId: message.requestId, ok: true, value: JSON.parse(JSON.stringify(value ?? null)) });
  } catch (error) {
    const lambdaError = toLambdaError(error);
    console.error('Invoke Error', JSON.stringify(lambdaError));
    send({ type: 'result', requestId: message.requestId, ok: false, error: lambdaError });
  } finally {
    currentRequestId = undefined;
  }
}

patchConsole();
try {
  const handler = await loadHandler();
  process.on('message', (message: InvokeMessage) => {
    if (message.type === 'invoke') void invoke(handler, message);
  });
  send({ type: 'ready' });
} catch (error) {
  const lambdaError = toLambdaError(error);
  console.error('Init Error', JSON.stringify(lambdaError));
  send({ type: 'initError', error: lambdaError });
}
