import { afterEach, describe, expect, it } from 'vitest';
import { brazeDestination } from '#connectors/destinations/braze/index';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError } from '#core/errors';
import { type BrazeFake, type BrazeFakeOptions, startBrazeFake } from '#test/fakes/braze/server';

/**
 * Membership objects of the Braze destination (`subscription_group:<id>`), through the connection,
 * against the fake written from Braze's subscription group docs.
 */

const API_KEY = 'braze-rest-7f3a9c21-5d4e-4b8a-9e6f-0c1d2b3a4e5f';
const GROUP = 'pto81fff-734f-80e5-b7b2-b880562888ww';
const OBJECT = `subscription_group:${GROUP}`;

let fake: BrazeFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<BrazeFakeOptions> = {}): Promise<BrazeFake> {
  fake = await startBrazeFake({ apiKey: API_KEY, subscriptionGroups: [GROUP], ...options });
  for (const id of ['u1', 'u2', 'u3']) fake.addUser({ external_id: id, email: `${id}@example.com` });
  return fake;
}

async function connect(
  f: BrazeFake,
  opts: Record<string, unknown> = {},
  pace?: RequestPace,
): Promise<DestinationConnection> {
  const options = brazeDestination.optionsSchema.parse({ base_url: f.url, api_key: API_KEY, ...opts });
  const connection = await brazeDestination.connect(options, { projectDir: process.cwd(), pace, purpose: 'write' });
  connections.push(connection);
  return connection;
}

const enter = (key: string, id: string): OutboundRecord => ({ key, op: 'upsert', match: id, fields: {} });
const leave = (key: string, id: string): OutboundRecord => ({ key, op: 'delete', match: id, fields: {} });
const batch = (records: OutboundRecord[], matchField = 'external_id', object = OBJECT): WriteBatch => ({
  object,
  matchField,
  fieldTypes: {},
  records,
});

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const sets = (f: BrazeFake) => f.requests.filter((r) => r.path === '/v2/subscription/status/set');

describe('braze membership: subscription groups', () => {
  it('subscribes entering users and unsubscribes leaving ones in one request, then reads the entering back', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.write(batch([enter('1', 'u1'), enter('2', 'u2')]));
    expect(f.members(OBJECT)).toEqual(new Set(['u1', 'u2']));

    const outcomes = await conn.write(batch([enter('3', 'u3'), leave('1', 'u1')]));
    expect(outcomes).toEqual([
      { key: '3', status: 'ok', action: 'created' },
      { key: '1', status: 'ok', action: 'deleted' },
    ]);
    expect(f.members(OBJECT)).toEqual(new Set(['u2', 'u3']));
    expect(sets(f)[1]?.body).toEqual({
      subscription_groups: [
        { subscription_group_id: GROUP, subscription_state: 'subscribed', external_ids: ['u3'] },
        { subscription_group_id: GROUP, subscription_state: 'unsubscribed', external_ids: ['u1'] },
      ],
    });
    const read = f.requests.filter((r) => r.path === '/subscription/status/get');
    expect(read).toHaveLength(2);
    // Leaving users are not read back; the user stays in Braze.
    expect(f.user('external_id', 'u1')).toBeDefined();
  });

  it('re-entering a subscribed user and leaving twice are ok (a state is set, not toggled)', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.write(batch([enter('1', 'u1')]));
    expect(await conn.write(batch([enter('1', 'u1')]))).toEqual([{ key: '1', status: 'ok', action: 'created' }]);
    expect(await conn.write(batch([leave('1', 'u1')]))).toEqual([{ key: '1', status: 'ok', action: 'deleted' }]);
    expect(await conn.write(batch([leave('1', 'u1')]))).toEqual([{ key: '1', status: 'ok', action: 'deleted' }]);
    expect(f.members(OBJECT).size).toBe(0);
    expect(await conn.write(batch([enter('1', 'u1')]))).toMatchObject([{ status: 'ok' }]);
    expect(f.members(OBJECT)).toEqual(new Set(['u1']));
  });

  it('rejects an identifier no Braze user has (read back as Unknown), while the rest lands', async () => {
    const f = await start();
    const conn = await connect(f);
    const outcomes = await conn.write(batch([enter('1', 'u1'), enter('2', 'ghost'), enter('3', '')]));
    expect(outcomes[0]).toEqual({ key: '1', status: 'ok', action: 'created' });
    expect(outcomes[1]).toMatchObject({
      key: '2',
      status: 'rejected',
      field: 'external_id',
      reason: expect.stringMatching(/external_id ghost as "Unknown".*no Braze user has this external_id/),
    });
    expect(outcomes[2]).toMatchObject({ key: '3', status: 'rejected', field: 'external_id' });
    expect(f.members(OBJECT)).toEqual(new Set(['u1']));
    // No user was created.
    expect(f.user('external_id', 'ghost')).toBeUndefined();
  });

  it('without verify_subscriptions, makes one request and trusts it', async () => {
    const f = await start();
    const conn = await connect(f, { verify_subscriptions: false });
    expect(await conn.write(batch([enter('1', 'u1'), enter('2', 'ghost')]))).toEqual([
      { key: '1', status: 'ok', action: 'created' },
      { key: '2', status: 'ok', action: 'created' },
    ]);
    expect(f.requests).toHaveLength(1);
  });

  it('matches by email: every user sharing the address is updated, the read-back is by email', async () => {
    const f = await start();
    f.addUser({ email: 'shared@example.com' });
    f.addUser({ external_id: 'u9', email: 'Shared@Example.com' });
    const conn = await connect(f);
    const outcomes = await conn.write(
      batch([enter('1', 'shared@example.com'), enter('2', 'nobody@example.com')], 'email'),
    );
    expect(outcomes).toMatchObject([
      { key: '1', status: 'ok', action: 'created' },
      { key: '2', status: 'rejected', field: 'email' },
    ]);
    expect(f.members(OBJECT)).toEqual(new Set(['shared@example.com', 'u9']));
    expect(sets(f)[0]?.body).toEqual({
      subscription_groups: [
        {
          subscription_group_id: GROUP,
          subscription_state: 'subscribed',
          emails: ['shared@example.com', 'nobody@example.com'],
        },
      ],
    });
  });

  it('sends at most 50 users per request and keeps the first when the second is rate limited', async () => {
    const f = await start();
    for (let i = 0; i < 60; i++) f.addUser({ external_id: `bulk${i}` });
    const conn = await connect(f);
    const records = Array.from({ length: 60 }, (_, i) => enter(String(i), `bulk${i}`));
    // Let the first set and its read-back through, then throttle the second set.
    const original = f.requests.push.bind(f.requests);
    let seen = 0;
    f.requests.push = (...entries) => {
      if (entries[0]?.path === '/v2/subscription/status/set' && ++seen === 2) {
        f.requests.push = original;
        f.throttleNext(1);
      }
      return original(...entries);
    };
    const outcomes = await conn.write(batch(records));
    expect(outcomes.slice(0, 50).every((o) => o.status === 'ok')).toBe(true);
    expect(outcomes.slice(50).every((o) => o.status === 'retry' && o.throttled === 'rate-limit')).toBe(true);
    expect(f.members(OBJECT).size).toBe(50);
    expect(
      sets(f).map(
        (r) =>
          (r.body as { subscription_groups: { external_ids: string[] }[] }).subscription_groups[0]?.external_ids.length,
      ),
    ).toEqual([50, 10]);
    expect((await conn.write(batch(records.slice(50)))).every((o) => o.status === 'ok')).toBe(true);
    expect(f.members(OBJECT).size).toBe(60);
  });

  it('gives the entering users back when the read-back is throttled: their state was set', async () => {
    const f = await start({ rateLimits: { subscriptionGet: { limit: 0, windowMs: 60_000 } } });
    const conn = await connect(f);
    const outcomes = await conn.write(batch([enter('1', 'u1'), leave('2', 'u2')]));
    expect(outcomes).toMatchObject([
      { key: '1', status: 'retry', throttled: 'rate-limit' },
      { key: '2', status: 'ok', action: 'deleted' },
    ]);
    expect(f.members(OBJECT)).toEqual(new Set(['u1']));
  });

  it('refuses an unknown subscription group, a wrong match key and a malformed object for the whole batch', async () => {
    const f = await start();
    const conn = await connect(f);
    const unknown = await caught(conn.write(batch([enter('1', 'u1')], 'external_id', 'subscription_group:nope')));
    expect(unknown).toBeInstanceOf(ConnectorConfigError);
    expect(unknown.message).toMatch(/400.*Invalid subscription_group_id/);
    const key = await caught(conn.write(batch([enter('1', 'u1')], 'phone')));
    expect(key).toBeInstanceOf(ConnectorConfigError);
    const malformed = await caught(conn.write(batch([enter('1', 'u1')], 'external_id', 'subscription_group:')));
    expect(malformed).toBeInstanceOf(ConnectorConfigError);
  });

  it('names the permission a key lacks', async () => {
    const f = await start({ permissions: ['users.track'] });
    const conn = await connect(f);
    const error = await caught(conn.write(batch([enter('1', 'u1')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/subscription\.status\.set/);
  });

  it('reports the identifier fields of a subscription group, and paces every request', async () => {
    const f = await start();
    let taken = 0;
    const conn = await connect(f, {}, { take: async () => void taken++, throttled: async () => {} });
    expect((await conn.fields(OBJECT)).map((field) => [field.name, field.matchable])).toEqual([
      ['external_id', true],
      ['email', true],
    ]);
    await conn.write(batch([enter('1', 'u1'), leave('2', 'u2')]));
    expect(f.requests).toHaveLength(2);
    expect(taken).toBe(2);
  });
});

describe('braze membership: array attribute values', () => {
  const ARRAY = 'array:segments:vip';

  it('adds and removes the value with add/remove operations, one /users/track request per 75', async () => {
    const f = await start();
    f.addUser({ external_id: 'u4', segments: ['beta', 'vip'] });
    const conn = await connect(f);
    const outcomes = await conn.write(
      batch([enter('1', 'u1'), enter('4', 'u4'), leave('2', 'u2'), leave('5', 'nobody')], 'external_id', ARRAY),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created' },
      { key: '4', status: 'ok', action: 'created' },
      { key: '2', status: 'ok', action: 'deleted' },
      { key: '5', status: 'ok', action: 'deleted' },
    ]);
    expect(f.members(ARRAY)).toEqual(new Set(['u1', 'u4']));
    expect(f.user('external_id', 'u4')?.segments).toEqual(['beta', 'vip']);
    const track = f.requests.filter((r) => r.path === '/users/track');
    expect(track).toHaveLength(1);
    expect(track[0]?.body).toEqual({
      attributes: [
        { external_id: 'u1', segments: { add: ['vip'] } },
        { external_id: 'u4', segments: { add: ['vip'] } },
        { external_id: 'u2', _update_existing_only: true, segments: { remove: ['vip'] } },
        { external_id: 'nobody', _update_existing_only: true, segments: { remove: ['vip'] } },
      ],
    });
    // Leaving never creates a profile.
    expect(f.user('external_id', 'nobody')).toBeUndefined();
    await conn.write(batch([leave('4', 'u4')], 'external_id', ARRAY));
    expect(f.user('external_id', 'u4')?.segments).toEqual(['beta']);
    expect(f.members(ARRAY)).toEqual(new Set(['u1']));
  });

  it('refuses a malformed array object', async () => {
    const f = await start();
    const conn = await connect(f);
    for (const object of ['array:segments', 'array::vip', 'array:braze_id:x']) {
      expect(await caught(conn.write(batch([enter('1', 'u1')], 'external_id', object)))).toBeInstanceOf(
        ConnectorConfigError,
      );
    }
  });
});
