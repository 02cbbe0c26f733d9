import { afterEach, describe, expect, it } from 'vitest';
import { apiBaseUrl, subscriberHash } from '#connectors/destinations/mailchimp/client';
import { mailchimpDestination } from '#connectors/destinations/mailchimp/index';
import { THROTTLE_WAIT_MS } from '#connectors/destinations/mailchimp/limits';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import { type MailchimpFake, type MailchimpFakeOptions, startMailchimpFake } from '#test/fakes/mailchimp/server';

const KEY = '5f2b8c1d9e7a4b3c2d1e0f9a8b7c6d5e-us21';
const LIST = 'a1b2c3d4e5';

let fake: MailchimpFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<MailchimpFakeOptions> = {}): Promise<MailchimpFake> {
  fake = await startMailchimpFake({ apiKey: KEY, ...options });
  fake.createList({
    id: LIST,
    mergeFields: [
      { tag: 'PLAN', type: 'text' },
      { tag: 'LTV', type: 'number' },
      { tag: 'SIGNUP', type: 'date' },
      { tag: 'BDAY', type: 'birthday', options: { date_format: 'DD/MM' } },
    ],
  });
  return fake;
}

async function connect(f: MailchimpFake, opts: Record<string, unknown> = {}): Promise<DestinationConnection> {
  const options = mailchimpDestination.optionsSchema.parse({
    base_url: f.url,
    api_key: KEY,
    status: 'subscribed',
    ...opts,
  });
  const connection = await mailchimpDestination.connect(options, { projectDir: process.cwd() });
  connections.push(connection);
  return connection;
}

const upsert = (key: string, match: string, fields: OutboundRecord['fields'] = {}): OutboundRecord => ({
  key,
  op: 'upsert',
  match,
  fields,
});

const batch = (records: OutboundRecord[], object = LIST, matchField = 'email_address'): WriteBatch => ({
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

const batchCalls = (f: MailchimpFake) =>
  f.requests.filter((r) => r.method === 'POST' && r.path === `/3.0/lists/${LIST}`);

/** The body of the `i`-th batch subscribe the fake received. */
function batchBody(f: MailchimpFake, i: number): { members: unknown[]; update_existing: boolean; sync_tags?: boolean } {
  const call = batchCalls(f)[i];
  if (!call) throw new Error(`no batch subscribe #${i}`);
  return call.body as { members: unknown[]; update_existing: boolean; sync_tags?: boolean };
}

describe('mailchimp destination: connection', () => {
  it('finds the data centre in the API key', () => {
    expect(apiBaseUrl('abc-us21')).toBe('https://us21.api.mailchimp.com/3.0');
    expect(apiBaseUrl('abc')).toBeUndefined();
    expect(subscriberHash('Ada@Example.com')).toBe(subscriberHash('ada@example.com'));
    expect(subscriberHash('ada@example.com')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses a key without a data centre when no base_url is set', async () => {
    const options = mailchimpDestination.optionsSchema.parse({ api_key: 'nodatacentre', status: 'subscribed' });
    const error = await caught(mailchimpDestination.connect(options, { projectDir: process.cwd() }));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/data-centre suffix/);
  });

  it('requires the subscription status to be chosen', () => {
    const parsed = mailchimpDestination.optionsSchema.safeParse({ api_key: KEY });
    expect(parsed.success).toBe(false);
  });

  it('checks the key with Basic auth, any user name and the key as password', async () => {
    const f = await start();
    await (await connect(f)).check();
    const ping = f.requests.find((r) => r.path === '/3.0/ping');
    expect(ping?.status).toBe(200);
  });

  it('turns a wrong or revoked key into an AuthError without leaking it', async () => {
    const f = await start();
    const wrong = await caught((await connect(f, { api_key: 'ffffffffffffffffffffffffffffffff-us21' })).check());
    expect(wrong).toBeInstanceOf(AuthError);
    expect(wrong.message).toMatch(/API Key Invalid/);
    expect(wrong.message).not.toContain('ffffffffffffffffffffffffffffffff');

    const conn = await connect(f);
    f.revoke();
    const revoked = await caught(conn.write(batch([upsert('1', 'ada@example.com')])));
    expect(revoked).toBeInstanceOf(AuthError);
    expect(revoked.message).not.toContain(KEY);
    expect(revoked.message).not.toContain(Buffer.from(`backflow:${KEY}`).toString('base64'));
    f.restore();
    expect(await conn.write(batch([upsert('1', 'ada@example.com')]))).toMatchObject([{ status: 'ok' }]);
  });
});

describe('mailchimp destination: writes', () => {
  it('adds members in one batch subscribe with update_existing, the configured status for new members only', async () => {
    const f = await start();
    const conn = await connect(f);
    const outcomes = await conn.write(
      batch([
        upsert('1', 'Ada@Example.com', { FNAME: 'Ada', PLAN: 'pro', LTV: 12.5 }),
        upsert('2', 'grace@example.com', { FNAME: 'Grace' }),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: subscriberHash('ada@example.com') },
      { key: '2', status: 'ok', action: 'created', destinationId: subscriberHash('grace@example.com') },
    ]);
    const [call] = batchCalls(f);
    expect(batchCalls(f)).toHaveLength(1);
    expect(call?.body).toEqual({
      members: [
        {
          email_address: 'Ada@Example.com',
          status_if_new: 'subscribed',
          merge_fields: { FNAME: 'Ada', PLAN: 'pro', LTV: 12.5 },
        },
        { email_address: 'grace@example.com', status_if_new: 'subscribed', merge_fields: { FNAME: 'Grace' } },
      ],
      update_existing: true,
    });
    expect(f.stored(LIST).get('ada@example.com')).toMatchObject({ status: 'subscribed', FNAME: 'Ada', LTV: 12.5 });
  });

  it('updates existing members: absent fields stay, null clears with ""', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.write(batch([upsert('1', 'ada@example.com', { FNAME: 'Ada', PLAN: 'pro', LTV: 10 })]));
    const outcomes = await conn.write(batch([upsert('1', 'ada@example.com', { PLAN: 'gold', LTV: null })]));
    expect(outcomes).toMatchObject([{ key: '1', status: 'ok', action: 'updated' }]);
    expect(f.stored(LIST).get('ada@example.com')).toMatchObject({ FNAME: 'Ada', PLAN: 'gold', LTV: '' });
  });

  it('formats values per merge field: numbers, dates and birthdays after their date_format', async () => {
    const f = await start();
    const conn = await connect(f);
    const outcomes = await conn.write(
      batch([
        upsert('1', 'ada@example.com', { LTV: '1234.50', SIGNUP: '2026-03-04T22:10:00.000Z', BDAY: '1815-12-10' }),
      ]),
    );
    expect(outcomes).toMatchObject([{ status: 'ok' }]);
    // SIGNUP has Mailchimp's default date_format, MM/DD/YYYY; BDAY is DD/MM.
    expect(f.stored(LIST).get('ada@example.com')).toMatchObject({ LTV: 1234.5, SIGNUP: '03/04/2026', BDAY: '10/12' });
  });

  it('maps merge tags case-insensitively and sends a mapped status per member', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.write(batch([upsert('1', 'ada@example.com', { fname: 'Ada', status: 'transactional' })]));
    expect(f.stored(LIST).get('ada@example.com')).toMatchObject({ FNAME: 'Ada', status: 'transactional' });
  });

  it('never sends more than 500 members per call', async () => {
    const f = await start();
    const conn = await connect(f);
    const records = Array.from({ length: 1203 }, (_, i) =>
      upsert(String(i), `user${i}@example.com`, { FNAME: `U${i}` }),
    );
    const outcomes = await conn.write(batch(records));
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    expect(batchCalls(f).map((c) => (c.body as { members: unknown[] }).members.length)).toEqual([500, 500, 203]);
    expect(f.stored(LIST).size).toBe(1203);
  });

  it('reports refused members with Mailchimp’s reason while the rest lands', async () => {
    const f = await start();
    f.seedMember(LIST, { email: 'gone@example.com', status: 'unsubscribed' });
    const conn = await connect(f);
    const outcomes = await conn.write(
      batch([
        upsert('1', 'not-an-email', { FNAME: 'X' }),
        upsert('2', 'gone@example.com', { FNAME: 'Gone', status: 'subscribed' }),
        upsert('3', 'ok@example.com', { FNAME: 'Ok' }),
        upsert('4', 'bad@example.com', { LTV: 'a lot' }),
        upsert('5', 'bad2@example.com', { SIGNUP: '03/04/2026' }),
        upsert('6', 'bad3@example.com', { status: 'vip' }),
      ]),
    );
    expect(outcomes).toEqual([
      {
        key: '1',
        status: 'rejected',
        reason: 'not-an-email looks fake or invalid, please enter a real email address. — Invalid email address',
        field: 'email_address',
      },
      { key: '2', status: 'rejected', reason: expect.stringMatching(/compliance state/) },
      { key: '3', status: 'ok', action: 'created', destinationId: subscriberHash('ok@example.com') },
      { key: '4', status: 'rejected', reason: expect.stringMatching(/expected a number/), field: 'LTV' },
      { key: '5', status: 'rejected', reason: expect.stringMatching(/YYYY-MM-DD/), field: 'SIGNUP' },
      { key: '6', status: 'rejected', reason: expect.stringMatching(/expected one of subscribed/), field: 'status' },
    ]);
    // Records refused before sending never reach Mailchimp; nothing was re-subscribed.
    expect(batchBody(f, 0).members).toHaveLength(3);
    expect(f.stored(LIST).get('gone@example.com')).toMatchObject({ status: 'unsubscribed', FNAME: '' });
    expect(f.stored(LIST).has('not-an-email')).toBe(false);
  });

  it('reports a missing required merge field of a new member', async () => {
    fake = await startMailchimpFake({ apiKey: KEY });
    fake.createList({ id: LIST, mergeFields: [{ tag: 'COMPANY', type: 'text', required: true }] });
    const conn = await connect(fake);
    const outcomes = await conn.write(batch([upsert('1', 'ada@example.com', { FNAME: 'Ada' })]));
    expect(outcomes).toEqual([
      {
        key: '1',
        status: 'rejected',
        reason: 'Your merge fields were invalid. — Please enter a value',
        field: 'COMPANY',
      },
    ]);
  });

  it('holds back a second record with the same address for the next round', async () => {
    const f = await start();
    const conn = await connect(f);
    const outcomes = await conn.write(
      batch([upsert('1', 'ada@example.com', { FNAME: 'A' }), upsert('2', 'ADA@example.com', { FNAME: 'B' })]),
    );
    expect(outcomes).toMatchObject([
      { key: '1', status: 'ok' },
      { key: '2', status: 'retry', reason: expect.stringMatching(/same email address/) },
    ]);
  });

  it('insert mode creates with update_existing false and refuses existing members', async () => {
    const f = await start();
    f.seedMember(LIST, { email: 'there@example.com', status: 'pending', mergeFields: { FNAME: 'Old' } });
    const conn = await connect(f, { status: 'transactional' });
    const outcomes = await conn.write(
      batch([
        { key: '1', op: 'insert', match: 'there@example.com', fields: { FNAME: 'New' } },
        { key: '2', op: 'insert', match: 'new@example.com', fields: { FNAME: 'New' } },
      ]),
    );
    expect(outcomes).toMatchObject([
      { key: '1', status: 'rejected', reason: expect.stringMatching(/already a list member.*insert mode/) },
      { key: '2', status: 'ok', action: 'created' },
    ]);
    expect(batchBody(f, 0).update_existing).toBe(false);
    expect(f.stored(LIST).get('there@example.com')).toMatchObject({ status: 'pending', FNAME: 'Old' });
    expect(f.stored(LIST).get('new@example.com')).toMatchObject({ status: 'transactional' });
  });

  it('refuses unknown merge fields, a wrong match key and an unknown audience for the whole batch', async () => {
    const f = await start();
    const conn = await connect(f);
    const unknown = await caught(conn.write(batch([upsert('1', 'ada@example.com', { COMPANY: 'x' })])));
    expect(unknown).toBeInstanceOf(ConnectorConfigError);
    expect(unknown.message).toMatch(/no merge field COMPANY.*FNAME, LNAME/);

    const match = await caught(conn.write(batch([upsert('1', 'ada@example.com')], LIST, 'customer_id')));
    expect(match).toBeInstanceOf(ConnectorConfigError);

    const audience = await caught(conn.write(batch([upsert('1', 'ada@example.com')], 'ffffffffff')));
    expect(audience).toBeInstanceOf(ConnectorConfigError);
    expect(audience.message).toMatch(/no audience "ffffffffff"/);

    const name = await caught(conn.write(batch([upsert('1', 'ada@example.com')], 'my list')));
    expect(name).toBeInstanceOf(ConnectorConfigError);
  });

  it('sees a merge field added after the connection opened', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.write(batch([upsert('1', 'ada@example.com', { FNAME: 'Ada' })]));
    f.createList({ id: 'b2c3d4e5f6', mergeFields: [{ tag: 'COMPANY', type: 'text' }] });
    const outcomes = await conn.write(batch([upsert('1', 'ada@example.com', { COMPANY: 'ACME' })], 'b2c3d4e5f6'));
    expect(outcomes).toMatchObject([{ status: 'ok' }]);
  });
});

describe('mailchimp destination: tags', () => {
  const tagCalls = (f: MailchimpFake) => f.requests.filter((r) => r.path.endsWith('/tags'));

  it('sends the mapped tags with the batch, replacing the member’s tags (sync_tags), no call per member', async () => {
    const f = await start();
    f.seedMember(LIST, { email: 'ada@example.com', status: 'subscribed', tags: ['by-hand'] });
    const conn = await connect(f);
    await conn.write(
      batch([
        upsert('1', 'ada@example.com', { tags: ['vip', 'beta'] }),
        upsert('2', 'grace@example.com', { tags: 'vip, churn-risk' }),
      ]),
    );
    expect(tagCalls(f)).toHaveLength(0);
    expect(batchCalls(f)).toHaveLength(1);
    expect(batchBody(f, 0)).toMatchObject({ update_existing: true, sync_tags: true });
    expect(batchBody(f, 0).members).toMatchObject([{ tags: ['vip', 'beta'] }, { tags: ['vip', 'churn-risk'] }]);
    expect(f.stored(LIST).get('ada@example.com')?.tags).toEqual(['vip', 'beta']);
    expect(f.stored(LIST).get('grace@example.com')?.tags).toEqual(['vip', 'churn-risk']);

    // null clears them all.
    await conn.write(batch([upsert('1', 'ada@example.com', { tags: null })]));
    expect(f.stored(LIST).get('ada@example.com')?.tags).toEqual([]);
  });

  it('sends members without tags in a call without sync_tags, so their tags stay', async () => {
    const f = await start();
    f.seedMember(LIST, { email: 'ada@example.com', status: 'subscribed', tags: ['by-hand'] });
    f.seedMember(LIST, { email: 'grace@example.com', status: 'subscribed', tags: ['by-hand'] });
    const conn = await connect(f);
    await conn.write(
      batch([upsert('1', 'ada@example.com', { FNAME: 'Ada' }), upsert('2', 'grace@example.com', { tags: ['vip'] })]),
    );
    expect(batchCalls(f).map((c) => (c.body as { sync_tags?: boolean }).sync_tags)).toEqual([true, undefined]);
    expect(f.stored(LIST).get('ada@example.com')?.tags).toEqual(['by-hand']);
    expect(f.stored(LIST).get('grace@example.com')?.tags).toEqual(['vip']);
  });

  it('refuses tags that are not a list of names', async () => {
    const f = await start();
    const conn = await connect(f);
    const outcomes = await conn.write(batch([upsert('1', 'ada@example.com', { tags: { vip: true } })]));
    expect(outcomes).toMatchObject([{ status: 'rejected', field: 'tags' }]);
  });
});

describe('mailchimp destination: mirror', () => {
  it('archives members that left the model, and counts one already gone as archived', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.write(batch([upsert('1', 'ada@example.com', { FNAME: 'Ada' })]));
    const outcomes = await conn.write(
      batch([
        { key: '1', op: 'delete', match: 'ada@example.com', fields: {} },
        { key: '2', op: 'delete', match: 'never@example.com', fields: {} },
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'deleted' },
      { key: '2', status: 'ok', action: 'deleted' },
    ]);
    const archive = f.requests.find((r) => r.method === 'DELETE');
    expect(archive?.path).toBe(`/3.0/lists/${LIST}/members/${subscriberHash('ada@example.com')}`);
    expect(f.stored(LIST).get('ada@example.com')).toMatchObject({ status: 'archived', FNAME: 'Ada' });
  });
});

describe('mailchimp destination: limits', () => {
  it('turns a 429 into a RateLimitedError with the wait for a connection to free up', async () => {
    const f = await start();
    const conn = await connect(f);
    f.throttleNext(1);
    const error = await caught(conn.write(batch([upsert('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(THROTTLE_WAIT_MS);
    expect(f.stored(LIST).size).toBe(0);
    expect(await conn.write(batch([upsert('1', 'ada@example.com')]))).toMatchObject([{ status: 'ok' }]);
  });

  it('is throttled like Mailchimp past the simultaneous-connection cap', async () => {
    const f = await start({ latencyMs: 100, maxConnections: 2 });
    const conn = await connect(f);
    await conn.fields(LIST);
    const results = await Promise.allSettled(
      [1, 2, 3].map((i) => conn.write(batch([upsert(String(i), `u${i}@example.com`)]))),
    );
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason)).toEqual([
      expect.any(RateLimitedError),
    ]);
    expect(f.maxInFlight).toBe(3);
  });

  it('archives a throttled delete batch as a whole later', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.fields(LIST);
    f.throttleNext(1);
    const error = await caught(conn.write(batch([{ key: '1', op: 'delete', match: 'ada@example.com', fields: {} }])));
    expect(error).toBeInstanceOf(RateLimitedError);
  });
});

describe('mailchimp destination: field discovery', () => {
  it('lists the member fields and every merge field, page by page', async () => {
    fake = await startMailchimpFake({ apiKey: KEY });
    fake.createList({
      id: LIST,
      mergeFields: Array.from({ length: 1001 }, (_, i) => ({
        tag: `F${i}`,
        type: i === 0 ? 'number' : i === 1 ? 'date' : 'text',
        required: i === 2,
      })),
    });
    const fields = await (await connect(fake)).fields(LIST);
    expect(fields.slice(0, 3)).toEqual([
      { name: 'email_address', type: 'string', required: true, kind: 'known', matchable: true },
      { name: 'status', type: 'string', required: false, kind: 'known', matchable: false },
      { name: 'tags', type: 'json', required: false, kind: 'known', matchable: false },
    ]);
    expect(fields).toHaveLength(3 + 4 + 1001);
    expect(fields.find((f) => f.name === 'ADDRESS')).toMatchObject({ type: 'json', kind: 'custom' });
    expect(fields.find((f) => f.name === 'F0')).toMatchObject({ type: 'number' });
    expect(fields.find((f) => f.name === 'F1')).toMatchObject({ type: 'date' });
    expect(fields.find((f) => f.name === 'F2')).toMatchObject({ type: 'string', required: true });
    const pages = fake.requests.filter((r) => r.path.endsWith('/merge-fields'));
    expect(pages.map((r) => r.query)).toEqual([
      { count: '1000', offset: '0' },
      { count: '1000', offset: '1000' },
    ]);
  });

  it('says which audience does not exist', async () => {
    const f = await start();
    const error = await caught((await connect(f)).fields('0000000000'));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/no audience "0000000000"/);
  });
});

describe('mailchimp destination: subscription status (consent)', () => {
  it.each(['pending', 'unsubscribed'] as const)(
    'leaves an existing subscriber subscribed when new members get %s',
    async (status) => {
      const f = await start();
      f.seedMember(LIST, { email: 'ada@example.com', status: 'subscribed', mergeFields: { FNAME: 'Old' } });
      const conn = await connect(f, { status });
      const outcomes = await conn.write(
        batch([upsert('1', 'ada@example.com', { FNAME: 'Ada' }), upsert('2', 'new@example.com', { FNAME: 'New' })]),
      );
      expect(outcomes).toMatchObject([
        { status: 'ok', action: 'updated' },
        { status: 'ok', action: 'created' },
      ]);
      expect(f.stored(LIST).get('ada@example.com')).toMatchObject({ status: 'subscribed', FNAME: 'Ada' });
      expect(f.stored(LIST).get('new@example.com')).toMatchObject({ status });
      expect(batchBody(f, 0).members).toEqual([
        { email_address: 'ada@example.com', status_if_new: status, merge_fields: { FNAME: 'Ada' } },
        { email_address: 'new@example.com', status_if_new: status, merge_fields: { FNAME: 'New' } },
      ]);
    },
  );

  it('changes an existing member’s status only when asked: a mapped status, or overwrite_status', async () => {
    const f = await start();
    f.seedMember(LIST, { email: 'ada@example.com', status: 'subscribed' });
    f.seedMember(LIST, { email: 'grace@example.com', status: 'subscribed' });
    const mapped = await connect(f, { status: 'pending' });
    await mapped.write(batch([upsert('1', 'ada@example.com', { status: 'unsubscribed' })]));
    expect(f.stored(LIST).get('ada@example.com')).toMatchObject({ status: 'unsubscribed' });

    const forced = await connect(f, { status: 'transactional', overwrite_status: true });
    await forced.write(batch([upsert('2', 'grace@example.com', { FNAME: 'Grace' })]));
    expect(f.stored(LIST).get('grace@example.com')).toMatchObject({ status: 'transactional' });
    expect(batchBody(f, 1).members).toEqual([
      {
        email_address: 'grace@example.com',
        status: 'transactional',
        status_if_new: 'transactional',
        merge_fields: { FNAME: 'Grace' },
      },
    ]);
  });

  it('never re-subscribes someone who unsubscribed, and still updates their fields', async () => {
    const f = await start();
    f.seedMember(LIST, { email: 'gone@example.com', status: 'unsubscribed' });
    const conn = await connect(f);
    expect(await conn.write(batch([upsert('1', 'gone@example.com', { FNAME: 'Gone' })]))).toMatchObject([
      { status: 'ok', action: 'updated' },
    ]);
    expect(f.stored(LIST).get('gone@example.com')).toMatchObject({ status: 'unsubscribed', FNAME: 'Gone' });
  });
});

describe('mailchimp destination: unconfirmed writes', () => {
  it('resends an upsert whose answer was lost: batch subscribe with update_existing is idempotent', async () => {
    const f = await start();
    const conn = await connect(f, { timeout_ms: 1000, status: 'pending' });
    f.commitThenHang(1);
    const outcomes = await conn.write(batch([upsert('1', 'ada@example.com', { FNAME: 'Ada' })]));
    expect(outcomes).toMatchObject([{ key: '1', status: 'ok' }]);
    expect(batchCalls(f)).toHaveLength(2);
    // The second attempt found the member the first one created, and left its status alone.
    expect(f.stored(LIST).get('ada@example.com')).toMatchObject({ status: 'pending', FNAME: 'Ada' });
  });

  it('reconciles an insert whose answer was lost by looking the members up, never sending it blindly', async () => {
    const f = await start();
    f.seedMember(LIST, { email: 'there@example.com', status: 'subscribed', mergeFields: { FNAME: 'Other' } });
    const conn = await connect(f, { timeout_ms: 1000 });
    f.commitThenHang(1);
    const outcomes = await conn.write(
      batch([
        { key: '1', op: 'insert', match: 'ada@example.com', fields: { FNAME: 'Ada', PLAN: 'pro' } },
        { key: '2', op: 'insert', match: 'there@example.com', fields: { FNAME: 'Mine' } },
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: subscriberHash('ada@example.com') },
      { key: '2', status: 'rejected', reason: expect.stringMatching(/already a list member.*insert mode/) },
    ]);
    expect(batchCalls(f)).toHaveLength(1);
    const lookups = f.requests.filter((r) => r.method === 'GET' && r.path.includes('/members/'));
    expect(lookups.map((r) => r.path)).toEqual([
      `/3.0/lists/${LIST}/members/${subscriberHash('ada@example.com')}`,
      `/3.0/lists/${LIST}/members/${subscriberHash('there@example.com')}`,
    ]);
    expect(f.stored(LIST).get('there@example.com')).toMatchObject({ FNAME: 'Other' });
  });

  it('counts a retried insert that meets its own earlier attempt as created, not rejected', async () => {
    const f = await start();
    const conn = await connect(f);
    // The earlier attempt landed (its answer lost); the engine sends the record again.
    f.seedMember(LIST, { email: 'ada@example.com', status: 'subscribed', mergeFields: { FNAME: 'Ada', LTV: 3 } });
    const outcomes = await conn.write(
      batch([{ key: '1', op: 'insert', match: 'ada@example.com', fields: { FNAME: 'Ada', LTV: '3' } }]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: subscriberHash('ada@example.com') },
    ]);
  });
});

describe('mailchimp destination: partial progress', () => {
  it('keeps the first 500 members when the second batch call is rate limited', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.fields(LIST);
    f.throttleNext(1, new RegExp(`/lists/${LIST}$`), 1);
    const records = Array.from({ length: 600 }, (_, i) => upsert(String(i), `user${i}@example.com`));
    const outcomes = await conn.write(batch(records));
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
    expect(f.stored(LIST).size).toBe(500);
  });

  it('keeps the members written when an archive after them is rate limited', async () => {
    const f = await start();
    f.seedMember(LIST, { email: 'gone@example.com', status: 'subscribed' });
    const conn = await connect(f);
    await conn.fields(LIST);
    f.throttleNext(1, /\/members\//);
    const outcomes = await conn.write(
      batch([
        upsert('1', 'ada@example.com', { FNAME: 'Ada' }),
        { key: '2', op: 'delete', match: 'gone@example.com', fields: {} },
      ]),
    );
    expect(outcomes).toMatchObject([
      { key: '1', status: 'ok', action: 'created' },
      { key: '2', status: 'retry', throttled: 'rate-limit' },
    ]);
    expect(f.stored(LIST).get('gone@example.com')?.status).toBe('subscribed');
  });
});

describe('mailchimp destination: 403', () => {
  it('takes a bare 403 (no JSON body) for Mailchimp’s throttle under load, not for a bad key', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.fields(LIST);
    f.forbidNext(1, 'bare');
    const error = await caught(conn.write(batch([upsert('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(THROTTLE_WAIT_MS);
    expect(await conn.write(batch([upsert('1', 'ada@example.com')]))).toMatchObject([{ status: 'ok' }]);
  });

  it('keeps a 403 with Mailchimp’s problem body an AuthError', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.fields(LIST);
    f.forbidNext(1, 'problem');
    const error = await caught(conn.write(batch([upsert('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/Forbidden/);
  });
});

describe('mailchimp destination: value formats from the merge field types', () => {
  it('reports each merge field type as its Backflow type', async () => {
    fake = await startMailchimpFake({ apiKey: KEY });
    const kinds = ['number', 'date', 'birthday', 'zip', 'url', 'imageurl', 'radio', 'dropdown', 'text'];
    fake.createList({ id: LIST, mergeFields: kinds.map((type) => ({ tag: type.toUpperCase(), type })) });
    const fields = await (await connect(fake)).fields(LIST);
    const typeOf = (name: string) => fields.find((f) => f.name === name)?.type;
    expect(
      Object.fromEntries(['ADDRESS', 'PHONE', ...kinds.map((k) => k.toUpperCase())].map((n) => [n, typeOf(n)])),
    ).toEqual({
      ADDRESS: 'json',
      PHONE: 'string',
      NUMBER: 'number',
      DATE: 'date',
      BIRTHDAY: 'date',
      ZIP: 'string',
      URL: 'string',
      IMAGEURL: 'string',
      RADIO: 'string',
      DROPDOWN: 'string',
      TEXT: 'string',
    });
  });

  it('writes a timestamp column into a date merge field as its day, and a date column into a text field as ISO text', async () => {
    fake = await startMailchimpFake({ apiKey: KEY });
    fake.createList({
      id: LIST,
      mergeFields: [
        { tag: 'SIGNUP', type: 'date', options: { date_format: 'DD/MM/YYYY' } },
        { tag: 'RENEWAL', type: 'date' },
        { tag: 'PLAN', type: 'text' },
        { tag: 'BDAY', type: 'birthday' },
      ],
    });
    // Through the SDK's formats, from the types fields() reports, as the engine writes.
    const conn = withFormats(await connect(fake), mailchimpDestination.formats);
    const outcomes = await conn.write({
      ...batch([
        upsert('1', 'ada@example.com', {
          SIGNUP: '2026-03-24T23:30:00.000Z',
          RENEWAL: '2027-01-31T08:00:00Z',
          PLAN: '2026-03-24',
          BDAY: '1990-12-10T00:00:00Z',
        }),
      ]),
      fieldTypes: { SIGNUP: 'timestamp', RENEWAL: 'timestamp', PLAN: 'date', BDAY: 'timestamp' },
    });
    expect(outcomes).toMatchObject([{ status: 'ok' }]);
    expect(fake.stored(LIST).get('ada@example.com')).toMatchObject({
      SIGNUP: '24/03/2026',
      RENEWAL: '01/31/2027',
      PLAN: '2026-03-24',
      BDAY: '12/10',
    });
  });
});

describe('mailchimp destination: pacing', () => {
  it('takes a slot of the lane’s pace for every request: batches, look-ups, archives, merge fields', async () => {
    const f = await start();
    let taken = 0;
    const pace = { take: async () => void taken++, throttled: async () => {} };
    const options = mailchimpDestination.optionsSchema.parse({ base_url: f.url, api_key: KEY, status: 'subscribed' });
    const conn = await mailchimpDestination.connect(options, { projectDir: process.cwd(), pace });
    connections.push(conn);
    f.seedMember(LIST, { email: 'there@example.com', status: 'subscribed' });
    await conn.write(
      batch([
        upsert('1', 'ada@example.com', { FNAME: 'Ada' }),
        { key: '2', op: 'insert', match: 'there@example.com', fields: { FNAME: 'X' } },
        { key: '3', op: 'delete', match: 'gone@example.com', fields: {} },
      ]),
    );
    // merge fields, upsert batch, insert batch, look-up of the existing member, archive.
    expect(f.requestTimes()).toHaveLength(5);
    expect(taken).toBe(5);
  });
});
