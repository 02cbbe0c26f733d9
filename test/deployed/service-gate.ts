import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callerKey } from './iam.ts';

/**
 * An AWS JSON-protocol endpoint in front of an emulator (fauxqs, dynalite), as the functions are
 * given it (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_DYNAMODB): each call is checked against the
 * caller's IAM policies first, and its body may be rewritten before it is passed on.
 */
export interface GateCall {
  /** Access key id of the signed request. */
  readonly caller: string | undefined;
  /** The operation, from `X-Amz-Target` (`AmazonSQS.SendMessageBatch` → `SendMessageBatch`). */
  readonly operation: string;
  readonly body: Record<string, unknown>;
}

export interface Refusal {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface GateOptions {
  readonly upstreamPort: number;
  /** Answers a call that may not go on; undefined lets it through. */
  readonly check: (call: GateCall) => Refusal | undefined;
  readonly rewrite?: (body: Record<string, unknown>) => Record<string, unknown>;
}

export interface Gate {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startGate(options: GateOptions): Promise<Gate> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] ?? '');
      let parsed: Record<string, unknown> = {};
      try {
        if (body.length > 0) parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        // Not the JSON protocol: checked without a resource, passed on unchanged.
      }
      const refusal = options.check({
        caller: callerKey(req.headers.authorization),
        operation: target.slice(target.indexOf('.') + 1),
        body: parsed,
      });
      if (refusal) {
        res.writeHead(refusal.status, { 'content-type': 'application/x-amz-json-1.0', ...refusal.headers });
        res.end(JSON.stringify(refusal.body));
        return;
      }
      if (options.rewrite && Object.keys(parsed).length > 0)
        body = Buffer.from(JSON.stringify(options.rewrite(parsed)));
      const forward = request(
        {
          host: '127.0.0.1',
          port: options.upstreamPort,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: `127.0.0.1:${options.upstreamPort}`, 'content-length': String(body.length) },
        },
        (upstream) => {
          res.writeHead(upstream.statusCode ?? 502, upstream.headers);
          upstream.pipe(res);
        },
      );
      forward.on('error', (error) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`the harness could not reach its emulator: ${error.message}`);
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
