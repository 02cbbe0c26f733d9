import { afterEach, describe, expect, it } from 'vitest';
import { subscriberHash } from '#connectors/destinations/mailchimp/client';
import { mailchimpDestination } from '#connectors/destinations/mailchimp/index';
import { THROTTLE_WAIT_MS } from '#connectors/destinations/mailchimp/limits';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#core/errors';
import { type MailchimpFake, startMailchimpFake } from '#test/fakes/mailchimp/server';

/**
 * Membership objects of the Mailchimp destination (`tag:<name>`, `segment:<id>`), through the
 * connection, against the fake written from Mailchimp's segment docs.
 */

const KEY = '5f2b8c1d9e7a4b3c2d1e0f9a8b7c6d5e-us21';
const LIST = 'a1b2c3d4e5';

let fake: MailchimpFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(members: readonly string[] = []): Promise<MailchimpFake> {
  fake = await startMailchimpFake({ apiKey: KEY });
  fake.createList({ id: LIST });
  for (const email of members) fake.seedMember(LIST, { email, status: 'subscribed' });
  return fake;
}

async function connect(
  f: MailchimpFake,
  opts: Record<string, unknown> = {},
  pace?: { take: () => Promise<void>; throttled: () => Promise<void> },
): Promise<DestinationConnection> {
  const options = mailchimpDestination.optionsSchema.parse({
    base_url: f.url,
    api_key: KEY,
    status: 'subscribed',
    list_id: LIST,
    ...opts,
  });
  const connection = await mailchimpDestination.connect(options, {
    projectDir: process.cwd(),
    ...(pace ? { pace } : {}),
  });
  connections.push(connection);
  return connection;
}

const enter = (key: string, email: string): OutboundRecord => ({ key, op: 'upsert', match: email, fields: {} });
const leave = (key: string, email: string): OutboundRecord => ({ key, op: 'delete', match: email, fields: {} });
const batch = (object: string, records: OutboundRecord[]): WriteBatch => ({
  object,
  matchField: 'email_address',
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

const writes = (f: MailchimpFake) => f.requests.filter((r) => r.method !== 'GET');
const segmentCalls = (f: MailchimpFake) =>
  f.requests.filter((r) => r.method === 'POST' && new RegExp(`^/3.0/lists/${LIST}/segments/\\d+$`).test(r.path));

describe('mailchimp membership: tags', () => {
  it('creates a missing tag once and tags entering members in one batch call', async () => {
    const f = await start(['ada@example.com', 'Bob@Example.com']);
    const conn = await connect(f);
    const outcomes = await conn.write(batch('tag:VIP', [enter('1', 'ada@example.com'), enter('2', 'bob@example.com')]));
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: subscriberHash('ada@example.com') },
      { key: '2', status: 'ok', action: 'created', destinationId: subscriberHash('bob@example.com') },
    ]);
    expect(f.members('tag:VIP')).toEqual(new Set(['ada@example.com', 'bob@example.com']));
    // One look-up of the tags, one create with an empty static_segment, one batch call.
    expect(f.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /3.0/lists/${LIST}/segments`,
      `POST /3.0/lists/${LIST}/segments`,
      expect.stringMatching(new RegExp(`^POST /3.0/lists/${LIST}/segments/\\d+$`)),
    ]);
    expect(f.requests[0]?.query).toMatchObject({ type: 'static', count: '1000' });
    expect(f.requests[1]?.body).toEqual({ name: 'VIP', static_segment: [] });
    expect(segmentCalls(f)[0]?.body).toEqual({ members_to_add: ['ada@example.com', 'bob@example.com'] });
    // The tag is resolved once per connection.
    await conn.write(batch('tag:VIP', [enter('3', 'ada@example.com')]));
    expect(f.requests.filter((r) => r.path.endsWith('/segments'))).toHaveLength(2);
  });

  it('enters and leaves in one request: members_to_add and members_to_remove together', async () => {
    const f = await start(['ada@example.com', 'bob@example.com']);
    const id = f.createSegment(LIST, { name: 'VIP', type: 'static', emails: ['bob@example.com'] });
    const conn = await connect(f);
    const outcomes = await conn.write(
      batch('tag:VIP', [enter('1', 'ada@example.com'), leave('2', 'bob@example.com'), leave('3', 'never@example.com')]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: subscriberHash('ada@example.com') },
      { key: '2', status: 'ok', action: 'deleted' },
      // Removing a member who is not there (not even in the audience) leaves the tag as wanted.
      { key: '3', status: 'ok', action: 'deleted' },
    ]);
    expect(segmentCalls(f)).toHaveLength(1);
    expect(segmentCalls(f)[0]?.path).toBe(`/3.0/lists/${LIST}/segments/${id}`);
    expect(segmentCalls(f)[0]?.body).toEqual({
      members_to_add: ['ada@example.com'],
      members_to_remove: ['bob@example.com', 'never@example.com'],
    });
    expect(f.members('tag:VIP')).toEqual(new Set(['ada@example.com']));
    // Leaving the tag keeps the contact in the audience.
    expect(f.member(LIST, 'bob@example.com')?.status).toBe('subscribed');
  });

  it('re-entering a tagged member is ok: neither added nor refused, confirmed by one look-up', async () => {
    const f = await start(['ada@example.com']);
    f.createSegment(LIST, { name: 'VIP', type: 'static', emails: ['ada@example.com'] });
    const conn = await connect(f);
    const outcomes = await conn.write(batch('tag:VIP', [enter('1', 'ada@example.com')]));
    expect(outcomes).toEqual([{ key: '1', status: 'ok', destinationId: subscriberHash('ada@example.com') }]);
    expect(f.requests.filter((r) => r.path.endsWith(`/members/${subscriberHash('ada@example.com')}`))).toHaveLength(1);
    expect(f.members('tag:VIP')).toEqual(new Set(['ada@example.com']));
    // Leave, then enter again.
    await conn.write(batch('tag:VIP', [leave('1', 'ada@example.com')]));
    expect(f.members('tag:VIP').size).toBe(0);
    expect(await conn.write(batch('tag:VIP', [enter('1', 'ADA@example.com')]))).toMatchObject([
      { key: '1', status: 'ok', action: 'created' },
    ]);
    expect(f.members('tag:VIP')).toEqual(new Set(['ada@example.com']));
  });

  it('rejects a member who is not in the audience, with the reason, while the rest lands', async () => {
    const f = await start(['ada@example.com']);
    const conn = await connect(f);
    const outcomes = await conn.write(
      batch('tag:VIP', [enter('1', 'ada@example.com'), enter('2', 'stranger@example.com'), enter('3', '')]),
    );
    expect(outcomes[0]).toMatchObject({ key: '1', status: 'ok' });
    expect(outcomes[1]).toMatchObject({
      key: '2',
      status: 'rejected',
      field: 'email_address',
      reason: expect.stringMatching(
        /stranger@example\.com is not a member of audience a1b2c3d4e5.*add_missing_members/,
      ),
    });
    expect(outcomes[2]).toMatchObject({ key: '3', status: 'rejected', field: 'email_address' });
    expect(f.members('tag:VIP')).toEqual(new Set(['ada@example.com']));
    expect(f.member(LIST, 'stranger@example.com')).toBeUndefined();
  });

  it('with add_missing_members, upserts a missing member with the status for new members, then tags it', async () => {
    const f = await start(['ada@example.com']);
    const conn = await connect(f, { add_missing_members: true, status: 'pending' });
    const outcomes = await conn.write(
      batch('tag:VIP', [enter('1', 'ada@example.com'), enter('2', 'stranger@example.com'), enter('3', 'not-an-email')]),
    );
    expect(outcomes[0]).toMatchObject({ key: '1', status: 'ok' });
    expect(outcomes[1]).toMatchObject({ key: '2', status: 'ok', action: 'created' });
    expect(outcomes[2]).toMatchObject({
      key: '3',
      status: 'rejected',
      reason: expect.stringMatching(/refused to add not-an-email.*looks fake or invalid/),
    });
    expect(f.members('tag:VIP')).toEqual(new Set(['ada@example.com', 'stranger@example.com']));
    expect(f.member(LIST, 'stranger@example.com')?.status).toBe('pending');
    // The existing member's status is untouched (status_if_new only).
    expect(f.member(LIST, 'ada@example.com')?.status).toBe('subscribed');
    const subscribe = f.requests.find((r) => r.method === 'POST' && r.path === `/3.0/lists/${LIST}`);
    expect(subscribe?.body).toEqual({
      members: [
        { email_address: 'stranger@example.com', status_if_new: 'pending' },
        { email_address: 'not-an-email', status_if_new: 'pending' },
      ],
      update_existing: true,
    });
  });

  it('refuses a missing tag when create_tags is false, and a missing list_id', async () => {
    const f = await start(['ada@example.com']);
    const conn = await connect(f, { create_tags: false });
    const error = await caught(conn.write(batch('tag:Nope', [enter('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/has no tag "Nope".*create_tags/);
    expect(writes(f)).toHaveLength(0);

    const noList = mailchimpDestination.optionsSchema.parse({ base_url: f.url, api_key: KEY, status: 'subscribed' });
    const other = await mailchimpDestination.connect(noList, { projectDir: process.cwd() });
    connections.push(other);
    const missing = await caught(other.write(batch('tag:VIP', [enter('1', 'ada@example.com')])));
    expect(missing).toBeInstanceOf(ConnectorConfigError);
    expect(missing.message).toMatch(/list_id/);
  });

  it('finds a tag created meanwhile by another writer instead of creating it twice', async () => {
    const f = await start(['ada@example.com']);
    const conn = await connect(f);
    // Another exporter creates the tag between our look-up and our create: Mailchimp refuses the
    // second one, and the connector looks it up again.
    const original = f.requests.push.bind(f.requests);
    f.requests.push = (...entries) => {
      if (entries[0]?.method === 'POST' && entries[0].path === `/3.0/lists/${LIST}/segments`) {
        f.requests.push = original;
        f.createSegment(LIST, { name: 'VIP', type: 'static' });
      }
      return original(...entries);
    };
    expect(await conn.write(batch('tag:VIP', [enter('1', 'ada@example.com')]))).toMatchObject([{ status: 'ok' }]);
    expect(f.members('tag:VIP')).toEqual(new Set(['ada@example.com']));
    expect(f.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/segments'))).toHaveLength(2);
  });
});

describe('mailchimp membership: static segments by id', () => {
  it('writes a static segment by id and refuses unknown and saved segments', async () => {
    const f = await start(['ada@example.com']);
    const id = f.createSegment(LIST, { name: 'Imported', type: 'static' });
    const saved = f.createSegment(LIST, { name: 'Active', type: 'saved' });
    const conn = await connect(f);
    expect(await conn.write(batch(`segment:${id}`, [enter('1', 'ada@example.com')]))).toMatchObject([
      { key: '1', status: 'ok', action: 'created' },
    ]);
    expect(f.members(`segment:${id}`)).toEqual(new Set(['ada@example.com']));
    expect(f.members('tag:Imported')).toEqual(new Set(['ada@example.com']));

    const unknown = await caught(conn.write(batch('segment:999999', [enter('1', 'ada@example.com')])));
    expect(unknown).toBeInstanceOf(ConnectorConfigError);
    expect(unknown.message).toMatch(/has no segment 999999/);
    const computed = await caught(conn.write(batch(`segment:${saved}`, [enter('1', 'ada@example.com')])));
    expect(computed).toBeInstanceOf(ConnectorConfigError);
    expect(computed.message).toMatch(/saved segment/);
    const malformed = await caught(conn.write(batch('segment:abc', [enter('1', 'ada@example.com')])));
    expect(malformed).toBeInstanceOf(ConnectorConfigError);
  });

  it('looks a tag up again after it was deleted in Mailchimp', async () => {
    const f = await start(['ada@example.com']);
    const id = f.createSegment(LIST, { name: 'VIP', type: 'static' });
    const conn = await connect(f);
    await conn.write(batch('tag:VIP', [enter('1', 'ada@example.com')]));
    f.deleteSegment(LIST, id);
    const gone = await caught(conn.write(batch('tag:VIP', [enter('2', 'ada@example.com')])));
    expect(gone).toBeInstanceOf(ConnectorConfigError);
    expect(await conn.write(batch('tag:VIP', [enter('2', 'ada@example.com')]))).toMatchObject([{ status: 'ok' }]);
    expect(f.members('tag:VIP')).toEqual(new Set(['ada@example.com']));
  });
});

describe('mailchimp membership: limits and progress', () => {
  it('sends at most 500 emails per array and keeps the first call when the second is rate limited', async () => {
    const emails = Array.from({ length: 700 }, (_, i) => `user${i}@example.com`);
    const f = await start(emails);
    f.createSegment(LIST, { name: 'VIP', type: 'static' });
    const conn = await connect(f);
    await conn.write(batch('tag:VIP', [enter('warm', 'user0@example.com')]));
    f.throttleNext(1, /\/segments\/\d+$/, 1);
    const records = emails.slice(1).map((e, i) => enter(String(i), e));
    const outcomes = await conn.write(batch('tag:VIP', records));
    expect(outcomes.slice(0, 500).every((o) => o.status === 'ok')).toBe(true);
    expect(outcomes.slice(500)).toEqual(
      records.slice(500).map((r) => ({
        key: r.key,
        status: 'retry',
        reason: expect.stringMatching(/RateLimitedError/),
        throttled: 'rate-limit',
        afterMs: THROTTLE_WAIT_MS,
      })),
    );
    expect(f.members('tag:VIP').size).toBe(501);
    // The throttled call was refused before its body was read.
    const calls = segmentCalls(f).map((r) => [
      r.status,
      (r.body as { members_to_add?: string[] } | undefined)?.members_to_add?.length,
    ]);
    expect(calls).toEqual([
      [200, 1],
      [200, 500],
      [429, undefined],
    ]);
    // The rest, sent again, lands.
    expect((await conn.write(batch('tag:VIP', records.slice(500)))).every((o) => o.status === 'ok')).toBe(true);
    expect(f.members('tag:VIP').size).toBe(700);
  });

  it('gives back the members still open when a look-up after the batch call is throttled', async () => {
    const f = await start(['ada@example.com', 'bob@example.com']);
    f.createSegment(LIST, { name: 'VIP', type: 'static', emails: ['ada@example.com'] });
    const conn = await connect(f);
    // Mailchimp's throttle under load (a bare 403) on the first member look-up.
    const original = f.requests.push.bind(f.requests);
    f.requests.push = (...entries) => {
      if (entries[0]?.method === 'GET' && entries[0].path.includes('/members/')) {
        f.requests.push = original;
        f.forbidNext(1, 'bare');
      }
      return original(...entries);
    };
    const outcomes = await conn.write(batch('tag:VIP', [enter('1', 'ada@example.com'), enter('2', 'bob@example.com')]));
    expect(outcomes).toEqual([
      {
        key: '1',
        status: 'retry',
        reason: expect.stringMatching(/RateLimitedError/),
        throttled: 'rate-limit',
        afterMs: THROTTLE_WAIT_MS,
      },
      { key: '2', status: 'ok', action: 'created', destinationId: subscriberHash('bob@example.com') },
    ]);
    expect(f.members('tag:VIP')).toEqual(new Set(['ada@example.com', 'bob@example.com']));
  });

  it('the fake refuses more than 500 emails in members_to_add, as documented', async () => {
    const f = await start();
    const id = f.createSegment(LIST, { name: 'VIP', type: 'static' });
    const response = await fetch(`${f.url}/lists/${LIST}/segments/${id}`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`x:${KEY}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ members_to_add: Array.from({ length: 501 }, (_, i) => `u${i}@example.com`) }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      title: 'Invalid Resource',
      errors: [{ field: 'members_to_add', message: 'A maximum of 500 members can be sent.' }],
    });
  });

  it('takes a slot of the lane’s pace for every request: look-up, create, batch call, member look-up', async () => {
    const f = await start(['ada@example.com', 'bob@example.com']);
    let taken = 0;
    const conn = await connect(f, {}, { take: async () => void taken++, throttled: async () => {} });
    await conn.write(batch('tag:VIP', [enter('1', 'ada@example.com')]));
    await conn.write(batch('tag:VIP', [enter('1', 'ada@example.com')]));
    // segments, create, batch; batch, member look-up.
    expect(f.requestTimes()).toHaveLength(5);
    expect(taken).toBe(5);
  });

  it('reports the identifier field of a membership object', async () => {
    const f = await start();
    const conn = await connect(f);
    expect(await conn.fields('tag:VIP')).toEqual([
      { name: 'email_address', type: 'string', required: true, kind: 'known', matchable: true },
    ]);
    expect(f.requests).toHaveLength(0);
  });
});
