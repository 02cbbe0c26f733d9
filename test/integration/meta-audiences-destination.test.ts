import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { metaAudiencesDestination } from '#connectors/destinations/meta-audiences/index';
import { metaAudiencesLimits } from '#connectors/destinations/meta-audiences/limits';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import { type MetaAudiencesFake, startMetaAudiencesFake } from '#test/fakes/meta-audiences/server';
import { countingPace } from '../fakes/counting-pace.ts';

const TOKEN = 'EAAGm0PX4ZCpsBAKZBfake0system0user0token0ZDZD';
const AUDIENCE = '23851234567890123';
const OBJECT = `audience:${AUDIENCE}`;
const sha = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

let fake: MetaAudiencesFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<Parameters<typeof startMetaAudiencesFake>[0]> = {}) {
  fake = await startMetaAudiencesFake({ token: TOKEN, audiences: [AUDIENCE], ...options });
  return fake;
}

async function connect(url: string, extra: { token?: string; pace?: RequestPace; rows?: number } = {}) {
  const options = metaAudiencesDestination.optionsSchema.parse({
    base_url: url,
    access_token: extra.token ?? TOKEN,
    ...(extra.rows !== undefined && { rows_per_request: extra.rows }),
  });
  const connection = await metaAudiencesDestination.connect(options, { projectDir: process.cwd(), pace: extra.pace });
  connections.push(connection);
  return connection;
}

const enter = (key: string, email: string, fields: OutboundRecord['fields'] = {}): OutboundRecord => ({
  key,
  op: 'upsert',
  match: email,
  fields,
});
const leave = (key: string, email: string, fields: OutboundRecord['fields'] = {}): OutboundRecord => ({
  key,
  op: 'delete',
  match: email,
  fields,
});
const batch = (records: OutboundRecord[], object = OBJECT, matchField = 'email'): WriteBatch => ({
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

describe('meta_audiences: definition', () => {
  it('declares the documented batch size and a pace below the lowest tier, with their pages', () => {
    expect(metaAudiencesLimits.batchSize.value).toBe(10_000);
    expect(metaAudiencesLimits.requestsPerSecond!.value).toBeLessThanOrEqual(5000 / 3600);
    for (const limit of Object.values(metaAudiencesLimits))
      expect(limit.doc).toMatch(/^https:\/\/developers\.facebook\.com\//);
  });

  it('takes the token from a secret, defaults to graph.facebook.com and a Graph version', () => {
    expect(metaAudiencesDestination.type).toBe('meta_audiences');
    expect(metaAudiencesDestination.secretKeys).toEqual(['access_token']);
    expect(metaAudiencesDestination.modes).toEqual(['upsert', 'mirror']);
    const parsed = metaAudiencesDestination.optionsSchema.parse({ access_token: TOKEN });
    expect(parsed.base_url).toBe('https://graph.facebook.com');
    expect(parsed.api_version).toMatch(/^v\d+\.\d+$/);
    expect(() =>
      metaAudiencesDestination.optionsSchema.parse({ access_token: TOKEN, rows_per_request: 10_001 }),
    ).toThrow();
    expect(metaAudiencesDestination.objects?.map((o) => [o.name, o.matchKeys])).toEqual([
      ['audience:<custom_audience_id>', ['email', 'phone', 'external_id']],
    ]);
  });

  it('lists the identifier fields of an audience and refuses another object name', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const fields = await conn.fields(OBJECT);
    expect(fields.map((x) => x.name)).toEqual([
      'email',
      'phone',
      'first_name',
      'last_name',
      'city',
      'state',
      'zip',
      'country',
      'date_of_birth',
      'gender',
      'external_id',
    ]);
    expect(fields.filter((x) => x.matchable).map((x) => x.name)).toEqual(['email', 'phone', 'external_id']);
    expect(await caught(conn.fields('contacts'))).toBeInstanceOf(ConnectorConfigError);
    expect(f.requests).toHaveLength(0);
  });

  it('checks the token with GET /me', async () => {
    const f = await start();
    await (await connect(f.url)).check();
    expect(f.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v21.0/me', status: 200 });
  });
});

describe('meta_audiences: membership', () => {
  it('adds entered members as hashes of normalised identifiers, in the multi-key schema', async () => {
    const f = await start();
    const pace = countingPace();
    const conn = await connect(f.url, { pace });
    const outcomes = await conn.write(
      batch([
        enter('1', ' Ada.Lovelace@Example.com ', { phone: '+44 20 7946 0018', first_name: 'Ada' }),
        enter('2', 'alan@example.com', { phone: '+1 (650) 555-1212', first_name: 'Alan' }),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created' },
      { key: '2', status: 'ok', action: 'created' },
    ]);
    expect(f.members(OBJECT)).toEqual(new Set([sha('ada.lovelace@example.com'), sha('alan@example.com')]));
    const call = f.requests.at(-1)!;
    expect(call).toMatchObject({ method: 'POST', path: `/v21.0/${AUDIENCE}/users`, status: 200 });
    expect(call.payload).toEqual({
      schema: ['EMAIL', 'PHONE', 'FN'],
      data: [
        [sha('ada.lovelace@example.com'), sha('442079460018'), sha('ada')],
        [sha('alan@example.com'), sha('16505551212'), sha('alan')],
      ],
    });
    // No raw identifier reached Meta, and every request took the lane's slot.
    expect(JSON.stringify(f.requests)).not.toMatch(/@|Ada|Alan|\+44/);
    expect(f.unhashedSeen()).toEqual([]);
    expect(pace.taken).toBe(f.requests.length);
  });

  it('sends values the mapping already hashed as they are, and EXTERN_ID unhashed', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const hashed = sha('grace@example.com');
    const outcomes = await conn.write(batch([enter('1', hashed.toUpperCase(), { external_id: 'crm-42' })]));
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'created' }]);
    expect(f.rows(OBJECT)).toEqual([{ EMAIL: hashed, EXTERN_ID: 'crm-42' }]);
  });

  it('removes members that left, re-adds them when they come back; removing an absent one is fine', async () => {
    const f = await start();
    const conn = await connect(f.url);
    await conn.write(batch([enter('1', 'ada@example.com'), enter('2', 'alan@example.com')]));
    const left = await conn.write(batch([leave('1', 'ada@example.com'), leave('3', 'nobody@example.com')]));
    expect(left).toEqual([
      { key: '1', status: 'ok', action: 'deleted' },
      { key: '3', status: 'ok', action: 'deleted' },
    ]);
    expect(f.requests.at(-1)).toMatchObject({ method: 'DELETE', path: `/v21.0/${AUDIENCE}/users` });
    expect(f.members(OBJECT)).toEqual(new Set([sha('alan@example.com')]));
    await conn.write(batch([enter('1', 'ada@example.com')]));
    expect(f.members(OBJECT)).toEqual(new Set([sha('alan@example.com'), sha('ada@example.com')]));
  });

  it('splits a mixed batch by operation and by the keys each record has, within the rows per request', async () => {
    const f = await start();
    const conn = await connect(f.url, { rows: 2 });
    const outcomes = await conn.write(
      batch([
        enter('1', 'a@example.com', { phone: '+1 650 555 0001' }),
        enter('2', 'b@example.com', { phone: null }),
        enter('3', 'c@example.com', { phone: '+1 650 555 0003' }),
        enter('4', 'd@example.com', { phone: '+1 650 555 0004' }),
        leave('5', 'e@example.com'),
      ]),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    const calls = f.requests.map((r) => [
      r.method,
      (r.payload!.schema as string[]).join(','),
      (r.payload!.data as unknown[]).length,
    ]);
    expect(calls).toEqual([
      ['POST', 'EMAIL,PHONE', 2],
      ['POST', 'EMAIL', 1],
      ['POST', 'EMAIL,PHONE', 1],
      ['DELETE', 'EMAIL', 1],
    ]);
  });

  it('rejects a record whose identifier cannot be normalised, naming the field and never the value', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([
        enter('1', 'not-an-email.example.com'),
        enter('2', 'ok@example.com', { phone: 'call me maybe' }),
        enter('3', 'fine@example.com', { gender: 'Female', date_of_birth: '1990-07-04' }),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '3', status: 'ok', action: 'created' },
      { key: '1', status: 'rejected', reason: 'email is not an email address', field: 'email' },
      { key: '2', status: 'rejected', reason: 'phone has no digits', field: 'phone' },
    ]);
    expect(JSON.stringify(outcomes)).not.toMatch(/not-an-email|call me/);
    expect(f.rows(OBJECT)).toEqual([
      { EMAIL: sha('fine@example.com'), DOBY: sha('1990'), DOBM: sha('07'), DOBD: sha('04'), GEN: sha('f') },
    ]);
    expect(f.unhashedSeen()).toEqual([]);
  });

  it('refuses a field that is not an identifier before sending anything', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const error = await caught(conn.write(batch([enter('1', 'ada@example.com', { plan: 'pro' })])));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/"plan"/);
    expect(f.requests).toHaveLength(0);
  });

  it('proves the fake refuses a raw identifier (what the connector never sends)', async () => {
    const f = await start();
    const response = await fetch(`${f.url}/v21.0/${AUDIENCE}/users?access_token=${TOKEN}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload: { schema: ['EMAIL'], data: [['ada@example.com']] } }),
    });
    expect(response.status).toBe(400);
    expect(f.unhashedSeen()).toEqual(['ada@example.com']);
    expect(f.members(OBJECT).size).toBe(0);
  });
});

describe('meta_audiences: rate limits and errors', () => {
  it('keeps the requests already answered when Meta throttles mid-batch, the rest back throttled', async () => {
    const f = await start();
    const pace = countingPace();
    const conn = await connect(f.url, { pace, rows: 2 });
    f.throttleAfter(1, 1);
    const outcomes = await conn.write(
      batch([
        enter('1', 'a@example.com'),
        enter('2', 'b@example.com'),
        enter('3', 'c@example.com'),
        enter('4', 'd@example.com'),
        enter('5', 'e@example.com'),
      ]),
    );
    expect(outcomes.slice(0, 2)).toEqual([
      { key: '1', status: 'ok', action: 'created' },
      { key: '2', status: 'ok', action: 'created' },
    ]);
    for (const outcome of outcomes.slice(2)) {
      expect(outcome).toMatchObject({ status: 'retry', throttled: 'rate-limit', afterMs: 60_000 });
      expect((outcome as { reason: string }).reason).toMatch(/code 17, subcode 2446079.*User request limit reached/);
    }
    expect(outcomes.map((o) => o.key)).toEqual(['1', '2', '3', '4', '5']);
    expect(f.members(OBJECT)).toEqual(new Set([sha('a@example.com'), sha('b@example.com')]));
    expect(pace.throttles).toBe(1);
    // The retry completes the audience.
    const again = await conn.write(
      batch([enter('3', 'c@example.com'), enter('4', 'd@example.com'), enter('5', 'e@example.com')]),
    );
    expect(again.every((o) => o.status === 'ok')).toBe(true);
    expect(f.members(OBJECT).size).toBe(5);
  });

  it('throws a RateLimitedError with the Business Use Case wait when the first request is throttled', async () => {
    const f = await start();
    const conn = await connect(f.url);
    f.throttleNext(1, 80003, 3);
    const error = await caught(conn.write(batch([enter('1', 'a@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(180_000);
    expect(error.message).toMatch(/code 80003/);
  });

  it('ends a revoked token in an AuthError that never quotes the token', async () => {
    const f = await start();
    const conn = await connect(f.url);
    f.revoke();
    const error = await caught(conn.write(batch([enter('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/code 190/);
    expect(error.message).not.toContain(TOKEN);
    expect(f.members(OBJECT).size).toBe(0);
    f.restore();
    expect(await conn.write(batch([enter('1', 'ada@example.com')]))).toEqual([
      { key: '1', status: 'ok', action: 'created' },
    ]);
  });

  it('reports an audience that does not exist as a configuration error', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const error = await caught(conn.write(batch([enter('1', 'ada@example.com')], 'audience:999')));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/does not exist/);
  });
});
