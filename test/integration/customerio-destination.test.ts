import { afterEach, describe, expect, it } from 'vitest';
import { customerioDestination } from '#connectors/destinations/customerio/index';
import { MAX_ACTION_BYTES, MAX_BATCH_BYTES } from '#connectors/destinations/customerio/limits';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import {
  type CustomerioFake,
  type CustomerioFakeOptions,
  INVALID_EMAIL,
  startCustomerioFake,
} from '#test/fakes/customerio/server';
import { countingPace } from '../fakes/counting-pace.ts';

const SITE_ID = 'f0e1d2c3b4a596877869';
const API_KEY = 'cio-track-9d8c7b6a5f4e3d2c1b0a';

let fake: CustomerioFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<CustomerioFakeOptions> = {}): Promise<CustomerioFake> {
  fake = await startCustomerioFake({ siteId: SITE_ID, apiKey: API_KEY, ...options });
  return fake;
}

async function connect(opts: Record<string, unknown>, pace?: RequestPace): Promise<DestinationConnection> {
  const options = customerioDestination.optionsSchema.parse({ site_id: SITE_ID, api_key: API_KEY, ...opts });
  const connection = await customerioDestination.connect(options, {
    projectDir: process.cwd(),
    pace,
    purpose: pace ? 'write' : 'discover',
  });
  connections.push(connection);
  return connection;
}

function batch(records: OutboundRecord[], matchField = 'id', object = 'people'): WriteBatch {
  return { object, matchField, fieldTypes: {}, records };
}

const record = (
  key: string,
  match: OutboundRecord['match'],
  fields: OutboundRecord['fields'] = {},
  op: OutboundRecord['op'] = 'upsert',
): OutboundRecord => ({ key, op, match, fields });

const batches = (f: CustomerioFake) => f.requests.filter((r) => r.method === 'POST' && r.path === '/api/v2/batch');

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('customerio destination: definition', () => {
  it('declares the documented limits, modes, object and formats', () => {
    expect(customerioDestination.limits.requestsPerSecond).toEqual({
      value: 90,
      doc: 'https://docs.customer.io/integrations/api/track/#section/Rate-Limits',
    });
    expect(customerioDestination.limits.batchSize.doc).toMatch(/^https:\/\/docs\.customer\.io\//);
    expect(customerioDestination.modes).toEqual(['upsert', 'update', 'mirror']);
    expect(customerioDestination.secretKeys).toEqual(['api_key']);
    expect(customerioDestination.objects).toEqual([
      expect.objectContaining({ name: 'people', matchKeys: ['id', 'email'], onDelete: 'delete' }),
    ]);
    expect(customerioDestination.formats).toMatchObject({ timestamp: 'epoch-s', date: 'iso' });
  });

  it('takes the region, or a base_url that overrides it', () => {
    const parse = (o: Record<string, unknown>) =>
      customerioDestination.optionsSchema.safeParse({ site_id: SITE_ID, api_key: API_KEY, ...o });
    expect(parse({}).data?.region).toBe('us');
    expect(parse({ region: 'eu' }).success).toBe(true);
    expect(parse({ region: 'apac' }).success).toBe(false);
    expect(parse({ base_url: 'https://user:pw@track.customer.io' }).success).toBe(false);
    expect(parse({ api_key: 'key\n' }).success).toBe(false);
    expect(customerioDestination.optionsSchema.safeParse({ api_key: API_KEY }).success).toBe(false);
  });
});

describe('customerio destination: writes', () => {
  it('identifies people by id with the documented request and Basic auth', async () => {
    const f = await start();
    const pace = countingPace();
    const conn = await connect({ base_url: f.url }, pace);
    const outcomes = await conn.write(
      batch([record('1', 'u-1', { email: 'ada@example.com', plan: 'pro' }), record('2', 7, { plan: 'free' })]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok' },
      { key: '2', status: 'ok' },
    ]);
    const [sent] = batches(f);
    expect(sent!.headers.authorization).toBe(`Basic ${Buffer.from(`${SITE_ID}:${API_KEY}`).toString('base64')}`);
    expect(sent!.body).toEqual({
      batch: [
        {
          type: 'person',
          identifiers: { id: 'u-1' },
          action: 'identify',
          attributes: { email: 'ada@example.com', plan: 'pro' },
        },
        { type: 'person', identifiers: { id: '7' }, action: 'identify', attributes: { plan: 'free' } },
      ],
    });
    expect(f.person('id', 'u-1')).toMatchObject({ email: 'ada@example.com', plan: 'pro' });
    expect(pace.taken).toBe(1);
  });

  it('matches on email, clears an attribute set to null, and leaves one left out', async () => {
    const f = await start();
    f.addPerson({ email: 'grace@example.com', plan: 'pro', city: 'Arlington' });
    const conn = await connect({ base_url: f.url }, countingPace());
    await conn.write(batch([record('g', 'grace@example.com', { plan: null })], 'email'));
    expect(f.person('email', 'grace@example.com')).toEqual(
      expect.objectContaining({ email: 'grace@example.com', city: 'Arlington' }),
    );
    expect(f.person('email', 'grace@example.com')).not.toHaveProperty('plan');
  });

  it('update mode sends "_update": true and never creates a person', async () => {
    const f = await start();
    f.addPerson({ id: 'known', plan: 'free' });
    const conn = await connect({ base_url: f.url }, countingPace());
    const outcomes = await conn.write(
      batch([record('k', 'known', { plan: 'pro' }, 'update'), record('n', 'new', { plan: 'pro' }, 'update')]),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok']);
    expect((batches(f)[0]!.body as { batch: { attributes: unknown }[] }).batch[0]!.attributes).toEqual({
      plan: 'pro',
      _update: true,
    });
    expect(f.person('id', 'known')).toMatchObject({ plan: 'pro' });
    expect(f.person('id', 'new')).toBeUndefined();
  });

  it('deletes people in mirror mode with the delete action', async () => {
    const f = await start();
    f.addPerson({ id: 'gone' });
    const conn = await connect({ base_url: f.url }, countingPace());
    const outcomes = await conn.write(batch([record('x', 'gone', {}, 'delete')]));
    expect(outcomes).toEqual([{ key: 'x', status: 'ok', action: 'deleted' }]);
    expect((batches(f)[0]!.body as { batch: unknown[] }).batch[0]).toEqual({
      type: 'person',
      identifiers: { id: 'gone' },
      action: 'delete',
    });
    expect(f.person('id', 'gone')).toBeUndefined();
  });

  it('reports the actions a 207 refuses by batch_index while the rest land', async () => {
    const f = await start();
    const conn = await connect({ base_url: f.url }, countingPace());
    const outcomes = await conn.write(
      batch(
        [
          record('1', 'a@example.com', { plan: 'pro' }),
          record('2', 'not-an-email', { plan: 'pro' }),
          record('3', 'c@example.com', { plan: 'pro' }),
        ],
        'email',
      ),
    );
    expect(outcomes[0]).toEqual({ key: '1', status: 'ok' });
    expect(outcomes[1]).toMatchObject({ key: '2', status: 'rejected' });
    expect((outcomes[1] as { reason: string }).reason).toContain(INVALID_EMAIL);
    expect(outcomes[2]).toEqual({ key: '3', status: 'ok' });
    expect(batches(f)[0]!.status).toBe(207);
    expect(f.person('email', 'c@example.com')).toBeDefined();
  });

  it('refuses locally what the documented customer limits refuse, and sends the rest', async () => {
    const f = await start();
    const conn = await connect({ base_url: f.url }, countingPace());
    const outcomes = await conn.write(
      batch([
        record('long-id', 'x'.repeat(151), { plan: 'a' }),
        record('long-value', 'v', { bio: 'y'.repeat(1001) }),
        record('empty', null, { plan: 'a' }),
        record('ok', 'fine', { plan: 'a' }),
      ]),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected', 'ok']);
    expect(outcomes[1]).toMatchObject({ field: 'bio' });
    expect((batches(f)[0]!.body as { batch: unknown[] }).batch).toHaveLength(1);
  });

  it('splits a batch into bodies under 500 KB and refuses an action over 32 KB', async () => {
    const f = await start();
    const conn = await connect({ base_url: f.url }, countingPace());
    // 40 attributes of 900 bytes: about 37 KB per person, over the per-action cap.
    const huge = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`a${i}`, 'z'.repeat(900)]));
    // 30 attributes of 900 bytes: about 28 KB per person; 30 people need two requests.
    const big = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`a${i}`, 'z'.repeat(900)]));
    const records = [record('huge', 'h', huge), ...Array.from({ length: 30 }, (_, i) => record(`p${i}`, `p${i}`, big))];
    const outcomes = await conn.write(batch(records));
    expect(outcomes[0]).toMatchObject({ key: 'huge', status: 'rejected' });
    expect((outcomes[0] as { reason: string }).reason).toMatch(new RegExp(`at most ${MAX_ACTION_BYTES} bytes`));
    expect(outcomes.slice(1).every((o) => o.status === 'ok')).toBe(true);
    const sent = batches(f);
    expect(sent.length).toBeGreaterThan(1);
    for (const r of sent) expect(r.bytes).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    expect(f.people).toHaveLength(30);
  });

  it('keeps what landed when a later request is rate limited', async () => {
    const f = await start();
    const conn = await connect({ base_url: f.url }, countingPace());
    const big = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`a${i}`, 'z'.repeat(900)]));
    const records = Array.from({ length: 30 }, (_, i) => record(`p${i}`, `p${i}`, big));
    // The second request is throttled: the first one's people are ok, the rest go back throttled.
    let calls = 0;
    const original = f.requests.push.bind(f.requests);
    f.requests.push = (...items) => {
      // Pushed before the fake answers: the second request is the one throttled.
      if (items[0]?.path === '/api/v2/batch' && ++calls === 2) f.throttleNext(1);
      return original(...items);
    };
    const outcomes = await conn.write(batch(records));
    const ok = outcomes.filter((o) => o.status === 'ok');
    const back = outcomes.filter((o) => o.status === 'retry');
    expect(ok.length).toBeGreaterThan(0);
    expect(back.length).toBeGreaterThan(0);
    expect(back.every((o) => o.status === 'retry' && o.throttled === 'rate-limit')).toBe(true);
    expect(f.people).toHaveLength(ok.length);
  });

  it('throws RateLimitedError on a 429 of the first request, and slows the lane', async () => {
    const f = await start();
    f.throttleNext(1);
    const pace = countingPace();
    const conn = await connect({ base_url: f.url }, pace);
    const error = await caught(conn.write(batch([record('1', 'a', { plan: 'x' })])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(1000);
    expect(pace.throttles).toBe(1);
  });

  it('retries a 5xx (the batch of identify and delete actions is idempotent)', async () => {
    const f = await start();
    f.failNext(1, 503);
    const conn = await connect({ base_url: f.url }, countingPace());
    const outcomes = await conn.write(batch([record('1', 'a', { plan: 'x' })]));
    expect(outcomes).toEqual([{ key: '1', status: 'ok' }]);
    expect(batches(f)).toHaveLength(2);
  });

  it('refuses insert, unknown match keys, reserved attributes and other objects', async () => {
    const f = await start();
    const conn = await connect({ base_url: f.url }, countingPace());
    await expect(conn.write(batch([record('1', 'a', {}, 'insert')]))).rejects.toThrow(ConnectorConfigError);
    await expect(conn.write(batch([record('1', 'a')], 'phone'))).rejects.toThrow(/matched on id or email/);
    await expect(conn.write(batch([record('1', 'a', { _update: false })]))).rejects.toThrow(/flag or identifier/);
    await expect(conn.write(batch([record('1', 'a')], 'id', 'accounts'))).rejects.toThrow(/no object "accounts"/);
    expect(batches(f)).toHaveLength(0);
  });

  it('formats values from the model column type: timestamps as Unix seconds', async () => {
    const f = await start();
    const conn = withFormats(await connect({ base_url: f.url }, countingPace()), customerioDestination.formats);
    await conn.write({
      ...batch([record('1', 'a', { signed_up_at: '2024-03-01T12:00:00.000Z', born: '1990-05-17', vip: true })]),
      fieldTypes: { signed_up_at: 'timestamp', born: 'date', vip: 'boolean' },
    });
    expect(f.person('id', 'a')).toMatchObject({ signed_up_at: 1709294400, born: '1990-05-17', vip: true });
  });
});

describe('customerio destination: check, fields and auth', () => {
  it('checks the credentials and the region with GET /api/v1/accounts/region', async () => {
    const f = await start({ region: 'eu' });
    const pace = countingPace();
    await expect((await connect({ base_url: f.url }, pace)).check()).resolves.toBeUndefined();
    expect(pace.taken).toBe(1);
    expect(f.requests[0]).toMatchObject({ method: 'GET', path: '/api/v1/accounts/region', status: 200 });
  });

  it('ends revoked credentials in an AuthError that names site_id, api_key and region, the key redacted', async () => {
    const f = await start();
    f.revoke();
    const conn = await connect({ base_url: f.url }, countingPace());
    const error = await caught(conn.write(batch([record('1', 'a', { plan: 'x' })])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/site_id.*api_key.*region/);
    expect(error.message).not.toContain(API_KEY);
    await expect(conn.check()).rejects.toThrow(AuthError);
  });

  it('reports the identifiers as the only fields, without a request', async () => {
    const f = await start();
    const conn = await connect({ base_url: f.url });
    expect(await conn.fields('people')).toEqual([
      { name: 'id', type: 'string', required: false, kind: 'known', matchable: true },
      { name: 'email', type: 'string', required: false, kind: 'known', matchable: true },
    ]);
    await expect(conn.fields('accounts')).rejects.toThrow(ConnectorConfigError);
    expect(f.requests).toHaveLength(0);
  });
});
