import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthError, ConnectorConfigError, RateLimitedError, UnconfirmedWriteError } from '#connectors/sdk/errors';
import { createHttpClient } from '#connectors/sdk/http';
import { lanePace, MemoryPacer } from '#core/pacing';

/**
 * A real HTTP server on 127.0.0.1 that commits each request it receives and then answers as the
 * test says: late (past the client's timeout), with a 502, or at once.
 */
describe('the connectors’ HTTP client', () => {
  let server: Server;
  let url: string;
  const committed: string[] = [];
  let answer: 'late' | 'bad-gateway' | 'ok' | 'throttle-403' | 'forbidden' = 'ok';
  let arrivals: number[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        arrivals.push(Date.now());
        committed.push(`${req.method} ${req.url} ${body}`);
        if (answer === 'late') setTimeout(() => res.end('{}'), 400);
        else if (answer === 'bad-gateway') res.writeHead(502).end('bad gateway');
        else if (answer === 'throttle-403') res.writeHead(403).end('');
        else if (answer === 'forbidden')
          res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"Forbidden"}');
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const client = (extra: Partial<Parameters<typeof createHttpClient>[0]> = {}) =>
    createHttpClient({ baseUrl: url, vendor: 'Vendor', timeoutMs: 150, maxSleepMs: 5000, ...extra });

  it('never sends a create twice after a timeout: the write may have landed (UnconfirmedWriteError)', async () => {
    committed.length = 0;
    answer = 'late';
    const error = await client()
      .request({ method: 'POST', path: '/contacts', json: { email: 'a@x.test' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnconfirmedWriteError);
    expect((error as Error).message).toMatch(/POST \/contacts timed out .* not sent again/);
    expect(committed).toHaveLength(1);
  });

  it('never sends a create twice after a 5xx either', async () => {
    committed.length = 0;
    answer = 'bad-gateway';
    const error = await client()
      .request({ method: 'POST', path: '/contacts', json: {} })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnconfirmedWriteError);
    expect(committed).toHaveLength(1);
  });

  it('retries idempotent calls (PUT, and a POST marked idempotent such as a search)', async () => {
    committed.length = 0;
    answer = 'bad-gateway';
    await client()
      .request({ method: 'PUT', path: '/contacts/1', json: {} })
      .catch(() => {});
    expect(committed).toHaveLength(3);
    committed.length = 0;
    await client()
      .request({ method: 'POST', path: '/contacts/search', json: {}, idempotent: true })
      .catch(() => {});
    expect(committed).toHaveLength(3);
  });

  it('lets the vendor’s documented refusal decide before the 401/403 default', async () => {
    answer = 'throttle-403';
    const refusal = ({ status, body }: { status: number; body: unknown }) =>
      status === 403 && body === '' ? new RateLimitedError('throttled (403 without a body)', 5000) : undefined;
    const throttled = await client({ refusal })
      .request({ path: '/ping' })
      .catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(RateLimitedError);
    answer = 'forbidden';
    expect(
      await client({ refusal })
        .request({ path: '/ping' })
        .catch((e: unknown) => e),
    ).toBeInstanceOf(AuthError);
    const config = () => new ConnectorConfigError('bulk imports are off');
    expect(
      await client({ refusal: config })
        .request({ path: '/ping' })
        .catch((e: unknown) => e),
    ).toBeInstanceOf(ConnectorConfigError);
  });

  it('takes a slot of the lane’s pace before every request', async () => {
    answer = 'ok';
    arrivals = [];
    const pace = lanePace(new MemoryPacer(), { lane: 'l', requestsPerSecond: 10 });
    const http = client({ pace });
    await Promise.all(Array.from({ length: 6 }, () => http.request({ path: '/ping' })));
    arrivals.sort((a, b) => a - b);
    // Six slots 100 ms apart: the last arrives ~500 ms after the first.
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(480);
  });
});
