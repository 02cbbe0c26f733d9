import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CHECK_OBJECT, USER_AGENT, webhookDestination } from '#connectors/destinations/webhook/index';
import { idempotencyKey, sign, verify } from '#connectors/destinations/webhook/signature';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError, TransientError } from '#core/errors';
import { startWebhookReceiver, type WebhookReceiver, type WebhookReceiverOptions } from '#test/fakes/webhook-receiver';

const SECRET = 'whsec_5f2b8c1d9e7a';
const TOKEN = 'tok_9a8b7c6d5e4f';

let receiver: WebhookReceiver | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await receiver?.stop();
  receiver = undefined;
});

async function start(options: WebhookReceiverOptions = {}): Promise<WebhookReceiver> {
  receiver = await startWebhookReceiver({ signingSecret: SECRET, bearerToken: TOKEN, ...options });
  return receiver;
}

async function connect(
  url: string,
  opts: Record<string, unknown> = {},
  pace?: RequestPace,
): Promise<DestinationConnection> {
  const options = webhookDestination.optionsSchema.parse({
    url,
    signing_secret: SECRET,
    bearer_token: TOKEN,
    ...opts,
  });
  const connection = await webhookDestination.connect(options, { projectDir: process.cwd(), pace });
  connections.push(connection);
  return connection;
}

/** A lane's pace that counts: slots taken, throttles; `bookedFor` makes every take() refuse. */
function countingPace(options: { bookedFor?: number } = {}): RequestPace & { taken: number; throttles: number } {
  const pace = {
    taken: 0,
    throttles: 0,
    async take() {
      if (options.bookedFor !== undefined) {
        throw new RateLimitedError('the lane is booked ahead', options.bookedFor, { paced: true });
      }
      pace.taken++;
    },
    async throttled() {
      pace.throttles++;
    },
  };
  return pace;
}

function batch(records: OutboundRecord[], object = 'contacts', matchField = 'email'): WriteBatch {
  return { object, matchField, fieldTypes: {}, records };
}

const upsert = (key: string, match: string, fields: OutboundRecord['fields']): OutboundRecord => ({
  key,
  op: 'upsert',
  match,
  fields,
});

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

function expectNoSecret(error: Error): void {
  const text = `${error.message} ${String(error.cause ?? '')}`;
  expect(text).not.toContain(SECRET);
  expect(text).not.toContain(TOKEN);
}

describe('webhook destination: writes', () => {
  it('creates records, signed, with the documented headers and body', async () => {
    const r = await start();
    const conn = await connect(r.url);
    const outcomes = await conn.write(
      batch([upsert('1', 'a@x.io', { name: 'A' }), upsert('2', 'b@x.io', { name: 'B', age: 40 })]),
    );

    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: expect.any(String) },
      { key: '2', status: 'ok', action: 'created', destinationId: expect.any(String) },
    ]);
    expect(r.store.get('contacts')?.get('a@x.io')).toEqual({ name: 'A' });
    expect(r.store.get('contacts')?.get('b@x.io')).toEqual({ name: 'B', age: 40 });

    const sent = r.received[0]!;
    expect(JSON.parse(sent.rawBody)).toEqual({
      object: 'contacts',
      match_field: 'email',
      records: [
        { key: '1', op: 'upsert', match: 'a@x.io', fields: { name: 'A' } },
        { key: '2', op: 'upsert', match: 'b@x.io', fields: { name: 'B', age: 40 } },
      ],
    });
    expect(sent.headers['content-type']).toBe('application/json');
    expect(sent.headers['user-agent']).toBe(USER_AGENT);
    expect(sent.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(sent.headers['idempotency-key']).toBe(idempotencyKey(sent.rawBody));
    const timestamp = sent.headers['x-backflow-timestamp'] as string;
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(5);
    const signature = sent.headers['x-backflow-signature'] as string;
    expect(signature).toBe(sign(SECRET, timestamp, sent.rawBody));
    expect(verify({ secret: SECRET, timestamp, signature, body: sent.rawBody })).toEqual({ valid: true });
  });

  it('updates: merges fields, a null clears one, an absent one is left untouched', async () => {
    const r = await start();
    const conn = await connect(r.url);
    await conn.write(batch([upsert('1', 'a@x.io', { name: 'A', phone: '555', city: 'Oslo' })]));
    const outcomes = await conn.write(batch([upsert('1', 'a@x.io', { name: 'A2', phone: null })]));

    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'updated', destinationId: expect.any(String) }]);
    expect(r.store.get('contacts')?.get('a@x.io')).toEqual({ name: 'A2', city: 'Oslo' });
  });

  it('update never creates, insert never overwrites', async () => {
    const r = await start();
    const conn = await connect(r.url);
    await conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })]));
    const outcomes = await conn.write(
      batch([
        { key: '2', op: 'update', match: 'missing@x.io', fields: { name: 'M' } },
        { key: '1', op: 'insert', match: 'a@x.io', fields: { name: 'other' } },
        { key: '3', op: 'insert', match: 'c@x.io', fields: { name: 'C' } },
      ]),
    );
    expect(outcomes).toEqual([
      { key: '2', status: 'rejected', reason: 'not found' },
      { key: '1', status: 'rejected', reason: 'exists' },
      { key: '3', status: 'ok', action: 'created', destinationId: expect.any(String) },
    ]);
    expect(r.store.get('contacts')?.has('missing@x.io')).toBe(false);
    expect(r.store.get('contacts')?.get('a@x.io')).toEqual({ name: 'A' });
  });

  it('rejects a record with an invalid email while the rest of the batch lands', async () => {
    const r = await start();
    const conn = await connect(r.url);
    const outcomes = await conn.write(
      batch([
        upsert('1', 'a@x.io', { name: 'A' }),
        upsert('2', 'not-an-email', { name: 'B' }),
        upsert('3', 'c@x.io', { name: 'C' }),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: expect.any(String) },
      { key: '2', status: 'rejected', reason: 'invalid email', field: 'email' },
      { key: '3', status: 'ok', action: 'created', destinationId: expect.any(String) },
    ]);
    expect([...(r.store.get('contacts')?.keys() ?? [])]).toEqual(['a@x.io', 'c@x.io']);

    const byId = await conn.write(batch([upsert('9', 'u9', { email: 'nope' })], 'users', 'id'));
    expect(byId).toEqual([{ key: '9', status: 'rejected', reason: 'invalid email', field: 'email' }]);
    expect(r.store.get('users')?.has('u9')).toBe(false);
  });

  it('sends JSON text as it is, numbers beyond a double exact, and a negative zero as -0', async () => {
    const r = await start();
    const conn = await connect(r.url);
    const json =
      '{"big": 12345678901234567890, "prec": 0.1000000000000000055511151231257827, "n": null, "arr": [1, 2.50, -0]}';
    const outcomes = await conn.write({
      object: 'contacts',
      matchField: 'email',
      fieldTypes: { email: 'string', doc: 'json', nothing: 'json', score: 'number', label: 'string' },
      records: [
        upsert('1', 'a@x.io', { doc: json, nothing: 'null', score: -0, label: '{"not": "json"}' }),
        upsert('2', 'b@x.io', { doc: '{"broken": ', score: 1 }),
        upsert('3', 'c@x.io', { doc: null, score: 0 }),
      ],
    });
    expect(outcomes).toEqual([
      { key: '2', status: 'rejected', field: 'doc', reason: expect.stringMatching(/^not valid JSON text/) },
      { key: '1', status: 'ok', action: 'created', destinationId: expect.any(String) },
      { key: '3', status: 'ok', action: 'created', destinationId: expect.any(String) },
    ]);
    expect(r.received[0]!.rawBody).toBe(
      `{"object":"contacts","match_field":"email","records":[` +
        `{"key":"1","op":"upsert","match":"a@x.io","fields":{"doc":${json},"nothing":null,"score":-0,"label":"{\\"not\\": \\"json\\"}"}},` +
        `{"key":"3","op":"upsert","match":"c@x.io","fields":{"doc":null,"score":0}}]}`,
    );
  });

  it('deletes records (mirror mode)', async () => {
    const r = await start();
    const conn = await connect(r.url);
    await conn.write(batch([upsert('1', 'a@x.io', { name: 'A' }), upsert('2', 'b@x.io', { name: 'B' })]));
    const outcomes = await conn.write(batch([{ key: '1', op: 'delete', match: 'a@x.io', fields: {} }]));
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'deleted', destinationId: expect.any(String) }]);
    expect([...(r.store.get('contacts')?.keys() ?? [])]).toEqual(['b@x.io']);
  });

  it('reads the response contract: no results → all ok; a missing result → retry; retry_after_ms kept', async () => {
    const r = await start();
    const conn = await connect(r.url);
    const records = [upsert('1', 'a@x.io', { n: 1 }), upsert('2', 'b@x.io', { n: 2 }), upsert('3', 'c@x.io', { n: 3 })];

    r.respondWith = () => ({});
    expect(await conn.write(batch(records))).toEqual(records.map((rec) => ({ key: rec.key, status: 'ok' })));

    r.respondWith = (results) => ({
      results: [
        results[0],
        { key: '2', status: 'retry', reason: 'locked', retry_after_ms: 1500 },
        { key: 'zz', status: 'ok' },
      ],
    });
    expect(await conn.write(batch(records.map((rec) => ({ ...rec, fields: { n: 0 } }))))).toEqual([
      { key: '1', status: 'ok', action: 'updated', destinationId: expect.any(String) },
      { key: '2', status: 'retry', reason: 'locked', afterMs: 1500 },
      { key: '3', status: 'retry', reason: 'no result for this record' },
    ]);
  });

  it('sends nothing for an empty batch', async () => {
    const r = await start();
    const conn = await connect(r.url);
    expect(await conn.write(batch([]))).toEqual([]);
    expect(r.requestCount).toBe(0);
  });
});

describe('webhook destination: destination ids, pace and the URL', () => {
  it('sends the id the receiver gave (records[].id) on updates and deletes', async () => {
    const r = await start();
    const conn = await connect(r.url);
    const [created] = await conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })]));
    const id = created?.status === 'ok' ? created.destinationId : undefined;
    expect(id).toMatch(/^rec_/);
    await conn.write(batch([{ ...upsert('1', 'a@x.io', { name: 'A2' }), destinationId: id }]));
    await conn.write(batch([{ key: '1', op: 'delete', match: 'a@x.io', fields: {}, destinationId: id }]));
    expect(r.received.map((b) => b.records[0]!.id)).toEqual([undefined, id, id]);
    expect(JSON.parse(r.received[1]!.rawBody).records[0]).toEqual({
      key: '1',
      op: 'upsert',
      match: 'a@x.io',
      id,
      fields: { name: 'A2' },
    });
  });

  it("every attempt takes a slot from the lane's pace, and a 429 slows the lane", async () => {
    const r = await start();
    const pace = countingPace();
    const conn = await connect(r.url, {}, pace);
    r.failNext(1, 500);
    await conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })]));
    expect(r.requestCount).toBe(2);
    expect(pace.taken).toBe(2);
    expect(pace.throttles).toBe(0);
    r.failNext(1, 429, { 'retry-after': '3' });
    const error = (await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'B' })])))) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.retryAfterMs).toBe(3000);
    expect(pace.taken).toBe(3);
    expect(pace.throttles).toBe(1);
  });

  it('a lane booked too far ahead sends nothing and gives the batch back as paced', async () => {
    const r = await start();
    const pace = countingPace({ bookedFor: 5000 });
    const conn = await connect(r.url, {}, pace);
    const error = (await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])))) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.paced).toBe(true);
    expect(r.requestCount).toBe(0);
  });

  it('posts to the url exactly as configured, path and query included', async () => {
    const r = await start();
    const conn = await connect(`${r.url}?team=growth`);
    await conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })]));
    const noSlash = await connect(r.url);
    await noSlash.write(batch([upsert('2', 'b@x.io', { name: 'B' })]));
    expect(r.requests.map((q) => [q.method, q.path])).toEqual([
      ['POST', '/hooks/backflow?team=growth'],
      ['POST', '/hooks/backflow'],
    ]);
  });

  it('signs every attempt with its own timestamp, with the same body and Idempotency-Key', async () => {
    const r = await start();
    const conn = await connect(r.url);
    r.failNext(2, 503);
    await conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })]));
    expect(r.requests).toHaveLength(3);
    for (const q of r.requests) {
      const timestamp = q.headers['x-backflow-timestamp'] as string;
      const signature = q.headers['x-backflow-signature'] as string;
      expect(verify({ secret: SECRET, timestamp, signature, body: q.rawBody })).toEqual({ valid: true });
      expect(q.headers['idempotency-key']).toBe(idempotencyKey(q.rawBody));
    }
  });
});

describe('webhook destination: whole-batch failures', () => {
  it('a wrong signing secret is an AuthError that does not leak either secret', async () => {
    const r = await start({ signingSecret: 'the-receivers-secret' });
    const conn = await connect(r.url);
    const error = await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain('401');
    expectNoSecret(error);
    expect(r.store.size).toBe(0);
  });

  it('a wrong bearer token is an AuthError', async () => {
    const r = await start({ bearerToken: 'another-token' });
    const conn = await connect(r.url);
    const error = await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])));
    expect(error).toBeInstanceOf(AuthError);
    expectNoSecret(error);
  });

  it('429 is a RateLimitedError with retryAfterMs from Retry-After (seconds or HTTP date)', async () => {
    const r = await start();
    const conn = await connect(r.url);
    r.failNext(1, 429, { 'retry-after': '7' });
    const error = await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(7000);
    expect(r.requestCount).toBe(1);

    r.failNext(1, 429, { 'retry-after': new Date(Date.now() + 30_000).toUTCString() });
    const dated = (await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])))) as RateLimitedError;
    expect(dated).toBeInstanceOf(RateLimitedError);
    expect(dated.retryAfterMs).toBeGreaterThan(25_000);
    expect(dated.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it("the receiver's own rate limit surfaces as RateLimitedError", async () => {
    const r = await start({ rateLimit: 2 });
    const conn = await connect(r.url);
    await conn.write(batch([upsert('1', 'a@x.io', { n: 1 })]));
    await conn.write(batch([upsert('1', 'a@x.io', { n: 2 })]));
    const error = (await caught(conn.write(batch([upsert('1', 'a@x.io', { n: 3 })])))) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(1000);
  });

  it('retries 5xx within the call: two 500s then success, with a stable Idempotency-Key', async () => {
    const r = await start();
    const conn = await connect(r.url);
    r.failNext(2, 500);
    const outcomes = await conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })]));
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'created', destinationId: expect.any(String) }]);
    expect(r.requests.map((q) => q.status)).toEqual([500, 500, 200]);
    expect(new Set(r.requests.map((q) => q.headers['idempotency-key'])).size).toBe(1);
  });

  it('a persistent 500 is a TransientError after max_attempts, sleeping at most ~2 s', async () => {
    const r = await start();
    const conn = await connect(r.url, { max_attempts: 3 });
    r.failNext(10, 503, {}, `upstream down, secret was ${SECRET}`);
    const began = Date.now();
    const error = await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain('503');
    expect(error.message).toContain('after 3 attempt(s)');
    expectNoSecret(error);
    expect(r.requestCount).toBe(3);
    expect(Date.now() - began).toBeLessThan(2_500);
  });

  it('a timeout is retried, then a TransientError', async () => {
    const r = await start();
    const conn = await connect(r.url, { timeout_ms: 150, max_attempts: 2 });
    r.delayNext(2, 600);
    const error = await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain('timed out');
    expect(r.requestCount).toBe(2);
  });

  it('an unreachable endpoint is a TransientError', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const conn = await connect(`http://127.0.0.1:${port}/hook`, { max_attempts: 2 });
    const error = await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain('network error');
  });

  it('a batch over the receiver maximum is refused as ConnectorConfigError', async () => {
    const r = await start({ maxBatch: 5 });
    const conn = await connect(r.url);
    const records = Array.from({ length: 6 }, (_, i) => upsert(String(i), `u${i}@x.io`, { i }));
    const error = await caught(conn.write(batch(records)));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toContain('413');
    expect(error.message).toContain('batch_size');
    expect(r.store.size).toBe(0);
  });

  it('a refused request (400/404/422) is a ConnectorConfigError quoting the body without secrets', async () => {
    const r = await start();
    const conn = await connect(`${r.url}/path-token-abc123?key=query-token-xyz`);
    r.failNext(1, 422, {}, JSON.stringify({ error: `bad payload, auth was Bearer ${TOKEN} and ${SECRET}` }));
    const error = await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toContain('422');
    expect(error.message).toContain('bad payload');
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain('path-token-abc123');
    expect(error.message).not.toContain('query-token-xyz');
    expectNoSecret(error);

    const keyed = await connect(r.url, { headers: { 'X-Api-Key': 'api-key-from-secret' } });
    r.failNext(1, 400, {}, 'unknown key api-key-from-secret');
    const headerError = await caught(keyed.write(batch([upsert('1', 'a@x.io', { name: 'A' })])));
    expect(headerError).toBeInstanceOf(ConnectorConfigError);
    expect(headerError.message).not.toContain('api-key-from-secret');

    r.failNext(1, 404, {}, 'no such hook');
    expect(await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])))).toBeInstanceOf(
      ConnectorConfigError,
    );
  });

  it('does not follow redirects', async () => {
    const r = await start();
    const conn = await connect(r.url);
    r.failNext(1, 302, { location: 'http://127.0.0.1:1/elsewhere' });
    const error = await caught(conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })])));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toContain('redirect');
  });
});

describe('webhook destination: check, fields, options', () => {
  it('check() posts the empty check batch; a bad token fails it with AuthError', async () => {
    const r = await start();
    const conn = await connect(r.url);
    await conn.check();
    expect(JSON.parse(r.requests[0]!.rawBody)).toEqual({ object: CHECK_OBJECT, records: [] });
    expect(r.store.size).toBe(0);
    expect(await conn.fields('contacts')).toEqual([]);

    const bad = await connect(r.url, { bearer_token: 'wrong-token' });
    const error = await caught(bad.check());
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).not.toContain('wrong-token');
  });

  it('works without secrets and sends extra headers', async () => {
    receiver = await startWebhookReceiver();
    const conn = await connect(receiver.url, {
      signing_secret: undefined,
      bearer_token: undefined,
      headers: { 'X-Team': 'growth' },
    });
    await conn.write(batch([upsert('1', 'a@x.io', { name: 'A' })]));
    const sent = receiver.received[0]!;
    expect(sent.headers['x-team']).toBe('growth');
    expect(sent.headers['x-backflow-signature']).toBeUndefined();
    expect(sent.headers.authorization).toBeUndefined();
    expect(sent.headers['x-backflow-timestamp']).toMatch(/^\d+$/);
  });

  it('validates options', () => {
    const parse = (o: Record<string, unknown>) => webhookDestination.optionsSchema.safeParse(o);
    const ok = parse({ url: 'https://hooks.example.com/in' });
    expect(ok.success && ok.data).toEqual({
      url: 'https://hooks.example.com/in',
      timeout_ms: 10_000,
      max_attempts: 3,
    });
    expect(parse({ url: 'ftp://example.com' }).success).toBe(false);
    expect(parse({ url: 'https://user:pw@example.com' }).success).toBe(false);
    expect(parse({ url: 'https://example.com', headers: { 'X-Backflow-Signature': 'x' } }).success).toBe(false);
    expect(parse({ url: 'https://example.com', headers: { 'bad header': 'x' } }).success).toBe(false);
    expect(parse({ url: 'https://example.com', signing_secret: 'abc\n' }).success).toBe(false);
    expect(parse({ url: 'https://example.com', unknown: 1 }).success).toBe(false);
    expect(webhookDestination.secretKeys).toEqual(['signing_secret', 'bearer_token']);
    expect(webhookDestination.limits.batchSize.value).toBe(100);
  });

  it('refuses a bearer_token together with an Authorization header', async () => {
    const error = await caught(connect('https://example.com/in', { headers: { Authorization: 'Basic abc' } }));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expectNoSecret(error);
  });
});

describe('webhook signature helpers', () => {
  const body = '{"object":"contacts","records":[]}';
  const now = 1_700_000_000;

  it('verifies, refuses stale, tampered and malformed signatures, and accepts rotated secrets', () => {
    const signature = sign(SECRET, now, body);
    expect(signature).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(verify({ secret: SECRET, timestamp: String(now), signature, body, nowSeconds: now + 10 })).toEqual({
      valid: true,
    });
    expect(verify({ secret: SECRET, timestamp: String(now), signature, body, nowSeconds: now + 301 })).toEqual({
      valid: false,
      reason: 'expired',
    });
    expect(verify({ secret: SECRET, timestamp: String(now), signature, body: `${body} `, nowSeconds: now })).toEqual({
      valid: false,
      reason: 'mismatch',
    });
    expect(verify({ secret: SECRET, timestamp: String(now), signature: 'v1=zz', body, nowSeconds: now })).toEqual({
      valid: false,
      reason: 'malformed',
    });
    expect(verify({ secret: SECRET, timestamp: undefined, signature, body })).toEqual({
      valid: false,
      reason: 'missing',
    });
    expect(
      verify({ secret: ['new-secret', SECRET], timestamp: String(now), signature, body, nowSeconds: now }),
    ).toEqual({ valid: true });
  });
});
