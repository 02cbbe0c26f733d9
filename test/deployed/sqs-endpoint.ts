import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The SQS endpoint the functions are given (AWS_ENDPOINT_URL_SQS), in front of fauxqs. fauxqs
 * names its queues `http://sqs.us-east-1.localhost:PORT/…`, a host this machine does not resolve,
 * and the AWS SDK sends a request to its QueueUrl's host whenever that differs from a configured
 * endpoint. On AWS a queue URL's host is the SQS endpoint itself; so here too: the functions see
 * queue URLs on this endpoint's address, and each request's QueueUrl is mapped to fauxqs's name
 * for the same queue before it is passed on (JSON protocol, which the SDK speaks to SQS).
 */
export interface SqsEndpoint {
  readonly url: string;
  /** Registers a queue: the URL the functions use for it. */
  expose(fauxqsUrl: string): string;
  stop(): Promise<void>;
}

export async function startSqsEndpoint(fauxqsPort: number): Promise<SqsEndpoint> {
  const toFauxqs = new Map<string, string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (body.length > 0 && String(req.headers['content-type']).includes('json')) {
        const parsed = JSON.parse(body.toString('utf8')) as { QueueUrl?: string };
        if (parsed.QueueUrl !== undefined) {
          const mapped = toFauxqs.get(parsed.QueueUrl);
          // An unknown URL goes on unchanged: fauxqs answers it with SQS's own "queue does not exist".
          if (mapped) body = Buffer.from(JSON.stringify({ ...parsed, QueueUrl: mapped }));
        }
      }
      const forward = request(
        {
          host: '127.0.0.1',
          port: fauxqsPort,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: `127.0.0.1:${fauxqsPort}`, 'content-length': String(body.length) },
        },
        (upstream) => {
          res.writeHead(upstream.statusCode ?? 502, upstream.headers);
          upstream.pipe(res);
        },
      );
      forward.on('error', (error) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`the harness could not reach fauxqs: ${error.message}`);
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    expose(fauxqsUrl) {
      const exposed = `${url}${new URL(fauxqsUrl).pathname}`;
      toFauxqs.set(exposed, fauxqsUrl);
      return exposed;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
