import { afterEach, describe, expect, it } from 'vitest';
import { hubspotDestination } from '#connectors/destinations/hubspot/index';
import type { DestinationConnection, OutboundRecord, RecordOutcome, WriteBatch } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import { AuthError, ConnectorConfigError } from '#core/errors';
import { type HubSpotFake, type HubSpotFakeOptions, startHubspotFake } from '#test/fakes/hubspot/server';

/**
 * List membership (`list:<listId>`) through the HubSpot connection, against the fake's Lists API:
 * enter adds the contact found by its match property, leave removes it, re-entering adds it again,
 * a member without a contact is rejected (or created with create_missing_contacts), a 429 in the
 * middle of a batch keeps what was done, and a DYNAMIC list is refused.
 */

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

/** A connection as the engine holds it: formats applied, fields discovered before the first write. */
async function connect(extra: Record<string, unknown> = {}): Promise<DestinationConnection> {
  const options = hubspotDestination.optionsSchema.parse({ base_url: fake!.url, access_token: TOKEN, ...extra });
  const connection = withFormats(
    await hubspotDestination.connect(options, { projectDir: process.cwd() }),
    hubspotDestination.formats,
  );
  connections.push(connection);
  return connection;
}

const enter = (key: string, match: string): OutboundRecord => ({ key, op: 'upsert', match, fields: {} });
const leave = (key: string, match: string, destinationId?: string): OutboundRecord => ({
  key,
  op: 'delete',
  match,
  fields: {},
  ...(destinationId !== undefined && { destinationId }),
});
const batch = (object: string, records: OutboundRecord[], matchField = 'email'): WriteBatch => ({
  object,
  matchField,
  fieldTypes: { [matchField]: 'string' },
  records,
});
const byKey = (outcomes: RecordOutcome[]) => new Map(outcomes.map((o) => [o.key, o]));
const membershipCalls = (f: HubSpotFake) => f.requests.filter((r) => r.method === 'PUT');

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('hubspot membership: definition', () => {
  it('declares list:<listId> with the contact match keys, and create_missing_contacts off by default', () => {
    const list = hubspotDestination.objects?.find((o) => o.name === 'list:<listId>');
    expect(list).toMatchObject({ matchKeys: ['email', '*unique'] });
    expect(hubspotDestination.optionsSchema.parse({ access_token: TOKEN }).create_missing_contacts).toBe(false);
  });
});

describe('hubspot membership: enter, leave, re-enter', () => {
  it('adds the contacts found by email with PUT …/memberships/add, by record ID', async () => {
    const f = await start();
    const ada = f.seed('contacts', { email: 'ada@example.com' });
    const bob = f.seed('contacts', { email: 'bob@example.com' });
    const listId = f.createList('VIP');
    const conn = await connect();
    const outcomes = await conn.write(
      batch(`list:${listId}`, [enter('1', 'Ada@Example.com'), enter('2', 'bob@example.com')]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', destinationId: ada, action: 'created' },
      { key: '2', status: 'ok', destinationId: bob, action: 'created' },
    ]);
    expect(f.members(`list:${listId}`)).toEqual(new Set(['ada@example.com', 'bob@example.com']));
    const [add] = membershipCalls(f);
    expect(add).toMatchObject({ path: `/crm/v3/lists/${listId}/memberships/add`, status: 200 });
    expect(new Set(add!.body as string[])).toEqual(new Set([ada, bob]));
    // The list was read once (its processingType), the contacts once, by email.
    expect(f.requests.filter((r) => r.path === `/crm/v3/lists/${listId}`)).toHaveLength(1);
    const read = f.requests.find((r) => r.path === '/crm/v3/objects/contacts/batch/read');
    expect(read!.body).toMatchObject({ idProperty: 'email' });
  });

  it('removes a member that left, keeps the contact, and counts a non-member or non-contact as out', async () => {
    const f = await start();
    const ada = f.seed('contacts', { email: 'ada@example.com' });
    f.seed('contacts', { email: 'bob@example.com' });
    f.seed('contacts', { email: 'cy@example.com' });
    const list = `list:${f.createList('VIP')}`;
    const conn = await connect();
    await conn.write(batch(list, [enter('1', 'ada@example.com'), enter('2', 'bob@example.com')]));

    const outcomes = byKey(
      await conn.write(
        batch(list, [leave('1', 'ada@example.com'), leave('3', 'cy@example.com'), leave('4', 'nobody@example.com')]),
      ),
    );
    expect(outcomes.get('1')).toEqual({ key: '1', status: 'ok', action: 'deleted', destinationId: ada });
    expect(outcomes.get('3')).toMatchObject({ status: 'ok', action: 'deleted' });
    expect(outcomes.get('4')).toEqual({ key: '4', status: 'ok', action: 'deleted' });
    expect(f.members(list)).toEqual(new Set(['bob@example.com']));
    expect(f.stored('contacts').has('ada@example.com')).toBe(true);
    expect(membershipCalls(f).at(-1)).toMatchObject({ path: expect.stringMatching(/\/memberships\/remove$/) });
  });

  it('adds a member again when it re-enters; entering twice is ok and adds nothing', async () => {
    const f = await start();
    const ada = f.seed('contacts', { email: 'ada@example.com' });
    const list = `list:${f.createList('VIP')}`;
    const conn = await connect();
    await conn.write(batch(list, [enter('1', 'ada@example.com')]));
    expect(await conn.write(batch(list, [enter('1', 'ada@example.com')]))).toEqual([
      { key: '1', status: 'ok', destinationId: ada },
    ]);
    await conn.write(batch(list, [leave('1', 'ada@example.com')]));
    expect(f.members(list).size).toBe(0);
    expect(await conn.write(batch(list, [enter('1', 'ada@example.com')]))).toEqual([
      { key: '1', status: 'ok', destinationId: ada, action: 'created' },
    ]);
    expect(f.members(list)).toEqual(new Set(['ada@example.com']));
  });

  it('removes the contact the state remembers even when its email changed in HubSpot', async () => {
    const f = await start();
    const ada = f.seed('contacts', { email: 'ada@example.com' });
    const list = `list:${f.createList('VIP')}`;
    const conn = await connect();
    await conn.write(batch(list, [enter('1', 'ada@example.com')]));
    f.records('contacts').find((r) => r.id === ada)!.properties.email = 'ada.lovelace@example.com';
    await conn.write(batch(list, [leave('1', 'ada@example.com', ada)]));
    expect(f.members(list).size).toBe(0);
  });

  it('matches on a unique contact property instead of email', async () => {
    const f = await start();
    f.seed('contacts', { email: 'ada@example.com', customer_id: 'C-1' });
    const list = `list:${f.createList('VIP')}`;
    const conn = await connect();
    expect(await conn.write(batch(list, [enter('1', 'C-1')], 'customer_id'))).toMatchObject([{ status: 'ok' }]);
    expect(f.members(list)).toEqual(new Set(['ada@example.com']));
  });

  it('sends a contact entering and leaving in one batch in a later batch, not both at once', async () => {
    const f = await start();
    f.seed('contacts', { email: 'ada@example.com' });
    const list = `list:${f.createList('VIP')}`;
    const conn = await connect();
    const outcomes = byKey(
      await conn.write(batch(list, [enter('1', 'ada@example.com'), leave('2', 'ADA@example.com')])),
    );
    expect(outcomes.get('1')).toMatchObject({ status: 'ok' });
    expect(outcomes.get('2')).toMatchObject({ status: 'retry', reason: expect.stringMatching(/another record/) });
    expect(f.members(list)).toEqual(new Set(['ada@example.com']));
  });
});

describe('hubspot membership: members without a contact', () => {
  it('rejects a member with no HubSpot contact, with a short reason, while the rest lands', async () => {
    const f = await start();
    f.seed('contacts', { email: 'ada@example.com' });
    const list = `list:${f.createList('VIP')}`;
    const conn = await connect();
    const outcomes = byKey(
      await conn.write(batch(list, [enter('1', 'ada@example.com'), enter('2', 'ghost@example.com'), enter('3', '')])),
    );
    expect(outcomes.get('1')).toMatchObject({ status: 'ok' });
    expect(outcomes.get('2')).toEqual({
      key: '2',
      status: 'rejected',
      reason: 'no HubSpot contact with email ghost@example.com (create_missing_contacts: true creates it)',
      field: 'email',
    });
    expect(outcomes.get('3')).toMatchObject({ status: 'rejected', field: 'email' });
    expect(f.members(list)).toEqual(new Set(['ada@example.com']));
    expect(f.stored('contacts').has('ghost@example.com')).toBe(false);
  });

  it('creates the missing contact first with create_missing_contacts, and rejects an invalid email', async () => {
    const f = await start();
    f.seed('contacts', { email: 'ada@example.com' });
    const list = `list:${f.createList('VIP')}`;
    const conn = await connect({ create_missing_contacts: true });
    const outcomes = byKey(
      await conn.write(
        batch(list, [enter('1', 'ada@example.com'), enter('2', 'Grace@Example.com'), enter('3', 'not-an-email')]),
      ),
    );
    expect(outcomes.get('1')).toMatchObject({ status: 'ok', action: 'created' });
    expect(outcomes.get('2')).toMatchObject({ status: 'ok', action: 'created' });
    expect(outcomes.get('3')).toMatchObject({
      status: 'rejected',
      reason: expect.stringMatching(/^could not create the HubSpot contact: INVALID_EMAIL/),
    });
    expect(f.stored('contacts').has('grace@example.com')).toBe(true);
    expect(f.members(list)).toEqual(new Set(['ada@example.com', 'grace@example.com']));
    const upsert = f.requests.find((r) => r.path === '/crm/v3/objects/contacts/batch/upsert' && r.status === 200);
    expect((upsert!.body as { inputs: unknown[] }).inputs).toEqual([
      { idProperty: 'email', id: 'Grace@Example.com', properties: {}, objectWriteTraceId: '2' },
    ]);
  });
});

describe('hubspot membership: rate limits and partial progress', () => {
  it('keeps the chunk it added when a 429 stops the next one, and gives the rest back throttled', async () => {
    const f = await start();
    const list = `list:${f.createList('Everyone')}`;
    const records: OutboundRecord[] = [];
    for (let i = 0; i < 150; i++) {
      f.seed('contacts', { email: `user${i}@example.com` });
      records.push(enter(String(i), `user${i}@example.com`));
    }
    const conn = await connect();
    await conn.fields(list); // the SDK's discovery, done before the throttle is set
    // Writes of the fake: read 1, add 1, read 2 pass; add 2 is answered 429.
    f.throttleAfter(3, 1);
    const outcomes = await conn.write(batch(list, records));
    const ok = outcomes.filter((o) => o.status === 'ok');
    const back = outcomes.filter((o) => o.status === 'retry');
    expect(ok).toHaveLength(100);
    expect(back).toHaveLength(50);
    for (const o of back) expect(o).toMatchObject({ throttled: 'rate-limit', afterMs: 10_000 });
    expect(f.members(list).size).toBe(100);
    expect(membershipCalls(f).map((r) => r.status)).toEqual([200, 429]);

    // The records given back land on the next try; those in already are not sent again.
    const again = await conn.write(
      batch(
        list,
        records.filter((r) => back.some((o) => o.key === r.key)),
      ),
    );
    expect(again.every((o) => o.status === 'ok')).toBe(true);
    expect(f.members(list).size).toBe(150);
  });

  it('throws a 429 that came before anything was written, for the engine to give the batch back', async () => {
    const f = await start();
    f.seed('contacts', { email: 'ada@example.com' });
    const list = `list:${f.createList('VIP')}`;
    const conn = await connect();
    await conn.fields(list);
    f.throttleNext(1);
    const error = await caught(conn.write(batch(list, [enter('1', 'ada@example.com')])));
    expect(error.name).toBe('RateLimitedError');
    expect(f.members(list).size).toBe(0);
  });
});

describe('hubspot membership: lists that cannot take members', () => {
  it('refuses a DYNAMIC list with a ConnectorConfigError before changing anything', async () => {
    const f = await start();
    f.seed('contacts', { email: 'ada@example.com' });
    const listId = f.createList('Active customers', 'DYNAMIC');
    const conn = await connect();
    const refused = await caught(conn.write(batch(`list:${listId}`, [enter('1', 'ada@example.com')])));
    expect(refused).toBeInstanceOf(ConnectorConfigError);
    expect(refused.message).toMatch(/active \(DYNAMIC\) list: HubSpot computes its members/);
    expect(membershipCalls(f)).toHaveLength(0);
    expect(f.members(`list:${listId}`).size).toBe(0);
  });

  it('refuses a missing list, a list ID that is not a number, and a list of companies', async () => {
    const f = await start();
    const companies = f.createList('Accounts', 'MANUAL', '0-2');
    const conn = await connect();
    expect(await caught(conn.fields('list:999999'))).toBeInstanceOf(ConnectorConfigError);
    const named = await caught(conn.fields('list:VIP'));
    expect(named).toBeInstanceOf(ConnectorConfigError);
    expect(named.message).toMatch(/ILS list ID, a number/);
    expect((await caught(conn.fields(`list:${companies}`))).message).toMatch(/not contacts/);
  });

  it('reports a token without the lists scope as an AuthError', async () => {
    const f = await start({ scopes: ['crm.objects.contacts.read', 'crm.schemas.contacts.read', 'crm.lists.read'] });
    f.seed('contacts', { email: 'ada@example.com' });
    const list = `list:${f.createList('VIP')}`;
    const conn = await connect();
    const error = await caught(conn.write(batch(list, [enter('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/403.*MISSING_SCOPES/s);
    expect(f.requests.at(-1)).toMatchObject({ method: 'PUT', status: 403 });
  });
});

describe('hubspot membership: fields', () => {
  it('offers the contact properties a member can be matched on', async () => {
    const f = await start();
    const conn = await connect();
    const fields = await conn.fields(`list:${f.createList('VIP')}`);
    expect(fields.map((x) => [x.name, x.matchable])).toEqual([
      ['email', true],
      ['customer_id', true],
    ]);
  });
});

describe('hubspot fake: lists as the Lists API documents them', () => {
  const call = async (f: HubSpotFake, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${f.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('creates lists, answers their processingType, and refuses memberships of a DYNAMIC list', async () => {
    const f = await start();
    const ada = f.seed('contacts', { email: 'ada@example.com' });
    const created = await call(f, 'POST', '/crm/v3/lists/', {
      name: 'VIP',
      objectTypeId: '0-1',
      processingType: 'MANUAL',
    });
    const listId = (created.body.list as { listId: string }).listId;
    expect(created.body.list).toMatchObject({ name: 'VIP', processingType: 'MANUAL', objectTypeId: '0-1' });
    expect(
      (await call(f, 'POST', '/crm/v3/lists/', { name: 'VIP', objectTypeId: '0-1', processingType: 'MANUAL' })).status,
    ).toBe(400);
    expect((await call(f, 'GET', `/crm/v3/lists/${listId}`)).body.list).toMatchObject({ processingType: 'MANUAL' });

    const added = await call(f, 'PUT', `/crm/v3/lists/${listId}/memberships/add`, [ada, '424242']);
    expect(added.body).toEqual({ recordsIdsAdded: [ada], recordIdsRemoved: [], recordIdsMissing: ['424242'] });
    expect((await call(f, 'PUT', `/crm/v3/lists/${listId}/memberships/add`, [ada])).body).toEqual({
      recordsIdsAdded: [],
      recordIdsRemoved: [],
      recordIdsMissing: [],
    });
    expect((await call(f, 'GET', `/crm/v3/lists/${listId}/memberships?limit=250`)).body).toMatchObject({
      results: [{ recordId: ada }],
      total: 1,
    });
    expect((await call(f, 'GET', `/crm/v3/lists/${listId}/memberships?limit=251`)).status).toBe(400);
    expect((await call(f, 'PUT', `/crm/v3/lists/${listId}/memberships/add`, { ids: [ada] })).status).toBe(400);

    const dynamic = f.createList('Active', 'DYNAMIC');
    const refused = await call(f, 'PUT', `/crm/v3/lists/${dynamic}/memberships/add`, [ada]);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ category: 'VALIDATION_ERROR', message: expect.stringMatching(/DYNAMIC/) });
    expect((await call(f, 'GET', '/crm/v3/lists/31337')).status).toBe(404);
  });
});
