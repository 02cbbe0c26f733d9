import { afterEach, describe, expect, it } from 'vitest';
import { nextCursor } from '#connectors/destinations/braze/client';
import { brazeDestination } from '#connectors/destinations/braze/index';
import { BRAZE_INSTANCES } from '#connectors/destinations/braze/instances';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError, TransientError } from '#core/errors';
import {
  type BrazeFake,
  type BrazeFakeOptions,
  IDENTIFIER_REQUIRED,
  INVALID_EMAIL,
  NO_VALID_DATA,
  startBrazeFake,
} from '#test/fakes/braze/server';
import { countingPace } from '../fakes/counting-pace.ts';

const API_KEY = 'braze-rest-7f3a9c21-5d4e-4b8a-9e6f-0c1d2b3a4e5f';

let fake: BrazeFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<BrazeFakeOptions> = {}): Promise<BrazeFake> {
  fake = await startBrazeFake({ apiKey: API_KEY, ...options });
  return fake;
}

async function connect(
  baseUrl: string,
  opts: Record<string, unknown> = {},
  pace?: RequestPace,
): Promise<DestinationConnection> {
  const options = brazeDestination.optionsSchema.parse({ base_url: baseUrl, api_key: API_KEY, ...opts });
  const connection = await brazeDestination.connect(options, {
    projectDir: process.cwd(),
    pace,
    purpose: pace ? 'write' : 'discover',
  });
  connections.push(connection);
  return connection;
}

function batch(records: OutboundRecord[], matchField = 'external_id', object = 'users'): WriteBatch {
  return { object, matchField, fieldTypes: {}, records };
}

const record = (
  key: string,
  match: OutboundRecord['match'],
  fields: OutboundRecord['fields'] = {},
  op: OutboundRecord['op'] = 'upsert',
): OutboundRecord => ({ key, op, match, fields });

const posts = (f: BrazeFake, path: string) => f.requests.filter((r) => r.method === 'POST' && r.path === path);

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('braze destination: definition', () => {
  it('declares the documented limits, modes, object and formats', () => {
    expect(brazeDestination.limits.batchSize.value).toBeLessThanOrEqual(75);
    expect(brazeDestination.limits.batchSize.doc).toMatch(/^https:\/\/www\.braze\.com\/docs\//);
    // Under /users/delete's 20,000 a minute (333/s) and /users/track's 3,000 per 3 s.
    expect(brazeDestination.limits.requestsPerSecond).toEqual({
      value: 300,
      doc: 'https://www.braze.com/docs/api/api_limits/',
    });
    expect(brazeDestination.modes).toEqual(['upsert', 'update', 'mirror']);
    expect(brazeDestination.secretKeys).toEqual(['api_key']);
    expect(brazeDestination.objects).toEqual([
      expect.objectContaining({ name: 'users', matchKeys: ['external_id', 'email'], onDelete: 'delete' }),
      expect.objectContaining({
        name: 'subscription_group:<id>',
        matchKeys: ['external_id', 'email'],
        onDelete: 'remove',
      }),
      expect.objectContaining({
        name: 'array:<attribute>:<value>',
        matchKeys: ['external_id', 'email'],
        onDelete: 'remove',
      }),
    ]);
    expect(brazeDestination.formats).toMatchObject({ date: 'iso', timestamp: 'iso', phone: 'e164' });
  });

  it('requires base_url, and points a dashboard or SDK host at the REST endpoint', () => {
    const parse = (o: Record<string, unknown>) => brazeDestination.optionsSchema.safeParse({ api_key: API_KEY, ...o });
    const missing = parse({});
    expect(missing.success).toBe(false);
    expect(missing.error?.issues[0]?.message).toMatch(/REST endpoint of your Braze instance/);
    const dashboard = parse({ base_url: 'https://dashboard-02.braze.com' });
    expect(dashboard.error?.issues[0]?.message).toMatch(/use https:\/\/rest\.iad-02\.braze\.com \(instance US-02\)/);
    const sdk = parse({ base_url: 'https://sdk.fra-01.braze.eu' });
    expect(sdk.error?.issues[0]?.message).toMatch(/use https:\/\/rest\.fra-01\.braze\.eu \(instance EU-01\)/);
    for (const { rest } of BRAZE_INSTANCES) expect(parse({ base_url: rest }).success).toBe(true);
    expect(parse({ base_url: 'https://braze-proxy.internal.example.com/braze' }).success).toBe(true);
    expect(parse({ base_url: 'https://rest.iad-01.braze.com', api_key: 'key\n' }).success).toBe(false);
  });
});

describe('braze destination: writes', () => {
  it('creates and updates users by external_id with the documented request', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([
        record('1', 'u-1', { email: 'ada@example.com', first_name: 'Ada', plan: 'pro' }),
        record('2', 2, { first_name: 'Grace', tags: ['a', 'b'] }),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok' },
      { key: '2', status: 'ok' },
    ]);
    const [sent] = posts(f, '/users/track');
    expect(sent?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent?.headers['content-type']).toMatch(/^application\/json/);
    expect(sent?.body).toEqual({
      attributes: [
        { external_id: 'u-1', email: 'ada@example.com', first_name: 'Ada', plan: 'pro' },
        { external_id: '2', first_name: 'Grace', tags: ['a', 'b'] },
      ],
    });
    expect(f.user('external_id', 'u-1')).toMatchObject({ email: 'ada@example.com', first_name: 'Ada', plan: 'pro' });

    await conn.write(batch([record('1', 'u-1', { plan: 'enterprise' })]));
    expect(f.users).toHaveLength(2);
    expect(f.user('external_id', 'u-1')).toMatchObject({ first_name: 'Ada', plan: 'enterprise' });
  });

  it('clears an attribute sent as null and leaves absent ones untouched', async () => {
    const f = await start();
    f.addUser({ external_id: 'u-1', first_name: 'Ada', plan: 'pro', lifetime_value: 12.5 });
    const conn = await connect(f.url);
    await conn.write(batch([record('1', 'u-1', { lifetime_value: null })]));
    expect(posts(f, '/users/track')[0]?.body).toEqual({ attributes: [{ external_id: 'u-1', lifetime_value: null }] });
    expect(f.user('external_id', 'u-1')).toEqual({ external_id: 'u-1', first_name: 'Ada', plan: 'pro' });
  });

  it('update mode sends _update_existing_only, so Braze never creates a user', async () => {
    const f = await start();
    f.addUser({ external_id: 'known', plan: 'free' });
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([record('1', 'known', { plan: 'pro' }, 'update'), record('2', 'unknown', { plan: 'pro' }, 'update')]),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok']);
    expect(posts(f, '/users/track')[0]?.body).toEqual({
      attributes: [
        { external_id: 'known', _update_existing_only: true, plan: 'pro' },
        { external_id: 'unknown', _update_existing_only: true, plan: 'pro' },
      ],
    });
    expect(f.user('external_id', 'known')).toMatchObject({ plan: 'pro' });
    expect(f.user('external_id', 'unknown')).toBeUndefined();
  });

  it('matches on email: updates the profile with that email, or creates an email-only user', async () => {
    const f = await start();
    f.addUser({ email: 'ada@example.com', first_name: 'A.' });
    const conn = await connect(f.url);
    await conn.write(
      batch(
        [
          record('1', 'ada@example.com', { first_name: 'Ada' }),
          record('2', 'grace@example.com', { first_name: 'Grace' }),
        ],
        'email',
      ),
    );
    expect(posts(f, '/users/track')[0]?.body).toEqual({
      attributes: [
        { email: 'ada@example.com', first_name: 'Ada' },
        { email: 'grace@example.com', first_name: 'Grace' },
      ],
    });
    expect(f.users).toHaveLength(2);
    expect(f.user('email', 'ada@example.com')).toEqual({ email: 'ada@example.com', first_name: 'Ada' });
    expect(f.user('email', 'grace@example.com')).toEqual({ email: 'grace@example.com', first_name: 'Grace' });
  });

  it('never sends more than 75 attributes objects or 50 deletions in one request', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const many = Array.from({ length: 160 }, (_, i) => record(String(i), `u-${i}`, { n: i }));
    const outcomes = await conn.write(batch(many));
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    expect(posts(f, '/users/track').map((r) => (r.body as { attributes: unknown[] }).attributes.length)).toEqual([
      75, 75, 10,
    ]);
    expect(f.users).toHaveLength(160);

    const gone = many.slice(0, 120).map((r) => ({ ...r, op: 'delete' as const, fields: {} }));
    const deleted = await conn.write(batch(gone));
    expect(deleted.every((o) => o.status === 'ok' && o.action === 'deleted')).toBe(true);
    expect(posts(f, '/users/delete').map((r) => (r.body as { external_ids: unknown[] }).external_ids.length)).toEqual([
      50, 50, 20,
    ]);
    expect(f.users).toHaveLength(40);
  });

  it('the fake refuses what Braze refuses: 76 objects, 51 deletions, a wrong content type', async () => {
    const f = await start();
    const post = (path: string, body: string, type = 'application/json') =>
      fetch(`${f.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': type },
        body,
      });
    const tooMany = { attributes: Array.from({ length: 76 }, (_, i) => ({ external_id: `u-${i}` })) };
    const track = await post('/users/track', JSON.stringify(tooMany));
    expect(track.status).toBe(400);
    expect(await track.json()).toEqual({ message: 'Max Input Length Exceeded' });
    const ids = { external_ids: Array.from({ length: 51 }, (_, i) => `u-${i}`) };
    expect((await post('/users/delete', JSON.stringify(ids))).status).toBe(400);
    const mixed = { external_ids: ['a'], braze_ids: ['b'] };
    expect((await post('/users/delete', JSON.stringify(mixed))).status).toBe(400);
    expect((await post('/users/track', '{"attributes":[{}]', 'application/json')).status).toBe(400);
    expect((await post('/users/track', JSON.stringify({ attributes: [] }), 'text/plain')).status).toBe(400);
    const noId = await post('/users/track', JSON.stringify({ attributes: [{ first_name: 'Nobody' }] }));
    expect(await noId.json()).toEqual({
      message: NO_VALID_DATA,
      errors: [{ type: IDENTIFIER_REQUIRED, input_array: 'attributes', index: 0 }],
    });
    expect(f.users).toHaveLength(0);
  });

  it('maps a per-object error to a rejected outcome by index, while the rest lands', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([
        record('1', 'u-1', { email: 'ada@example.com', first_name: 'Ada' }),
        record('2', 'u-2', { email: 'not-an-email', first_name: 'Bad' }),
        record('3', 'u-3', { email: 'grace@example.com', email_subscribe: 'maybe' }),
        record('4', 'u-4', { first_name: 'Alan' }),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok' },
      { key: '2', status: 'rejected', reason: INVALID_EMAIL, field: 'email' },
      { key: '3', status: 'rejected', reason: expect.stringMatching(/email_subscribe/), field: 'email_subscribe' },
      { key: '4', status: 'ok' },
    ]);
    expect(f.user('external_id', 'u-2')).toBeUndefined();
    expect(f.user('external_id', 'u-4')).toMatchObject({ first_name: 'Alan' });
  });

  it('rejects every object of a request Braze refuses as a whole for invalid objects (400)', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([record('1', 'u-1', { email: 'nope' }), record('2', 'u-2', { email: 'x@' })]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'rejected', reason: INVALID_EMAIL, field: 'email' },
      { key: '2', status: 'rejected', reason: INVALID_EMAIL, field: 'email' },
    ]);
  });

  it('rejects a record without a usable identifier without sending it', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([record('1', null, { first_name: 'A' }), record('2', '', {}), record('3', { id: 1 }, {})]),
    );
    expect(outcomes.map((o) => [o.status, o.status === 'rejected' && o.field])).toEqual([
      ['rejected', 'external_id'],
      ['rejected', 'external_id'],
      ['rejected', 'external_id'],
    ]);
    expect(f.requests).toHaveLength(0);
  });

  it('refuses an unknown object, an unsupported match key and reserved keys as configuration errors', async () => {
    const f = await start();
    const conn = await connect(f.url);
    expect(await caught(conn.write(batch([record('1', 'u-1')], 'external_id', 'contacts')))).toBeInstanceOf(
      ConnectorConfigError,
    );
    const phone = await caught(conn.write(batch([record('1', '+15551234567')], 'phone')));
    expect(phone).toBeInstanceOf(ConnectorConfigError);
    expect(phone.message).toMatch(/external_id or email/);
    const flag = await caught(conn.write(batch([record('1', 'u-1', { _update_existing_only: false })])));
    expect(flag.message).toMatch(/_update_existing_only/);
    const byEmail = await caught(conn.write(batch([record('1', 'a@example.com', { external_id: 'x' })], 'email')));
    expect(byEmail.message).toMatch(/match on external_id/);
    expect(f.requests).toHaveLength(0);
  });
});

describe('braze destination: mirror deletes', () => {
  it('deletes by external_id', async () => {
    const f = await start();
    f.addUser({ external_id: 'u-1' });
    f.addUser({ external_id: 'u-2' });
    const conn = await connect(f.url);
    const outcomes = await conn.write(batch([record('1', 'u-1', {}, 'delete')]));
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'deleted' }]);
    expect(posts(f, '/users/delete')[0]?.body).toEqual({ external_ids: ['u-1'] });
    expect(f.stored('users').has('u-1')).toBe(false);
    expect(f.stored('users').has('u-2')).toBe(true);
  });

  it('deletes by email, preferring the identified profile, as /users/track updates it', async () => {
    const f = await start();
    f.addUser({ email: 'ada@example.com', first_name: 'anonymous' });
    f.addUser({ email: 'ada@example.com', external_id: 'ada' });
    const conn = await connect(f.url);
    await conn.write(batch([record('1', 'ada@example.com', {}, 'delete')], 'email'));
    expect(posts(f, '/users/delete')[0]?.body).toEqual({
      email_addresses: [{ email: 'ada@example.com', prioritization: ['identified', 'most_recently_updated'] }],
    });
    expect(f.users.map((u) => u.attributes)).toEqual([{ email: 'ada@example.com', first_name: 'anonymous' }]);
  });

  it('needs the users.delete permission', async () => {
    const f = await start({ permissions: ['users.track'] });
    const conn = await connect(f.url);
    const error = await caught(conn.write(batch([record('1', 'u-1', {}, 'delete')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/"users\.delete" permission/);
  });
});

describe('braze destination: errors', () => {
  it('a refused key is an AuthError that never quotes the key', async () => {
    const f = await start();
    const conn = await connect(f.url, { api_key: 'braze-rest-wrong-key-0000000000' });
    const error = await caught(conn.write(batch([record('1', 'u-1', { plan: 'pro' })])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/401/);
    expect(error.message).toMatch(/base_url/);
    expect(error.message).not.toContain('braze-rest-wrong-key-0000000000');

    f.revoke();
    const good = await connect(f.url);
    const revoked = await caught(good.write(batch([record('1', 'u-1')])));
    expect(revoked).toBeInstanceOf(AuthError);
    expect(revoked.message).not.toContain(API_KEY);
    f.restore();
    expect(await good.write(batch([record('1', 'u-1')]))).toEqual([{ key: '1', status: 'ok' }]);
  });

  it('a 429 is a RateLimitedError that waits until X-RateLimit-Reset', async () => {
    const f = await start({ rateLimits: { track: { limit: 2, windowMs: 60_000 } } });
    const conn = await connect(f.url);
    await conn.write(batch([record('1', 'u-1')]));
    await conn.write(batch([record('2', 'u-2')]));
    const before = Date.now();
    const error = await caught(conn.write(batch([record('3', 'u-3')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    const wait = (error as RateLimitedError).retryAfterMs!;
    const windowEnd = Math.ceil((Math.floor(before / 60_000) * 60_000 + 60_000) / 1000) * 1000;
    expect(wait).toBeGreaterThan(0);
    expect(Math.abs(before + wait - windowEnd)).toBeLessThan(1500);
    expect(f.user('external_id', 'u-3')).toBeUndefined();
  });

  it('throttleNext answers with Braze rate-limit headers', async () => {
    const f = await start();
    f.throttleNext(1);
    const response = await fetch(`${f.url}/users/track`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ attributes: [{ external_id: 'u-1' }] }),
    });
    expect(response.status).toBe(429);
    expect(response.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(response.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    expect(f.writeTimes()).toHaveLength(1);
  });

  it('keeps what landed and retries the rest when a later request of the batch is throttled', async () => {
    const f = await start({ rateLimits: { track: { limit: 1, windowMs: 60_000 } } });
    const conn = await connect(f.url);
    const many = Array.from({ length: 80 }, (_, i) => record(String(i), `u-${i}`));
    const outcomes = await conn.write(batch(many));
    expect(outcomes.slice(0, 75).every((o) => o.status === 'ok')).toBe(true);
    expect(outcomes.slice(75).every((o) => o.status === 'retry' && (o.afterMs ?? 0) > 0)).toBe(true);
    // Given back as throttled: a rate limit does not spend the records' retry budget.
    expect(outcomes.slice(75).every((o) => o.status === 'retry' && o.throttled === 'rate-limit')).toBe(true);
  });

  it('keeps the upserts that landed when the deletions of the same batch are throttled', async () => {
    const f = await start({ rateLimits: { delete: { limit: 0, windowMs: 60_000 } } });
    f.addUser({ external_id: 'gone' });
    const conn = await connect(f.url);
    const outcomes = await conn.write(batch([record('1', 'u-1', { plan: 'pro' }), record('2', 'gone', {}, 'delete')]));
    expect(outcomes).toEqual([
      { key: '1', status: 'ok' },
      expect.objectContaining({ key: '2', status: 'retry', throttled: 'rate-limit' }),
    ]);
    expect(f.user('external_id', 'u-1')).toMatchObject({ plan: 'pro' });
  });

  it('a 403 Forbidden (plan or account, not a permission) is an AuthError that says so', async () => {
    const f = await start();
    const conn = await connect(f.url);
    // "403 Forbidden: Rate plan doesn't support or account is otherwise inactivated" (errors page).
    f.failNext(1, 403, { message: 'Forbidden' });
    const error = await caught(conn.write(batch([record('1', 'u-1')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/plan does not include this endpoint or the account is inactive/);
    expect(error.message).not.toMatch(/permission/);
  });

  it('retries 5xx within the call, then fails as a transient error', async () => {
    const f = await start();
    const conn = await connect(f.url);
    f.failNext(1, 503);
    expect(await conn.write(batch([record('1', 'u-1')]))).toEqual([{ key: '1', status: 'ok' }]);
    f.failNext(3, 502);
    expect(await caught(conn.write(batch([record('2', 'u-2')])))).toBeInstanceOf(TransientError);
  });

  it('a whole-request refusal without per-object errors is a configuration error with a hint', async () => {
    const f = await start({ maxTrackObjects: 50 });
    const conn = await connect(f.url);
    const error = await caught(conn.write(batch(Array.from({ length: 60 }, (_, i) => record(String(i), `u-${i}`)))));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/Max Input Length Exceeded/);
    expect(error.message).toMatch(/lower the lane batch_size/);
  });
});

describe('braze destination: pace, field discovery and value formats', () => {
  it("every request takes a slot from the lane's pace, field discovery included", async () => {
    const f = await start();
    const pace = countingPace();
    const conn = withFormats(await connect(f.url, {}, pace), brazeDestination.formats);
    await conn.write(batch([record('1', 'u-1', { plan: 'pro' })]));
    await conn.write(batch([record('2', 'u-2', { plan: 'pro' })]));
    expect(f.requests.map((r) => r.path)).toEqual(['/custom_attributes', '/users/track', '/users/track']);
    expect(pace.taken).toBe(f.requestTimes().length);
  });

  it('a write on a lane goes on without custom_attributes.get, with the profile fields only', async () => {
    const f = await start({ permissions: ['users.track'] });
    const conn = withFormats(await connect(f.url, {}, countingPace()), brazeDestination.formats);
    expect(await conn.write(batch([record('1', 'u-1', { plan: 'pro' })]))).toEqual([{ key: '1', status: 'ok' }]);
    expect(f.user('external_id', 'u-1')).toMatchObject({ plan: 'pro' });
    // Without a lane (backflow fields, validate) the missing permission is reported.
    expect(await caught((await connect(f.url)).fields('users'))).toBeInstanceOf(AuthError);
  });

  it('a 429 of /custom_attributes (its own hourly bucket) does not slow the lane or stop the write', async () => {
    const f = await start({ rateLimits: { customAttributes: { limit: 0, windowMs: 3_600_000 } } });
    const pace = countingPace();
    const conn = withFormats(await connect(f.url, {}, pace), brazeDestination.formats);
    expect(await conn.write(batch([record('1', 'u-1', { plan: 'pro' })]))).toEqual([{ key: '1', status: 'ok' }]);
    expect(f.requests.map((r) => [r.path, r.status])).toEqual([
      ['/custom_attributes', 429],
      ['/users/track', 201],
    ]);
    expect(pace.throttles).toBe(0);
    const error = await caught((await connect(f.url)).fields('users'));
    expect(error).toBeInstanceOf(RateLimitedError);
  });

  it('formats by the attribute types: dates and times as ISO 8601, a date into a String stays a date', async () => {
    const f = await start({
      customAttributes: [
        { name: 'signup_day', data_type: 'String' },
        { name: 'last_seen', data_type: 'Time' },
        { name: 'renewal', data_type: 'Time' },
      ],
    });
    const conn = withFormats(await connect(f.url, {}, countingPace()), brazeDestination.formats);
    await conn.write({
      object: 'users',
      matchField: 'external_id',
      fieldTypes: {
        external_id: 'string',
        signup_day: 'date',
        last_seen: 'timestamp',
        renewal: 'date',
        dob: 'timestamp',
      },
      records: [
        record('1', 'u-1', {
          signup_day: '2024-03-05',
          last_seen: '2024-03-05T10:11:12.345Z',
          renewal: '2024-04-01',
          dob: '1990-06-07T12:00:00.000Z',
        }),
      ],
    });
    expect(posts(f, '/users/track')[0]?.body).toEqual({
      attributes: [
        {
          external_id: 'u-1',
          signup_day: '2024-03-05',
          last_seen: '2024-03-05T10:11:12.345Z',
          renewal: '2024-04-01T00:00:00.000Z',
          dob: '1990-06-07',
        },
      ],
    });
    expect(f.user('external_id', 'u-1')).toMatchObject({ dob: '1990-06-07', renewal: '2024-04-01T00:00:00.000Z' });
  });

  it('rejects a value Braze would read as an operation (inc, add/remove), without sending it', async () => {
    const f = await start();
    f.addUser({ external_id: 'u-1', score: 10, tags: ['a'] });
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([
        record('1', 'u-1', { score: { inc: 5 } }),
        record('2', 'u-2', { tags: { add: ['b'], remove: ['a'] } }),
        record('3', 'u-3', { address: { city: 'Oslo' } }),
      ]),
    );
    expect(outcomes).toEqual([
      expect.objectContaining({ key: '1', status: 'rejected', field: 'score' }),
      expect.objectContaining({ key: '2', status: 'rejected', field: 'tags' }),
      { key: '3', status: 'ok' },
    ]);
    expect(posts(f, '/users/track').map((r) => r.body)).toEqual([
      { attributes: [{ external_id: 'u-3', address: { city: 'Oslo' } }] },
    ]);
    expect(f.user('external_id', 'u-1')).toMatchObject({ score: 10 });
  });
});

describe('braze destination: check and fields', () => {
  it('check() accepts a valid key without writing, and refuses a wrong key or endpoint', async () => {
    const f = await start();
    await (await connect(f.url)).check();
    expect(f.users).toHaveLength(0);
    expect(await caught((await connect(f.url, { api_key: 'nope-nope' })).check())).toBeInstanceOf(AuthError);
    const wrongPath = await caught((await connect(`${f.url}/v2`)).check());
    expect(wrongPath).toBeInstanceOf(ConnectorConfigError);
    expect(wrongPath.message).toMatch(/REST endpoint/);
  });

  it('lists the profile fields, then every page of custom attributes', async () => {
    const customAttributes = Array.from({ length: 120 }, (_, i) => ({
      name: `attr_${String(i).padStart(3, '0')}`,
      data_type: ['String', 'Number', 'Boolean', 'Time', 'Array', 'Object'][i % 6]!,
    }));
    const f = await start({
      customAttributes: [...customAttributes, { name: 'old_score', data_type: 'Number', status: 'Blocklisted' }],
    });
    const conn = await connect(f.url);
    const fields = await conn.fields('users');
    expect(f.requests.filter((r) => r.path === '/custom_attributes')).toHaveLength(3);
    expect(fields.find((x) => x.name === 'external_id')).toMatchObject({ kind: 'known', matchable: true });
    expect(fields.find((x) => x.name === 'email')).toMatchObject({ kind: 'known', matchable: true });
    expect(fields.find((x) => x.name === 'dob')).toMatchObject({ type: 'date', matchable: false });
    const custom = fields.filter((x) => x.kind === 'custom');
    expect(custom).toHaveLength(120);
    expect(custom.slice(0, 6).map((x) => x.type)).toEqual(['string', 'number', 'boolean', 'timestamp', 'json', 'json']);
    expect(fields.some((x) => x.name === 'old_score')).toBe(false);
  });

  it('finds the custom attributes /users/track created', async () => {
    const f = await start();
    const conn = await connect(f.url);
    await conn.write(batch([record('1', 'u-1', { plan: 'pro', lifetime_value: 3.5, vip: true })]));
    const custom = (await conn.fields('users')).filter((x) => x.kind === 'custom');
    expect(custom.map((x) => [x.name, x.type])).toEqual([
      ['lifetime_value', 'number'],
      ['plan', 'string'],
      ['vip', 'boolean'],
    ]);
  });

  it('field discovery needs custom_attributes.get, and users is the only object', async () => {
    const f = await start({ permissions: ['users.track', 'users.delete'] });
    const conn = await connect(f.url);
    const error = await caught(conn.fields('users'));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/custom_attributes\.get/);
    expect(await caught(conn.fields('contacts'))).toBeInstanceOf(ConnectorConfigError);
  });

  it('reads the cursor of a Link header', () => {
    expect(nextCursor('<https://rest.iad-03.braze.com/custom_attributes?cursor=c2tpcDo1MA==>; rel="next"')).toBe(
      'c2tpcDo1MA==',
    );
    expect(
      nextCursor(
        '<https://rest.iad-03.braze.com/custom_attributes?cursor=c2tpcDow>; rel="prev", <https://rest.iad-03.braze.com/custom_attributes?cursor=c2tpcDoxMDA=>; rel="next"',
      ),
    ).toBe('c2tpcDoxMDA=');
    expect(nextCursor('<https://x/custom_attributes?cursor=a>; rel="prev"')).toBeUndefined();
    expect(nextCursor(null)).toBeUndefined();
  });
});
