import { afterEach, describe, expect, it } from 'vitest';
import { createHubSpotClient } from '#connectors/destinations/hubspot/client';
import { hubspotDestination } from '#connectors/destinations/hubspot/index';
import { hubspotLimits } from '#connectors/destinations/hubspot/limits';
import { writeBatch } from '#connectors/destinations/hubspot/write';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import type { FieldType, RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import { type HubSpotFake, type HubSpotFakeOptions, startHubspotFake } from '#test/fakes/hubspot/server';
import { countingPace } from '../fakes/counting-pace.ts';

const TOKEN = 'pat-na1-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

let fake: HubSpotFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<HubSpotFakeOptions> = {}): Promise<HubSpotFake> {
  fake = await startHubspotFake({ token: TOKEN, ...options });
  return fake;
}

async function connect(
  url: string,
  token = TOKEN,
  extra: { pace?: RequestPace; timeout_ms?: number } = {},
): Promise<DestinationConnection> {
  const options = hubspotDestination.optionsSchema.parse({
    base_url: url,
    access_token: token,
    ...(extra.timeout_ms !== undefined && { timeout_ms: extra.timeout_ms }),
  });
  const connection = await hubspotDestination.connect(options, { projectDir: process.cwd(), pace: extra.pace });
  connections.push(connection);
  return connection;
}

function batch(
  records: OutboundRecord[],
  object = 'contacts',
  matchField = 'email',
  fieldTypes: Record<string, FieldType> = {},
): WriteBatch {
  return { object, matchField, fieldTypes, records };
}

const rec = (
  key: string,
  match: string,
  fields: OutboundRecord['fields'] = {},
  op: OutboundRecord['op'] = 'upsert',
): OutboundRecord => ({ key, op, match, fields });

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const batchCalls = (f: HubSpotFake) => f.requests.filter((r) => r.method === 'POST');
const inputsOf = (body: unknown) => (body as { inputs: Record<string, unknown>[] }).inputs;

describe('hubspot destination: definition', () => {
  it('declares the documented limits, with their vendor pages', () => {
    expect(hubspotLimits.batchSize.value).toBe(100);
    expect(hubspotLimits.requestsPerSecond!.value).toBeLessThanOrEqual(10);
    expect(hubspotLimits.dailyQuota!.value).toBe(250_000);
    for (const limit of Object.values(hubspotLimits))
      expect(limit.doc).toMatch(/^https:\/\/developers\.hubspot\.com\//);
  });

  it('takes the token only from a secret, and defaults to api.hubapi.com', () => {
    expect(hubspotDestination.secretKeys).toEqual(['access_token']);
    const parsed = hubspotDestination.optionsSchema.parse({ access_token: TOKEN });
    expect(parsed.base_url).toBe('https://api.hubapi.com');
    expect(() => hubspotDestination.optionsSchema.parse({ access_token: `${TOKEN}\n` })).toThrow(/trailing newline/);
    expect(() => hubspotDestination.optionsSchema.parse({ access_token: TOKEN, portal: 1 })).toThrow();
  });

  it('knows contacts, companies and list memberships, archives in mirror mode, and accepts custom objects', () => {
    expect(hubspotDestination.objects?.map((o) => [o.name, o.matchKeys, o.onDelete])).toEqual([
      ['contacts', ['email', '*unique'], 'archive'],
      ['companies', ['*unique'], 'archive'],
      // Membership of a static list (hubspot-membership.test.ts): leaving removes the membership.
      ['list:<listId>', ['email', '*unique'], 'remove'],
    ]);
    expect(hubspotDestination.customObjects).toBe(true);
    expect(hubspotDestination.modes).toEqual(['upsert', 'update', 'insert', 'mirror']);
  });
});

describe('hubspot destination: auth', () => {
  it('checks the token with the account details', async () => {
    const f = await start();
    const conn = await connect(f.url);
    await conn.check();
    expect(f.requests.at(-1)).toMatchObject({ method: 'GET', path: '/account-info/v3/details', status: 200 });
  });

  it('ends a wrong or revoked token in an AuthError that never quotes the token', async () => {
    const f = await start();
    const wrong = await connect(f.url, 'pat-na1-not-the-right-token');
    const error = await caught(wrong.check());
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/401/);
    expect(error.message).toMatch(/INVALID_AUTHENTICATION/);
    expect(error.message).not.toContain('pat-na1-not-the-right-token');

    const conn = await connect(f.url);
    f.revoke();
    const revoked = await caught(conn.write(batch([rec('1', 'ada@example.com', { firstname: 'Ada' })])));
    expect(revoked).toBeInstanceOf(AuthError);
    expect(revoked.message).not.toContain(TOKEN);
    expect(f.stored('contacts').size).toBe(0);
  });

  it('reports a missing scope as an AuthError naming the scopes', async () => {
    const f = await start({ scopes: ['crm.objects.contacts.read', 'crm.schemas.contacts.read'] });
    const conn = await connect(f.url);
    const error = await caught(conn.write(batch([rec('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/403.*MISSING_SCOPES/s);
  });
});

describe('hubspot destination: field discovery', () => {
  it('lists the writable properties of contacts with types, custom kind, and email matchable', async () => {
    const f = await start();
    const fields = await (await connect(f.url)).fields('contacts');
    const byName = new Map(fields.map((field) => [field.name, field]));
    expect(byName.get('email')).toEqual({
      name: 'email',
      type: 'string',
      required: false,
      kind: 'known',
      matchable: true,
    });
    expect(byName.get('customer_id')).toMatchObject({ kind: 'custom', matchable: true });
    expect(byName.get('firstname')).toMatchObject({ kind: 'known', matchable: false });
    expect(byName.get('lifetime_value')).toMatchObject({ type: 'number', kind: 'custom' });
    expect(byName.get('signup_date')?.type).toBe('date');
    expect(byName.get('last_seen_at')?.type).toBe('timestamp');
    expect(byName.get('is_active')?.type).toBe('boolean');
    expect(byName.get('interests')?.type).toBe('json');
    expect(byName.get('lifecyclestage')?.type).toBe('string');
    // Read-only and calculated properties cannot be mapped.
    for (const name of ['hs_object_id', 'createdate', 'lastmodifieddate', 'hs_analytics_num_visits'])
      expect(byName.has(name)).toBe(false);
    expect(f.requests.at(-1)).toMatchObject({ method: 'GET', path: '/crm/v3/properties/contacts' });
  });

  it("does not offer a company's domain as a match key, only unique properties", async () => {
    const f = await start();
    const fields = await (await connect(f.url)).fields('companies');
    expect(fields.filter((field) => field.matchable).map((field) => field.name)).toEqual(['account_id']);
  });

  it('discovers a custom object by name or objectTypeId, and refuses an unknown object', async () => {
    const f = await start();
    const conn = await connect(f.url);
    expect((await conn.fields('pets')).find((field) => field.matchable)?.name).toBe('pet_id');
    expect((await conn.fields('2-1001')).map((field) => field.name)).toContain('species');
    const error = await caught(conn.fields('unicorns'));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/no object "unicorns"/);
  });
});

describe('hubspot destination: upsert', () => {
  it('upserts by email with the documented request, then reports created and updated', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const first = await conn.write(
      batch([rec('1', 'ada@example.com', { firstname: 'Ada', plan: 'pro' }), rec('2', 'alan@example.com')]),
    );
    expect(first).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: expect.any(String) },
      { key: '2', status: 'ok', action: 'created', destinationId: expect.any(String) },
    ]);
    const call = batchCalls(f).at(-1)!;
    expect(call.path).toBe('/crm/v3/objects/contacts/batch/upsert');
    expect(inputsOf(call.body)[0]).toEqual({
      idProperty: 'email',
      id: 'ada@example.com',
      properties: { firstname: 'Ada', plan: 'pro' },
      objectWriteTraceId: '1',
    });

    const second = await conn.write(batch([rec('1', 'Ada@Example.com', { plan: 'enterprise' })]));
    expect(second).toEqual([
      {
        key: '1',
        status: 'ok',
        action: 'updated',
        destinationId: first[0]!.status === 'ok' ? first[0]!.destinationId : '',
      },
    ]);
    expect(f.stored('contacts').get('ada@example.com')).toEqual({
      email: 'ada@example.com',
      firstname: 'Ada',
      plan: 'enterprise',
    });
  });

  it('clears a property for a null and leaves an absent one untouched', async () => {
    const f = await start();
    const conn = await connect(f.url);
    await conn.write(batch([rec('1', 'ada@example.com', { firstname: 'Ada', plan: 'pro', lifetime_value: '12.5' })]));
    await conn.write(batch([rec('1', 'ada@example.com', { lifetime_value: null })]));
    expect(inputsOf(batchCalls(f).at(-1)!.body)[0]!.properties).toEqual({ lifetime_value: '' });
    expect(f.stored('contacts').get('ada@example.com')).toEqual({
      email: 'ada@example.com',
      firstname: 'Ada',
      plan: 'pro',
    });
  });

  it('sends values in the declared formats: strings, midnight-UTC dates, epoch-ms datetimes, ";"-joined lists', async () => {
    const f = await start();
    const conn = withFormats(await connect(f.url), hubspotDestination.formats);
    const outcomes = await conn.write(
      batch(
        [
          rec('1', 'ada@example.com', {
            lifetime_value: 1234.5,
            signup_date: '2026-03-01',
            last_seen_at: '2026-03-01T10:30:00Z',
            is_active: true,
            interests: '["sql", "crm"]',
          }),
        ],
        'contacts',
        'email',
        {
          email: 'string',
          lifetime_value: 'number',
          signup_date: 'date',
          last_seen_at: 'timestamp',
          is_active: 'boolean',
          interests: 'json',
        },
      ),
    );
    expect(outcomes[0]!.status).toBe('ok');
    expect(f.stored('contacts').get('ada@example.com')).toMatchObject({
      lifetime_value: '1234.5',
      signup_date: String(Date.UTC(2026, 2, 1)),
      last_seen_at: String(Date.parse('2026-03-01T10:30:00Z')),
      is_active: 'true',
      interests: 'sql;crm',
    });
  });

  it('upserts a company by a unique property, and refuses to match on the non-unique domain', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const ok = await conn.write(
      batch([rec('1', 'acct-1', { name: 'Acme', domain: 'acme.io' })], 'companies', 'account_id'),
    );
    expect(ok[0]).toMatchObject({ status: 'ok', action: 'created' });
    expect(f.stored('companies').get('acct-1')).toMatchObject({ name: 'Acme', domain: 'acme.io' });

    const error = await caught(conn.write(batch([rec('1', 'acme.io', { name: 'Acme' })], 'companies', 'domain')));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/not unique/);
  });

  it('writes a custom object by name and by objectTypeId', async () => {
    const f = await start();
    const conn = await connect(f.url);
    await conn.write(batch([rec('1', 'pet-1', { pet_name: 'Rex', species: 'dog' })], 'pets', 'pet_id'));
    await conn.write(batch([rec('1', 'pet-1', { pet_name: 'Rex II' })], '2-1001', 'pet_id'));
    expect(f.stored('pets').get('pet-1')).toEqual({ pet_id: 'pet-1', pet_name: 'Rex II', species: 'dog' });
    const error = await caught(conn.write(batch([rec('1', 'x')], 'unicorns', 'id')));
    expect(error).toBeInstanceOf(ConnectorConfigError);
  });

  it('never sends more than 100 inputs per request, whatever the batch size', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const records = Array.from({ length: 250 }, (_, i) =>
      rec(String(i), `user${i}@example.com`, { firstname: `U${i}` }),
    );
    const outcomes = await conn.write(batch(records));
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    expect(batchCalls(f).map((r) => inputsOf(r.body).length)).toEqual([100, 100, 50]);
    expect(f.stored('contacts').size).toBe(250);
  });

  it('sends a duplicate match value of one batch in a later request instead of failing both', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(batch([rec('1', 'ada@example.com'), rec('2', 'ADA@example.com')]));
    expect(outcomes[0]).toMatchObject({ status: 'ok' });
    expect(outcomes[1]).toMatchObject({ status: 'retry', reason: expect.stringMatching(/same email/) });
  });
});

describe('hubspot destination: per-record errors', () => {
  it('rejects the invalid email of an all-or-nothing upsert by email, and lands the rest', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([
        rec('8', 'grace8@example.com'),
        rec('9', 'not-an-email', { firstname: 'X' }),
        rec('10', 'ken10@example.com'),
      ]),
    );
    expect(outcomes[1]).toEqual({
      key: '9',
      status: 'rejected',
      reason: expect.stringMatching(/^INVALID_EMAIL: Email address not-an-email is invalid \(HubSpot correlationId /),
      field: 'email',
    });
    expect(outcomes[0]).toMatchObject({ status: 'ok', action: 'created' });
    expect(outcomes[2]).toMatchObject({ status: 'ok', action: 'created' });
    // HubSpot refused the whole batch (400), then the two valid records were sent again.
    expect(batchCalls(f).map((r) => [r.status, inputsOf(r.body).length])).toEqual([
      [400, 3],
      [200, 2],
    ]);
    expect([...f.stored('contacts').keys()].sort()).toEqual(['grace8@example.com', 'ken10@example.com']);
  });

  it('reads multi-status (207) errors by objectWriteTraceId where HubSpot answers an upsert with them', async () => {
    // The OpenAPI spec lists a 207 for batch/upsert; the docs describe none: the fake's option.
    const f = await start({ upsertMultiStatus: true });
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch(
        [
          rec('1', 'c-1', { email: 'ada@example.com' }),
          rec('2', 'c-2', { email: 'nope' }),
          rec('3', 'c-3', { lifecyclestage: 'alien' }),
        ],
        'contacts',
        'customer_id',
      ),
    );
    expect(outcomes[0]).toMatchObject({ status: 'ok', action: 'created' });
    expect(outcomes[1]).toMatchObject({
      status: 'rejected',
      field: 'email',
      reason: expect.stringMatching(/^INVALID_EMAIL/),
    });
    expect(outcomes[2]).toMatchObject({
      status: 'rejected',
      field: 'lifecyclestage',
      reason: expect.stringMatching(/^INVALID_OPTION: alien was not one of the allowed options/),
    });
    expect(batchCalls(f).map((r) => r.status)).toEqual([207]);
  });

  it('rejects the bad records of an all-or-nothing upsert by a unique property, and lands the rest', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch(
        [
          rec('1', 'c-1', { email: 'ada@example.com' }),
          rec('2', 'c-2', { email: 'nope' }),
          rec('3', 'c-3', { lifecyclestage: 'alien' }),
        ],
        'contacts',
        'customer_id',
      ),
    );
    expect(outcomes[0]).toMatchObject({ status: 'ok', action: 'created' });
    expect(outcomes[1]).toMatchObject({
      status: 'rejected',
      field: 'email',
      reason: expect.stringMatching(/^INVALID_EMAIL/),
    });
    expect(outcomes[2]).toMatchObject({
      status: 'rejected',
      field: 'lifecyclestage',
      reason: expect.stringMatching(/^INVALID_OPTION: alien/),
    });
    // HubSpot refused the whole batch; the valid record was sent again alone.
    expect(batchCalls(f).map((r) => [r.status, inputsOf(r.body).length])).toEqual([
      [400, 3],
      [200, 1],
    ]);
    expect([...f.stored('contacts').keys()]).toEqual(['ada@example.com']);
  });

  it('rejects every record sending a property HubSpot does not have', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([
        rec('1', 'a@example.com', { favourite_colour: 'blue' }),
        rec('2', 'b@example.com', { favourite_colour: 'red' }),
      ]),
    );
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({
        status: 'rejected',
        field: 'favourite_colour',
        reason: expect.stringMatching(/^PROPERTY_DOESNT_EXIST: Property "favourite_colour" does not exist/),
      });
    }
  });

  it('rejects a record without a match value without calling HubSpot', async () => {
    const f = await start();
    const conn = await connect(f.url);
    const outcomes = await conn.write(batch([{ key: '1', op: 'upsert', match: null, fields: {} }]));
    expect(outcomes).toEqual([
      { key: '1', status: 'rejected', reason: expect.stringMatching(/no email value/), field: 'email' },
    ]);
    expect(batchCalls(f)).toHaveLength(0);
  });

  it('narrows down a refusal that names no record by halving the batch', async () => {
    const sent: number[] = [];
    const refusing = (async (_url: string | URL | Request, init?: RequestInit) => {
      const inputs = inputsOf(JSON.parse(String(init?.body)));
      sent.push(inputs.length);
      const bad = inputs.some((i) => i.objectWriteTraceId === 'k5');
      const body = bad
        ? { status: 'error', message: 'Something in this batch is wrong', category: 'VALIDATION_ERROR' }
        : {
            status: 'COMPLETE',
            results: inputs.map((i, n) => ({ id: String(n), objectWriteTraceId: i.objectWriteTraceId, new: true })),
          };
      return new Response(JSON.stringify(body), {
        status: bad ? 400 : 200,
        headers: { 'content-type': 'application/json' },
      });
    }) as typeof fetch;
    const client = createHubSpotClient({ baseUrl: 'http://hubspot.test', accessToken: TOKEN, fetch: refusing });
    const records = Array.from({ length: 8 }, (_, i) => rec(`k${i}`, `u${i}@example.com`));
    const outcomes = await writeBatch(client, batch(records));
    expect(outcomes.filter((o) => o.status === 'ok')).toHaveLength(7);
    expect(outcomes[5]).toMatchObject({
      status: 'rejected',
      reason: 'VALIDATION_ERROR: Something in this batch is wrong',
    });
    expect(sent).toEqual([8, 4, 4, 2, 1, 1, 2]);
  });
});

describe('hubspot destination: insert, update and mirror', () => {
  it('insert creates with batch/create and rejects a record that already exists', async () => {
    const f = await start();
    f.seed('contacts', { email: 'ada@example.com', firstname: 'Ada' });
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([
        rec('1', 'ada@example.com', { firstname: 'Changed' }, 'insert'),
        rec('2', 'alan@example.com', { firstname: 'Alan' }, 'insert'),
      ]),
    );
    expect(outcomes[0]).toMatchObject({
      status: 'rejected',
      reason: expect.stringMatching(/already exists in HubSpot .*Existing ID/),
    });
    expect(outcomes[1]).toMatchObject({ status: 'ok', action: 'created' });
    const call = batchCalls(f).at(-1)!;
    expect(call).toMatchObject({ path: '/crm/v3/objects/contacts/batch/create', status: 207 });
    expect(inputsOf(call.body)[1]).toEqual({
      properties: { firstname: 'Alan', email: 'alan@example.com' },
      objectWriteTraceId: '2',
    });
    expect(f.stored('contacts').get('ada@example.com')?.firstname).toBe('Ada');
  });

  it('update reads the records by email, updates those found by ID, and never creates', async () => {
    const f = await start();
    const id = f.seed('contacts', { email: 'ada@example.com', firstname: 'Ada' });
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([
        rec('1', 'ada@example.com', { firstname: 'Ada L.' }, 'update'),
        rec('2', 'ghost@example.com', { firstname: 'Boo' }, 'update'),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'updated', destinationId: id },
      {
        key: '2',
        status: 'rejected',
        reason: expect.stringMatching(/ghost@example\.com \(update mode never creates\)/),
        field: 'email',
      },
    ]);
    expect(batchCalls(f).map((r) => [r.path, r.status])).toEqual([
      ['/crm/v3/objects/contacts/batch/read', 207],
      ['/crm/v3/objects/contacts/batch/update', 200],
    ]);
    expect(inputsOf(batchCalls(f)[1]!.body)).toEqual([
      { id, properties: { firstname: 'Ada L.' }, objectWriteTraceId: '1' },
    ]);
    expect([...f.stored('contacts').keys()]).toEqual(['ada@example.com']);
  });

  it('mirror archives by record ID, and counts a record already gone as deleted', async () => {
    const f = await start();
    const id = f.seed('contacts', { email: 'ada@example.com' });
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([rec('1', 'ada@example.com', {}, 'delete'), rec('2', 'gone@example.com', {}, 'delete')]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'deleted', destinationId: id },
      { key: '2', status: 'ok', action: 'deleted' },
    ]);
    expect(batchCalls(f).at(-1)).toMatchObject({ path: '/crm/v3/objects/contacts/batch/archive', status: 204 });
    expect(inputsOf(batchCalls(f).at(-1)!.body)).toEqual([{ id }]);
    expect(f.records('contacts')[0]!.archived).toBe(true);
    expect(f.stored('contacts').size).toBe(0);
  });

  it('writes the upserts and the deletes of one mirror batch', async () => {
    const f = await start();
    f.seed('contacts', { email: 'old@example.com' });
    const conn = await connect(f.url);
    const outcomes = await conn.write(
      batch([rec('1', 'new@example.com', { firstname: 'N' }), rec('2', 'old@example.com', {}, 'delete')]),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok']);
    expect([...f.stored('contacts').keys()]).toEqual(['new@example.com']);
  });
});

describe('hubspot destination: rate limits', () => {
  it("turns HubSpot's 429 into a RateLimitedError waiting out the rolling window", async () => {
    const f = await start();
    const conn = await connect(f.url);
    f.throttleNext(1);
    const error = await caught(conn.write(batch([rec('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(10_000);
    expect(error.message).toMatch(/TEN_SECONDLY_ROLLING.*ten_secondly_rolling limit/);
    expect(f.stored('contacts').size).toBe(0);
  });

  it('enforces its own rolling window, and the connector reads the interval header', async () => {
    const f = await start({ burst: { max: 2, intervalMs: 3_000 } });
    const conn = await connect(f.url);
    await conn.check();
    await conn.check();
    const error = await caught(conn.write(batch([rec('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(3_000);
  });

  it('waits the longest a lane can when the daily limit is spent', async () => {
    const f = await start();
    const conn = await connect(f.url);
    f.exhaustDaily();
    const error = await caught(conn.write(batch([rec('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(15 * 60_000);
    expect(error.message).toMatch(/daily limit/);
  });

  it('backs off 2 seconds on 423 Locked', async () => {
    const f = await start();
    const conn = await connect(f.url);
    f.lockNext(1);
    const error = await caught(conn.write(batch([rec('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(2_000);
    expect((await conn.write(batch([rec('1', 'ada@example.com')])))[0]!.status).toBe('ok');
  });
});

describe('hubspot destination: pacing, waits and partial progress', () => {
  it('takes a pace slot for every request: field discovery, lookups and writes', async () => {
    const f = await start();
    f.seed('contacts', { email: 'ada@example.com' });
    const pace = countingPace();
    const conn = withFormats(await connect(f.url, TOKEN, { pace }), hubspotDestination.formats);
    await conn.write(batch([rec('1', 'ada@example.com', { firstname: 'Ada' }, 'update')]));
    expect(f.requests.map((r) => r.path)).toEqual([
      '/crm/v3/properties/contacts',
      '/crm/v3/objects/contacts/batch/read',
      '/crm/v3/objects/contacts/batch/update',
    ]);
    expect(pace.taken).toBe(f.requests.length);
  });

  it('slows the lane down on a 429 (the HTTP client sees the refusal)', async () => {
    const f = await start();
    const pace = countingPace();
    const conn = await connect(f.url, TOKEN, { pace });
    f.throttleNext(1);
    expect(await caught(conn.write(batch([rec('1', 'ada@example.com')])))).toBeInstanceOf(RateLimitedError);
    expect(pace.throttles).toBe(1);
  });

  it('waits out 477 Migration in Progress for its Retry-After instead of failing the batch', async () => {
    const f = await start();
    const pace = countingPace();
    const conn = await connect(f.url, TOKEN, { pace });
    f.migrateNext(1, 7_200);
    const error = await caught(conn.write(batch([rec('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(7_200_000);
    expect(error.message).toMatch(/477 Migration in Progress/);
    expect(f.stored('contacts').size).toBe(0);
    expect((await conn.write(batch([rec('1', 'ada@example.com')])))[0]!.status).toBe('ok');
  });

  it('update keeps the chunk it wrote when a later lookup is rate limited', async () => {
    const f = await start();
    const records = Array.from({ length: 150 }, (_, i) => {
      f.seed('contacts', { email: `u${i}@example.com` });
      return rec(String(i), `u${i}@example.com`, { firstname: `U${i}` }, 'update');
    });
    const conn = await connect(f.url);
    // read 1 and update 1 go through; read 2 is refused.
    f.throttleAfter(2, 1);
    const outcomes = await conn.write(batch(records));
    expect(outcomes.slice(0, 100).every((o) => o.status === 'ok' && o.action === 'updated')).toBe(true);
    for (const outcome of outcomes.slice(100))
      expect(outcome).toMatchObject({ status: 'retry', throttled: 'rate-limit', afterMs: 10_000 });
    expect(f.stored('contacts').get('u0@example.com')?.firstname).toBe('U0');
    expect(f.stored('contacts').get('u149@example.com')?.firstname).toBeUndefined();
  });

  it('mirror keeps the upserts it wrote when the archive is rate limited', async () => {
    const f = await start();
    f.seed('contacts', { email: 'old@example.com' });
    const conn = await connect(f.url);
    // the upsert and the lookup go through; the archive is refused.
    f.throttleAfter(2, 1);
    const outcomes = await conn.write(
      batch([rec('1', 'new@example.com', { firstname: 'N' }), rec('2', 'old@example.com', {}, 'delete')]),
    );
    expect(outcomes[0]).toMatchObject({ status: 'ok', action: 'created' });
    expect(outcomes[1]).toMatchObject({ status: 'retry', throttled: 'rate-limit' });
    expect([...f.stored('contacts').keys()].sort()).toEqual(['new@example.com', 'old@example.com']);
  });

  it('still throws a rate limit that came before anything was written', async () => {
    const f = await start();
    f.seed('contacts', { email: 'ada@example.com' });
    const conn = await connect(f.url);
    // the lookup goes through, the update is refused: nothing written.
    f.throttleAfter(1, 1);
    const error = await caught(conn.write(batch([rec('1', 'ada@example.com', { firstname: 'A' }, 'update')])));
    expect(error).toBeInstanceOf(RateLimitedError);
  });
});

describe('hubspot destination: an insert that timed out after HubSpot applied it', () => {
  it('reads the records back by their match value and reports the ones created, with their IDs', async () => {
    const f = await start();
    f.seed('contacts', { email: 'old@example.com' }, '2020-01-01T00:00:00.000Z');
    const conn = await connect(f.url, TOKEN, { timeout_ms: 1_000 });
    f.commitThenStall(1);
    const outcomes = await conn.write(
      batch([
        rec('1', 'ada@example.com', { firstname: 'Ada' }, 'insert'),
        rec('2', 'alan@example.com', { lifecyclestage: 'alien' }, 'insert'),
        rec('3', 'old@example.com', {}, 'insert'),
      ]),
    );
    const ada = f.records('contacts').find((r) => r.properties.email === 'ada@example.com')!;
    // Created before the timeout: delivered, not "already exists".
    expect(outcomes[0]).toEqual({ key: '1', status: 'ok', destinationId: ada.id });
    // Refused inside the multi-status answer no one read: not created, sent again.
    expect(outcomes[1]).toMatchObject({
      status: 'retry',
      reason: expect.stringMatching(/UnconfirmedWriteError|was not created/),
    });
    // There long before: insert mode rejects it, as HubSpot's CONFLICT would have.
    expect(outcomes[2]).toMatchObject({
      status: 'rejected',
      field: 'email',
      reason: expect.stringMatching(/already exists/),
    });
    expect(batchCalls(f).map((r) => r.path)).toEqual([
      '/crm/v3/objects/contacts/batch/create',
      '/crm/v3/objects/contacts/batch/read',
    ]);
    // Created once: the create was not sent again.
    expect(f.records('contacts').filter((r) => r.properties.email === 'ada@example.com')).toHaveLength(1);
  });
});

describe('hubspot destination: value formats from the property types', () => {
  it('maps the HubSpot property types to field types', async () => {
    const f = await start();
    const types = new Map((await (await connect(f.url)).fields('contacts')).map((x) => [x.name, x.type]));
    expect(Object.fromEntries(types)).toMatchObject({
      firstname: 'string',
      phone: 'string',
      lifetime_value: 'number',
      signup_date: 'date',
      last_seen_at: 'timestamp',
      is_active: 'boolean',
      lifecyclestage: 'string',
      interests: 'json',
    });
  });

  it('writes a timestamp column into a date property as its midnight UTC', async () => {
    const f = await start();
    const conn = withFormats(await connect(f.url), hubspotDestination.formats);
    const outcomes = await conn.write(
      batch([rec('1', 'ada@example.com', { signup_date: '2026-03-01T10:30:00Z' })], 'contacts', 'email', {
        email: 'string',
        signup_date: 'timestamp',
      }),
    );
    expect(outcomes[0]).toMatchObject({ status: 'ok' });
    expect(f.stored('contacts').get('ada@example.com')?.signup_date).toBe(String(Date.UTC(2026, 2, 1)));
  });

  it('writes a date column into a text property as the date, not epoch milliseconds', async () => {
    const f = await start();
    const conn = withFormats(await connect(f.url), hubspotDestination.formats);
    await conn.write(
      batch([rec('1', 'ada@example.com', { plan: '2026-03-01', last_seen_at: '2026-03-01' })], 'contacts', 'email', {
        email: 'string',
        plan: 'date',
        last_seen_at: 'date',
      }),
    );
    expect(f.stored('contacts').get('ada@example.com')).toMatchObject({
      plan: '2026-03-01',
      last_seen_at: String(Date.UTC(2026, 2, 1)),
    });
  });

  it('the fake refuses a date property value that is not at midnight UTC', async () => {
    const f = await start();
    const outcomes = await (await connect(f.url)).write(
      batch([rec('1', 'ada@example.com', { signup_date: String(Date.parse('2026-03-01T10:30:00Z')) })]),
    );
    expect(outcomes[0]).toMatchObject({ status: 'rejected', field: 'signup_date' });
  });
});

describe('hubspot fake: enforces the documented request shapes', () => {
  const post = (f: HubSpotFake, path: string, body: unknown) =>
    fetch(`${f.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('refuses more than 100 inputs, non-string values, and updates by email', async () => {
    const f = await start();
    const many = Array.from({ length: 101 }, (_, i) => ({
      idProperty: 'email',
      id: `u${i}@example.com`,
      properties: {},
    }));
    expect((await post(f, '/crm/v3/objects/contacts/batch/upsert', { inputs: many })).status).toBe(400);
    const numeric = await post(f, '/crm/v3/objects/contacts/batch/upsert', {
      inputs: [{ idProperty: 'email', id: 'a@example.com', properties: { lifetime_value: 12 } }],
    });
    expect(numeric.status).toBe(400);
    expect(await numeric.json()).toMatchObject({ status: 'error', category: 'VALIDATION_ERROR' });
    const byEmail = await post(f, '/crm/v3/objects/contacts/batch/update', {
      inputs: [{ idProperty: 'email', id: 'a@example.com', properties: {} }],
    });
    expect(await byEmail.json()).toMatchObject({
      message: 'Unable to perform update/upsert by non-unique 0-1 property',
    });
  });

  it('answers the documented 429 body and headers', async () => {
    const f = await start();
    f.throttleNext(1);
    const response = await post(f, '/crm/v3/objects/contacts/batch/read', { inputs: [] });
    expect(response.status).toBe(429);
    expect(response.headers.get('x-hubspot-ratelimit-interval-milliseconds')).toBe('10000');
    expect(await response.json()).toMatchObject({
      status: 'error',
      message: 'You have reached your ten_secondly_rolling limit.',
      errorType: 'RATE_LIMIT',
      policyName: 'TEN_SECONDLY_ROLLING',
    });
  });
});
