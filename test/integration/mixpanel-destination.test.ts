import { afterEach, describe, expect, it } from 'vitest';
import { mixpanelDestination } from '#connectors/destinations/mixpanel/index';
import { MAX_REQUEST_BYTES, MAX_UPDATES } from '#connectors/destinations/mixpanel/limits';
import { baseUrlOf, REGION_URLS } from '#connectors/destinations/mixpanel/manifest';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import type { FieldType, RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import { type MixpanelFake, type MixpanelFakeOptions, startMixpanelFake } from '#test/fakes/mixpanel/server';
import { countingPace } from '../fakes/counting-pace.ts';

const TOKEN = '0a1b2c3d4e5f60718293a4b5c6d7e8f9';
const ACCOUNT = {
  username: 'backflow.1a2b3c.mp-service-account',
  secret: 'sa-secret-9f8e7d6c5b4a',
  projectId: '3141592',
};

let fake: MixpanelFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<MixpanelFakeOptions> = {}): Promise<MixpanelFake> {
  fake = await startMixpanelFake({ token: TOKEN, serviceAccount: ACCOUNT, ...options });
  return fake;
}

async function connect(
  baseUrl: string,
  opts: Record<string, unknown> = {},
  pace?: RequestPace,
): Promise<DestinationConnection> {
  const options = mixpanelDestination.optionsSchema.parse({ base_url: baseUrl, project_token: TOKEN, ...opts });
  const connection = await mixpanelDestination.connect(options, {
    projectDir: process.cwd(),
    pace,
    purpose: pace ? 'write' : 'discover',
  });
  connections.push(connection);
  return connection;
}

function batch(
  records: OutboundRecord[],
  fieldTypes: Record<string, FieldType> = {},
  matchField = '$distinct_id',
  object = 'profiles',
): WriteBatch {
  return { object, matchField, fieldTypes, records };
}

const record = (
  key: string,
  fields: OutboundRecord['fields'] = {},
  op: OutboundRecord['op'] = 'upsert',
  match: OutboundRecord['match'] = `u${key}`,
): OutboundRecord => ({ key, op, match, fields });

const engageRequests = (f: MixpanelFake) => f.requests.filter((r) => r.path === '/engage');

describe('mixpanel destination', () => {
  it('sets properties with $set and clears nulls with $unset, in one strict request with ip=0', async () => {
    const f = await start();
    f.profiles.set('u1', { plan: 'gold', lifetime_value: 12, $email: 'old@example.com' });
    const pace = countingPace();
    const c = await connect(f.url, {}, pace);
    const outcomes = await c.write(
      batch([record('1', { $email: 'ada@example.com', lifetime_value: null }), record('2', { plan: 'silver' })]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok' },
      { key: '2', status: 'ok' },
    ]);
    expect(f.profiles.get('u1')).toEqual({ plan: 'gold', $email: 'ada@example.com' });
    expect(f.profiles.get('u2')).toEqual({ plan: 'silver' });
    const [request] = engageRequests(f);
    expect(engageRequests(f)).toHaveLength(1);
    expect(request!.query.get('strict')).toBe('1');
    expect(request!.query.get('ip')).toBe('0');
    expect(request!.headers.authorization).toBeUndefined();
    expect(request!.body).toEqual([
      { $token: TOKEN, $distinct_id: 'u1', $set: { $email: 'ada@example.com' }, $ignore_time: true },
      { $token: TOKEN, $distinct_id: 'u1', $unset: ['lifetime_value'], $ignore_time: true },
      { $token: TOKEN, $distinct_id: 'u2', $set: { plan: 'silver' }, $ignore_time: true },
    ]);
    expect(pace.taken).toBe(1);
  });

  it('reports the updates strict mode refuses per record while the rest land', async () => {
    const f = await start();
    const c = await connect(f.url);
    const outcomes = await c.write(
      batch([
        record('1', { $first_name: 'x'.repeat(300) }),
        record('2', { $first_name: 'Grace' }),
        record('3', {}, 'upsert', 'null'),
      ]),
    );
    expect(outcomes[0]).toMatchObject({
      key: '1',
      status: 'rejected',
      field: '$first_name',
      reason: expect.stringMatching(/255 bytes/),
    });
    expect(outcomes[1]).toEqual({ key: '2', status: 'ok' });
    expect(outcomes[2]).toMatchObject({ key: '3', status: 'rejected', reason: expect.stringMatching(/distinct_id/) });
    expect([...f.profiles.keys()]).toEqual(['u2']);
  });

  it('refuses an update over 1 MB without sending it, and a record without a $distinct_id', async () => {
    const f = await start();
    const c = await connect(f.url);
    const big = Array.from({ length: 120_000 }, (_, i) => `tag-${i}`);
    const outcomes = await c.write(
      batch([record('1', { tags: big }), record('2', { plan: 'a' }), record('3', {}, 'upsert', null)]),
    );
    expect(outcomes[0]).toMatchObject({ status: 'rejected', field: 'tags', reason: expect.stringMatching(/1 MB/) });
    expect(outcomes[1]).toEqual({ key: '2', status: 'ok' });
    expect(outcomes[2]).toMatchObject({ status: 'rejected', field: '$distinct_id' });
    expect(engageRequests(f)).toHaveLength(1);
    expect((engageRequests(f)[0]!.body as unknown[]).length).toBe(1);
  });

  it('splits a batch into requests of at most 2,000 updates, keeping a record’s updates together', async () => {
    const f = await start();
    const c = await connect(f.url);
    const records = Array.from({ length: 1500 }, (_, i) => record(String(i), { plan: 'p', gone: null }));
    const outcomes = await c.write(batch(records));
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    const sizes = engageRequests(f).map((r) => (r.body as unknown[]).length);
    expect(sizes).toEqual([2000, 1000]);
    expect(f.profiles.size).toBe(1500);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_UPDATES);
  });

  it('keeps every request under 2,097,152 bytes', async () => {
    const f = await start();
    const c = await connect(f.url);
    const list = Array.from({ length: 25_000 }, (_, i) => `v${i}`);
    const records = Array.from({ length: 12 }, (_, i) => record(String(i), { values: list }));
    const outcomes = await c.write(batch(records));
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    const requests = engageRequests(f);
    expect(requests.length).toBeGreaterThan(1);
    for (const r of requests) {
      expect(r.status).toBe(200);
      expect(r.bytes).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
    }
    expect(f.profiles.size).toBe(12);
  });

  it('deletes profiles in mirror mode with $delete and $ignore_alias', async () => {
    const f = await start();
    f.profiles.set('u7', { plan: 'gold' });
    const c = await connect(f.url);
    const outcomes = await c.write(batch([record('7', {}, 'delete'), record('8', {}, 'delete')]));
    expect(outcomes).toEqual([
      { key: '7', status: 'ok', action: 'deleted' },
      { key: '8', status: 'ok', action: 'deleted' },
    ]);
    expect(f.profiles.has('u7')).toBe(false);
    expect(engageRequests(f)[0]!.body).toEqual([
      { $token: TOKEN, $distinct_id: 'u7', $delete: '', $ignore_alias: true },
      { $token: TOKEN, $distinct_id: 'u8', $delete: '', $ignore_alias: true },
    ]);
  });

  it('writes timestamps as Mixpanel dates (YYYY-MM-DDTHH:MM:SS, UTC)', async () => {
    const f = await start();
    const c = await connect(f.url);
    await c.write(
      batch([record('1', { $created: '2024-03-05T06:07:08.000Z', day: '2024-03-05' })], {
        $created: 'timestamp',
        day: 'date',
      }),
    );
    expect(f.profiles.get('u1')).toEqual({ $created: '2024-03-05T06:07:08', day: '2024-03-05' });
  });

  it('sends a service account as Basic auth with project_id, and reports a wrong one as AuthError', async () => {
    const f = await start();
    const c = await connect(f.url, {
      service_account_username: ACCOUNT.username,
      service_account_secret: ACCOUNT.secret,
      project_id: ACCOUNT.projectId,
    });
    await c.write(batch([record('1', { plan: 'a' })]));
    const sent = engageRequests(f)[0]!;
    expect(sent.headers.authorization).toBe(
      `Basic ${Buffer.from(`${ACCOUNT.username}:${ACCOUNT.secret}`).toString('base64')}`,
    );
    expect(sent.query.get('project_id')).toBe(ACCOUNT.projectId);

    const wrong = await connect(f.url, {
      service_account_username: ACCOUNT.username,
      service_account_secret: 'not-the-secret',
      project_id: ACCOUNT.projectId,
    });
    const error = await wrong.write(batch([record('2', { plan: 'a' })])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(String((error as Error).message)).not.toContain('not-the-secret');
    await expect(connect(f.url, { service_account_username: ACCOUNT.username })).rejects.toThrow(ConnectorConfigError);
  });

  it('reports a refused token as AuthError without the token in the message', async () => {
    const f = await start();
    f.revoke();
    const c = await connect(f.url);
    const error = await c.write(batch([record('1', { plan: 'a' })])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as Error).message).not.toContain(TOKEN);
    await expect(c.check()).rejects.toThrow(AuthError);
  });

  it('throws RateLimitedError on a first 429, with the documented 2 s backoff', async () => {
    const f = await start();
    const pace = countingPace();
    const c = await connect(f.url, {}, pace);
    f.throttleNext(1);
    const error = await c.write(batch([record('1', { plan: 'a' })])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(2000);
    expect(pace.throttles).toBeGreaterThan(0);
  });

  it('keeps the first request’s records when the second one is throttled', async () => {
    const f = await start({ updatesPerMinute: 2000 });
    const c = await connect(f.url);
    const records = Array.from({ length: 2001 }, (_, i) => record(String(i), { plan: 'b' }));
    const outcomes = await c.write(batch(records));
    expect(outcomes.slice(0, 2000).every((o) => o.status === 'ok')).toBe(true);
    expect(outcomes[2000]).toMatchObject({ key: '2000', status: 'retry', throttled: 'rate-limit' });
    expect(f.profiles.size).toBe(2000);
    expect(engageRequests(f).map((r) => r.status)).toEqual([200, 429]);
  });

  it('retries a 5xx (the updates are idempotent)', async () => {
    const f = await start();
    f.failNext(1, 503);
    const c = await connect(f.url);
    const outcomes = await c.write(batch([record('1', { plan: 'a' })]));
    expect(outcomes).toEqual([{ key: '1', status: 'ok' }]);
    expect(engageRequests(f)).toHaveLength(2);
  });

  it('checks the token without creating a profile', async () => {
    const f = await start();
    const pace = countingPace();
    const c = await connect(f.url, {}, pace);
    await c.check();
    expect(f.profiles.size).toBe(0);
    expect(pace.taken).toBe(1);
  });

  it('lists the reserved profile properties without a request, $distinct_id the match key', async () => {
    const f = await start();
    const c = await connect(f.url);
    const fields = await c.fields('profiles');
    expect(fields.filter((x) => x.matchable).map((x) => x.name)).toEqual(['$distinct_id']);
    expect(fields.map((x) => x.name)).toEqual(
      expect.arrayContaining(['$email', '$name', '$first_name', '$last_name', '$phone', '$avatar', '$created']),
    );
    expect(fields.find((x) => x.name === '$created')?.type).toBe('timestamp');
    expect(f.requests).toHaveLength(0);
    await expect(c.fields('events')).rejects.toThrow(ConnectorConfigError);
  });

  it('refuses a wrong match key, a control key as a property, and insert mode', async () => {
    const f = await start();
    const c = await connect(f.url);
    await expect(c.write(batch([record('1', { plan: 'a' })], {}, 'email'))).rejects.toThrow(ConnectorConfigError);
    await expect(c.write(batch([record('1', { $token: 'x' })]))).rejects.toThrow(ConnectorConfigError);
    await expect(c.write(batch([record('1', { plan: 'a' }, 'insert')]))).rejects.toThrow(ConnectorConfigError);
    expect(f.requests).toHaveLength(0);
  });

  it('uses the data residency host of the region', () => {
    expect(baseUrlOf({ region: 'us' })).toBe('https://api.mixpanel.com');
    expect(baseUrlOf({ region: 'eu' })).toBe('https://api-eu.mixpanel.com');
    expect(baseUrlOf({ region: 'in' })).toBe('https://api-in.mixpanel.com');
    expect(baseUrlOf({ region: 'eu', base_url: 'http://127.0.0.1:1' })).toBe('http://127.0.0.1:1');
    expect(Object.keys(REGION_URLS)).toEqual(['us', 'eu', 'in']);
    const parsed = mixpanelDestination.optionsSchema.parse({ project_token: TOKEN, region: 'eu' });
    expect(parsed.region).toBe('eu');
    expect(() => mixpanelDestination.optionsSchema.parse({ project_token: TOKEN, region: 'au' })).toThrow();
  });
});
