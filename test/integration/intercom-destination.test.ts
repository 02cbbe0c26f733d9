import { afterEach, describe, expect, it } from 'vitest';
import { baseUrlOf, intercomDestination } from '#connectors/destinations/intercom/index';
import { CALLS_PER_WINDOW, intercomLimits, WINDOW_MS } from '#connectors/destinations/intercom/limits';
import { DEFAULT_API_VERSION } from '#connectors/destinations/intercom/manifest';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import type { FieldType, RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import { type IntercomFake, type IntercomFakeOptions, startIntercomFake } from '#test/fakes/intercom/server';

const TOKEN = 'dG9rOmludGVncmF0aW9uX2ludGVyY29tXzk4NzY1';

let fake: IntercomFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<IntercomFakeOptions> = {}): Promise<IntercomFake> {
  fake = await startIntercomFake({
    token: TOKEN,
    customAttributes: { plan: 'string', lifetime_value: 'float', seats: 'integer', trial_ends_at: 'date' },
    ...options,
  });
  return fake;
}

async function connect(opts: Record<string, unknown> = {}, pace?: RequestPace): Promise<DestinationConnection> {
  const options = intercomDestination.optionsSchema.parse({ base_url: fake!.url, access_token: TOKEN, ...opts });
  // As the engine does: the SDK applies the declared value formats before write().
  const connection = withFormats(
    await intercomDestination.connect(options, { projectDir: process.cwd(), pace }),
    intercomDestination.formats,
  );
  connections.push(connection);
  return connection;
}

function batch(
  records: OutboundRecord[],
  matchField = 'external_id',
  fieldTypes: Record<string, FieldType> = {},
): WriteBatch {
  return { object: 'contacts', matchField, fieldTypes, records };
}

const record = (
  key: string,
  fields: OutboundRecord['fields'],
  op: OutboundRecord['op'] = 'upsert',
  match: OutboundRecord['match'] = key,
): OutboundRecord => ({ key, op, match, fields });

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** Waits out the last second of a 10-second rate-limit window, so a test's calls share one window. */
async function awayFromWindowEdge(): Promise<void> {
  const into = Date.now() % 10_000;
  if (into > 9_000) await new Promise((resolve) => setTimeout(resolve, 10_050 - into));
}

const writes = (f: IntercomFake) => f.requests.filter((r) => r.method !== 'GET' && r.path !== '/contacts/search');
const searches = (f: IntercomFake) => f.requests.filter((r) => r.path === '/contacts/search');

describe('intercom destination: options and limits', () => {
  it('picks the regional host unless base_url overrides it', () => {
    const parse = (o: Record<string, unknown>) =>
      intercomDestination.optionsSchema.parse({ access_token: TOKEN, ...o });
    expect(baseUrlOf(parse({}))).toBe('https://api.intercom.io');
    expect(baseUrlOf(parse({ region: 'eu' }))).toBe('https://api.eu.intercom.io');
    expect(baseUrlOf(parse({ region: 'au' }))).toBe('https://api.au.intercom.io');
    expect(baseUrlOf(parse({ region: 'eu', base_url: 'http://127.0.0.1:9' }))).toBe('http://127.0.0.1:9');
    expect(parse({}).api_version).toBe(DEFAULT_API_VERSION);
    expect(() => parse({ api_version: 'latest' })).toThrow(/API version/);
    expect(() => parse({ region: 'us', nope: 1 })).toThrow();
    expect(intercomDestination.secretKeys).toEqual(['access_token']);
  });

  it('declares a request pace under 10,000 calls a minute, with room in every 10-second window', () => {
    const rps = intercomLimits.requestsPerSecond!.value;
    expect(CALLS_PER_WINDOW).toBe(1666);
    expect(WINDOW_MS).toBe(10_000);
    // The pacer allows one request over the rate in a second; the rest of the window is margin
    // for check() and field discovery outside the lane.
    expect((rps + 1) * (WINDOW_MS / 1000)).toBeLessThan(CALLS_PER_WINDOW);
    expect(rps).toBeGreaterThanOrEqual(100);
    expect(intercomLimits.batchSize.value).toBe(10);
    for (const limit of Object.values(intercomLimits))
      expect(limit.doc).toMatch(/^https:\/\/developers\.intercom\.com\//);
  });
});

describe('intercom destination: auth and headers', () => {
  it('checks the token with GET /me, sending the bearer token and Intercom-Version', async () => {
    const f = await start();
    const connection = await connect({ api_version: '2.11' });
    await connection.check();
    const [me] = f.requests;
    expect(me?.path).toBe('/me');
    expect(me?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(me?.headers['intercom-version']).toBe('2.11');
  });

  it('ends in AuthError, without the token, when the token is refused or revoked', async () => {
    const f = await start();
    const wrong = await connect({ access_token: 'wrong-token-value' });
    const refused = await caught(wrong.check());
    expect(refused).toBeInstanceOf(AuthError);
    expect(refused.message).toMatch(/401/);
    expect(refused.message).not.toContain('wrong-token-value');

    const connection = await connect();
    f.revoke();
    const error = await caught(connection.write(batch([record('1', { email: 'a@example.com' })])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).not.toContain(TOKEN);
    f.restore();
    await connection.check();
  });

  it('turns a version Intercom does not know into a ConnectorConfigError', async () => {
    await start();
    const connection = await connect({ api_version: '9.99' });
    const error = await caught(connection.check());
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/api_version/);
  });
});

describe('intercom destination: writing contacts', () => {
  it('creates missing contacts and updates found ones, custom attributes under custom_attributes', async () => {
    const f = await start();
    const existing = f.seed({
      external_id: '2',
      email: 'old@example.com',
      name: 'Old',
      custom_attributes: { plan: 'free' },
    });
    const connection = await connect();
    const outcomes = await connection.write(
      batch([
        record('1', { email: 'ada@example.com', name: 'Ada', plan: 'pro', lifetime_value: 12.5 }),
        record('2', { name: 'Grace', plan: 'gold' }),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: expect.any(String) },
      { key: '2', status: 'ok', action: 'updated', destinationId: existing.id },
    ]);
    const [search] = searches(f);
    expect(search?.body).toEqual({
      query: { field: 'external_id', operator: 'IN', value: ['1', '2'] },
      pagination: { per_page: 150 },
    });
    const create = f.requests.find((r) => r.method === 'POST' && r.path === '/contacts');
    expect(create?.body).toEqual({
      email: 'ada@example.com',
      name: 'Ada',
      custom_attributes: { plan: 'pro', lifetime_value: 12.5 },
      role: 'user',
      external_id: '1',
    });
    const update = f.requests.find((r) => r.method === 'PUT');
    expect(update?.path).toBe(`/contacts/${existing.id}`);
    expect(update?.body).toEqual({ name: 'Grace', custom_attributes: { plan: 'gold' } });
    // Absent fields stay as they were.
    expect(f.stored('contacts').get('2')).toMatchObject({ email: 'old@example.com', name: 'Grace', plan: 'gold' });
  });

  it('clears an attribute sent as null, and leaves nulls out of a create', async () => {
    const f = await start();
    f.seed({
      external_id: '5',
      name: 'Ken',
      phone: '+15550100',
      custom_attributes: { plan: 'pro', lifetime_value: 3 },
    });
    const connection = await connect();
    await connection.write(
      batch([
        record('5', { phone: null, lifetime_value: null }),
        record('6', { email: 'new@example.com', lifetime_value: null, phone: null }),
      ]),
    );
    expect(f.requests.find((r) => r.method === 'PUT')?.body).toEqual({
      phone: null,
      custom_attributes: { lifetime_value: null },
    });
    expect(f.requests.find((r) => r.method === 'POST' && r.path === '/contacts')?.body).toEqual({
      email: 'new@example.com',
      role: 'user',
      external_id: '6',
    });
    const stored = f.stored('contacts').get('5')!;
    expect(stored.phone).toBeNull();
    expect(stored.lifetime_value).toBeUndefined();
    expect(stored.plan).toBe('pro');
  });

  it('matches on email without regard to case, and names custom attributes by full name too', async () => {
    const f = await start();
    const grace = f.seed({ email: 'Grace.Hopper@example.com', external_id: null });
    const connection = await connect();
    const outcomes = await connection.write(
      batch([record('7', { 'custom_attributes.plan': 'starter' }, 'upsert', 'grace.hopper@example.com')], 'email'),
    );
    expect(outcomes).toEqual([{ key: '7', status: 'ok', action: 'updated', destinationId: grace.id }]);
    expect(searches(f)[0]?.body).toMatchObject({ query: { field: 'email', operator: 'IN' } });
    expect(grace.custom_attributes.plan).toBe('starter');
  });

  it('sends timestamps and dates as Unix seconds', async () => {
    const f = await start();
    const connection = await connect();
    await connection.write(
      batch([record('8', { signed_up_at: '2026-01-02T03:04:05.000Z', trial_ends_at: '2026-02-01' })], 'external_id', {
        signed_up_at: 'timestamp',
        trial_ends_at: 'date',
      }),
    );
    expect(f.requests.find((r) => r.path === '/contacts')?.body).toMatchObject({
      signed_up_at: Date.parse('2026-01-02T03:04:05Z') / 1000,
      custom_attributes: { trial_ends_at: Date.parse('2026-02-01T00:00:00Z') / 1000 },
    });
  });

  it('formats values from the attribute types: a timestamp into a date attribute, a date into a text one', async () => {
    const f = await start({
      customAttributes: { renewal_day: 'string', trial_ends_at: 'date', converted_at: 'date', plan: 'string' },
    });
    const connection = await connect();
    const outcomes = await connection.write(
      batch(
        [
          record('8', {
            // A timestamp column into a date attribute: its instant, in Unix seconds.
            trial_ends_at: '2026-03-04T05:06:07.000Z',
            // A date column into a string attribute: stays ISO text (Intercom refuses a number there).
            renewal_day: '2026-02-01',
            // A date column into a date attribute named by its full name: midnight UTC, in seconds.
            'custom_attributes.converted_at': '2026-01-15',
          }),
        ],
        'external_id',
        { trial_ends_at: 'timestamp', renewal_day: 'date', 'custom_attributes.converted_at': 'date' },
      ),
    );
    expect(outcomes).toEqual([{ key: '8', status: 'ok', action: 'created', destinationId: expect.any(String) }]);
    expect(f.requests.find((r) => r.path === '/contacts')?.body).toMatchObject({
      custom_attributes: {
        trial_ends_at: Date.parse('2026-03-04T05:06:07Z') / 1000,
        renewal_day: '2026-02-01',
        converted_at: Date.parse('2026-01-15T00:00:00Z') / 1000,
      },
    });
    expect(f.stored('contacts').get('8')).toMatchObject({ renewal_day: '2026-02-01' });
  });

  it('reports refused contacts with Intercom’s reason while the rest of the batch lands', async () => {
    const f = await start();
    const connection = await connect();
    const outcomes = await connection.write(
      batch([
        record('1', { email: 'ok@example.com', plan: 'pro' }),
        record('2', { email: 'not-an-email' }),
        record('3', { email: 'c@example.com', shoe_size: 44 }),
        record('4', { email: 'd@example.com', seats: 'many' }),
        record('5', { email: '' }, 'upsert', ''),
      ]),
    );
    expect(outcomes[0]).toMatchObject({ key: '1', status: 'ok', action: 'created' });
    expect(outcomes[1]).toMatchObject({
      key: '2',
      status: 'rejected',
      reason: expect.stringMatching(/Invalid email address/),
    });
    expect(outcomes[2]).toMatchObject({
      status: 'rejected',
      reason: expect.stringMatching(/shoe_size' does not exist/),
    });
    expect(outcomes[3]).toMatchObject({
      status: 'rejected',
      reason: expect.stringMatching(/seats' must be of type integer/),
    });
    expect(outcomes[4]).toMatchObject({ status: 'rejected', field: 'external_id' });
    expect([...f.stored('contacts').keys()]).toEqual(['1']);
  });

  it('falls back to an update when a create answers 409 for a contact search did not show yet', async () => {
    const f = await start({ searchIndexDelayMs: 60_000 });
    const connection = await connect();
    await connection.write(batch([record('9', { name: 'First' })]));
    const outcomes = await connection.write(batch([record('9', { name: 'Second' })]));
    const id = [...f.contacts.values()][0]!.id;
    expect(outcomes).toEqual([{ key: '9', status: 'ok', action: 'updated', destinationId: id }]);
    expect(f.requests.filter((r) => r.path === '/contacts').map((r) => r.status)).toEqual([200, 409]);
    expect(f.contacts.size).toBe(1);
    expect(f.stored('contacts').get('9')?.name).toBe('Second');
  });

  it('unarchives a contact mirror mode archived when its row comes back, and updates it', async () => {
    const f = await start();
    const connection = await connect();
    // The mirror sync creates the contact, then archives it when the row leaves the model.
    await connection.write(batch([record('30', { email: 'back@example.com', name: 'Before' })]));
    const [archived] = await connection.write(batch([record('30', {}, 'delete')]));
    const contact = [...f.contacts.values()][0]!;
    expect(archived).toEqual({ key: '30', status: 'ok', action: 'deleted', destinationId: contact.id });
    expect(contact.archived).toBe(true);
    // The row comes back into the model: search does not show the archived contact, the create
    // answers 409 naming it, so the contact is unarchived and updated — never dead-lettered.
    const outcomes = await connection.write(batch([record('30', { email: 'back@example.com', name: 'After' })]));
    expect(outcomes).toEqual([{ key: '30', status: 'ok', action: 'updated', destinationId: contact.id }]);
    const after = f.requests.slice(f.requests.findIndex((r) => r.path.endsWith('/archive')) + 1);
    expect(after.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'POST /contacts/search 200',
      'POST /contacts 409',
      `POST /contacts/${contact.id}/unarchive 200`,
      `PUT /contacts/${contact.id} 200`,
    ]);
    expect(f.contacts.size).toBe(1);
    expect(f.stored('contacts').get('30')).toMatchObject({ archived: false, name: 'After' });
  });

  it('rejects, in insert mode, a record whose contact is archived', async () => {
    const f = await start();
    const gone = f.seed({ external_id: '31', archived: true });
    const connection = await connect();
    const [outcome] = await connection.write(batch([record('31', { name: 'x' }, 'insert')]));
    expect(outcome).toMatchObject({
      status: 'rejected',
      reason: expect.stringMatching(new RegExp(`archived contact ${gone.id}.*insert mode never updates`)),
    });
    expect(gone.archived).toBe(true);
  });

  for (const how of ['timeout', 'drop', 500] as const) {
    it(`reconciles a create whose answer was lost (${how}): an update of the contact it made, never a second one`, async () => {
      // The contact stays out of search for a minute, so the lookup after the lost answer misses it.
      const f = await start({ searchIndexDelayMs: 60_000 });
      const connection = await connect({ timeout_ms: 1000 });
      f.failAfterCommit(1, how);
      const outcomes = await connection.write(batch([record('40', { email: 'lost@example.com', name: 'Lost' })]));
      const contact = [...f.contacts.values()][0]!;
      expect(outcomes).toEqual([{ key: '40', status: 'ok', action: 'created', destinationId: contact.id }]);
      // The create, the lookup by external_id, the create again (409: our own first attempt), an update.
      expect(f.requests.map((r) => `${r.method} ${r.path}`).filter((r) => !r.startsWith('GET'))).toEqual([
        'POST /contacts/search',
        'POST /contacts',
        'POST /contacts/search',
        'POST /contacts',
        `PUT /contacts/${contact.id}`,
      ]);
      expect(f.requests.filter((r) => r.path === '/contacts').at(-1)?.status).toBe(409);
      expect(f.contacts.size).toBe(1);
      expect(f.stored('contacts').get('40')).toMatchObject({ email: 'lost@example.com', name: 'Lost' });
    });
  }

  it('reconciles a lost create answer by the search when the contact is already indexed', async () => {
    const f = await start();
    const connection = await connect({ timeout_ms: 1000 });
    f.failAfterCommit(1, 'drop');
    const outcomes = await connection.write(batch([record('41', { email: 'found@example.com', name: 'Found' })]));
    const contact = [...f.contacts.values()][0]!;
    expect(outcomes).toEqual([{ key: '41', status: 'ok', action: 'created', destinationId: contact.id }]);
    expect(f.requests.filter((r) => r.method === 'POST' && r.path === '/contacts')).toHaveLength(1);
    expect(f.requests.at(-1)).toMatchObject({ method: 'PUT', path: `/contacts/${contact.id}`, status: 200 });
    expect(f.contacts.size).toBe(1);
  });

  it('does not send a lost lead create again when only its (non-unique) email could catch a duplicate', async () => {
    const f = await start({ searchIndexDelayMs: 60_000 });
    const connection = await connect({ role: 'lead', timeout_ms: 1000 });
    f.failAfterCommit(1, 500);
    const [outcome] = await connection.write(
      batch([record('42', { name: 'Lead' }, 'upsert', 'lead@example.com')], 'email'),
    );
    expect(outcome).toMatchObject({
      key: '42',
      status: 'retry',
      reason: expect.stringMatching(/UnconfirmedWrite|not sent again/),
    });
    expect(f.requests.filter((r) => r.method === 'POST' && r.path === '/contacts')).toHaveLength(1);
    expect(f.contacts.size).toBe(1);
  });

  it('honours update and insert modes', async () => {
    const f = await start();
    f.seed({ external_id: '1', email: 'one@example.com' });
    const connection = await connect();
    const outcomes = await connection.write(
      batch([
        record('1', { name: 'Updated' }, 'update'),
        record('2', { name: 'Missing' }, 'update'),
        record('1b', { name: 'Taken' }, 'insert', '1'),
        record('3', { email: 'three@example.com' }, 'insert'),
      ]),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'rejected', 'rejected', 'ok']);
    expect(outcomes[1]).toMatchObject({ reason: expect.stringMatching(/update mode never creates/) });
    expect(outcomes[2]).toMatchObject({ reason: expect.stringMatching(/insert mode never updates/) });
    expect(f.contacts.size).toBe(2);
    expect(f.stored('contacts').get('1')?.name).toBe('Updated');
  });

  it('archives contacts that left the model in mirror mode', async () => {
    const f = await start();
    const gone = f.seed({ external_id: '20', email: 'gone@example.com' });
    const connection = await connect();
    const outcomes = await connection.write(batch([record('20', {}, 'delete'), record('21', {}, 'delete')]));
    expect(outcomes).toEqual([
      { key: '20', status: 'ok', action: 'deleted', destinationId: gone.id },
      { key: '21', status: 'ok', action: 'deleted' },
    ]);
    expect(f.requests.find((r) => r.path.endsWith('/archive'))?.path).toBe(`/contacts/${gone.id}/archive`);
    expect(gone.archived).toBe(true);
  });

  it('refuses an object or a match key Intercom does not have', async () => {
    await start();
    const connection = await connect();
    expect(await caught(connection.write({ ...batch([record('1', {})]), object: 'companies' }))).toBeInstanceOf(
      ConnectorConfigError,
    );
    expect(await caught(connection.write(batch([record('1', {})], 'customer_id')))).toBeInstanceOf(
      ConnectorConfigError,
    );
  });
});

describe('intercom destination: request counts, batch size and concurrency', () => {
  it('finds a batch with one search per 15 records, and keeps the calls in flight under request_concurrency', async () => {
    const f = await start({ latencyMs: 20 });
    const connection = await connect({ request_concurrency: 3 });
    const records = Array.from({ length: 40 }, (_, i) => record(String(i + 1), { email: `c${i + 1}@example.com` }));
    const outcomes = await connection.write(batch(records));
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    const sizes = searches(f).map((r) => (r.body as { query: { value: string[] } }).query.value.length);
    expect(sizes).toEqual([15, 15, 10]);
    expect(writes(f)).toHaveLength(40);
    expect(f.maxInFlight).toBeLessThanOrEqual(3);
    expect(f.maxInFlight).toBeGreaterThan(1);
  });

  it('follows search pages', async () => {
    const f = await start({ searchPageSize: 2 });
    for (let i = 1; i <= 5; i++) f.seed({ external_id: String(i), email: `p${i}@example.com` });
    const connection = await connect();
    const outcomes = await connection.write(batch([1, 2, 3, 4, 5].map((i) => record(String(i), { name: `N${i}` }))));
    expect(outcomes.map((o) => (o.status === 'ok' ? o.action : o.status))).toEqual(Array(5).fill('updated'));
    expect(searches(f)).toHaveLength(3);
    expect(f.requests.filter((r) => r.path === '/contacts')).toHaveLength(0);
  });

  it('rejects a match shared by several contacts instead of guessing', async () => {
    const f = await start();
    f.seed({ email: 'twin@example.com', role: 'lead' });
    f.seed({ email: 'twin@example.com', role: 'lead' });
    const connection = await connect();
    const [outcome] = await connection.write(
      batch([record('1', { name: 'x' }, 'upsert', 'twin@example.com')], 'email'),
    );
    expect(outcome).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/several Intercom contacts/) });
  });
});

describe('intercom destination: rate limits', () => {
  it('turns a 429 into RateLimitedError with the wait of X-RateLimit-Reset', async () => {
    const f = await start();
    const connection = await connect();
    f.throttleNext(1);
    const before = Date.now();
    const error = await caught(connection.write(batch([record('1', { email: 'a@example.com' })])));
    expect(error).toBeInstanceOf(RateLimitedError);
    const throttled = f.requests.find((r) => r.status === 429)!;
    const reset = (Math.floor(throttled.at / 10_000) + 1) * 10_000;
    const wait = (error as RateLimitedError).retryAfterMs!;
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(reset - before + 50);
    expect(wait).toBeGreaterThanOrEqual(reset - Date.now() - 50);
  });

  it('enforces the app limit per 10-second window, and keeps what went through before a late 429', async () => {
    const f = await start({ callsPerMinute: 30 }); // 5 calls per window
    const connection = await connect({ request_concurrency: 1 });
    await awayFromWindowEdge();
    const outcomes = await connection.write(
      batch(Array.from({ length: 8 }, (_, i) => record(String(i + 1), { email: `r${i + 1}@example.com` }))),
    );
    // Field discovery, one search and three creates fit the window: those three stand; the rest is
    // given back throttled (no retry budget spent), with the wait of X-RateLimit-Reset.
    expect(outcomes.slice(0, 3)).toEqual(
      ['1', '2', '3'].map((key) => ({ key, status: 'ok', action: 'created', destinationId: expect.any(String) })),
    );
    for (const outcome of outcomes.slice(3)) {
      expect(outcome).toMatchObject({ status: 'retry', throttled: 'rate-limit', afterMs: expect.any(Number) });
      expect((outcome as { afterMs: number }).afterMs).toBeGreaterThan(0);
    }
    expect(f.contacts.size).toBe(3);
    const limited = f.requests.find((r) => r.status === 429)!;
    expect(limited.path).toBe('/contacts');
    const error = await caught(connection.write(batch([record('9', { email: 'x@example.com' })])));
    expect(error).toBeInstanceOf(RateLimitedError);
  });
});

describe('intercom destination: pacing', () => {
  it('takes a slot of the lane’s pace for every request: discovery, searches, creates, updates, unarchives', async () => {
    const f = await start({ searchIndexDelayMs: 60_000 });
    f.seed({ external_id: '2', email: 'two@example.com' });
    f.seed({ external_id: '3', email: 'three@example.com', archived: true });
    let taken = 0;
    const pace: RequestPace = {
      take: async () => {
        taken++;
      },
      throttled: async () => {},
    };
    const connection = await connect({}, pace);
    const outcomes = await connection.write(
      batch([record('1', { name: 'New' }), record('2', { name: 'Found' }), record('3', { name: 'Back' })]),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok', 'ok']);
    const paths = new Set(f.requests.map((r) => r.path.replace(/[0-9a-f]{24}/, '{id}')));
    expect(paths).toEqual(
      new Set(['/data_attributes', '/contacts/search', '/contacts', '/contacts/{id}', '/contacts/{id}/unarchive']),
    );
    expect(f.requestTimes()).toHaveLength(f.requests.length);
    expect(taken).toBe(f.requestTimes().length);
  });

  it('gives the rest back as paced when the lane’s pace runs out part way through a batch', async () => {
    const f = await start();
    let taken = 0;
    const pace: RequestPace = {
      take: async () => {
        // Discovery, the search and two creates get their slots; then the lane is booked ahead.
        if (++taken > 4) throw new RateLimitedError('lane crm is booked 3000 ms ahead', 3000, { paced: true });
      },
      throttled: async () => {},
    };
    const connection = await connect({ request_concurrency: 1 }, pace);
    const outcomes = await connection.write(
      batch(['1', '2', '3', '4'].map((key) => record(key, { email: `p${key}@example.com` }))),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok', 'retry', 'retry']);
    expect(outcomes[2]).toMatchObject({ throttled: 'pace', afterMs: 3000 });
    expect(f.contacts.size).toBe(2);
  });
});

describe('intercom fake: archived contacts', () => {
  it('hides archived contacts from search and list, answers 409 on a create of their identifiers, and unarchives', async () => {
    const f = await start();
    const archived = f.seed({ external_id: '50', email: 'arch@example.com', archived: true });
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${f.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const search = () =>
      call('POST', '/contacts/search', { query: { field: 'external_id', operator: '=', value: '50' } });
    expect((await search()).body.data).toEqual([]);
    expect((await call('GET', '/contacts')).body.data).toEqual([]);
    for (const body of [{ external_id: '50' }, { email: 'ARCH@example.com' }]) {
      const created = await call('POST', '/contacts', { role: 'user', ...body });
      expect(created.status).toBe(409);
      expect(created.body.errors).toEqual([
        {
          code: 'conflict',
          message: `An archived contact matching those details already exists with id=${archived.id}`,
        },
      ]);
    }
    expect((await call('PUT', `/contacts/${archived.id}`, { name: 'x' })).status).toBe(404);
    expect(await call('POST', `/contacts/${archived.id}/unarchive`)).toEqual({
      status: 200,
      body: { id: archived.id, external_id: '50', type: 'contact', archived: false },
    });
    expect((await search()).body.data).toMatchObject([{ id: archived.id }]);
    expect((await call('GET', '/contacts')).body.data).toMatchObject([{ id: archived.id }]);
    expect((await call('POST', `/contacts/${archived.id}/archive`)).body).toMatchObject({ archived: true });
    expect(f.contacts.size).toBe(1);
    expect(f.requestTimes()).toHaveLength(f.requests.length);
  });
});

describe('intercom destination: field discovery', () => {
  it('lists writable standard attributes and custom ones with their types', async () => {
    const f = await start();
    const connection = await connect();
    const fields = await connection.fields('contacts');
    expect(f.requests.at(-1)?.query.get('model')).toBe('contact');
    const byName = new Map(fields.map((x) => [x.name, x]));
    expect(byName.get('external_id')).toMatchObject({ kind: 'known', matchable: true, type: 'string' });
    expect(byName.get('email')).toMatchObject({ kind: 'known', matchable: true });
    expect(byName.get('name')).toMatchObject({ kind: 'known', matchable: false });
    expect(byName.get('signed_up_at')?.type).toBe('timestamp');
    expect(byName.get('unsubscribed_from_emails')?.type).toBe('boolean');
    expect(byName.get('plan')).toMatchObject({ kind: 'custom', type: 'string', matchable: false });
    expect(byName.get('lifetime_value')?.type).toBe('number');
    expect(byName.get('seats')?.type).toBe('integer');
    // Intercom's date attributes hold instants in Unix seconds.
    expect(byName.get('trial_ends_at')?.type).toBe('timestamp');
    expect(byName.get('custom_attributes.trial_ends_at')).toMatchObject({ kind: 'custom', type: 'timestamp' });
    // Not writable through the API, or another model's.
    expect(byName.has('created_at')).toBe(false);
    expect(byName.has('location_data.city_name')).toBe(false);
    expect(fields.filter((x) => x.name === 'plan')).toHaveLength(1);
  });

  it('refuses objects other than contacts', async () => {
    await start();
    const connection = await connect();
    expect(await caught(connection.fields('tickets'))).toBeInstanceOf(ConnectorConfigError);
  });
});
