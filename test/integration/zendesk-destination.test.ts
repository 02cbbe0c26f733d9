import { afterEach, describe, expect, it } from 'vitest';
import { zendeskRefusal } from '#connectors/destinations/zendesk/client';
import { zendeskDestination } from '#connectors/destinations/zendesk/index';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import { startZendeskFake, type ZendeskFake, type ZendeskFakeOptions } from '#test/fakes/zendesk/server';

const EMAIL = 'ops@example.com';
const TOKEN = 'zd-token-3f9a1c7e5b2d';
const OAUTH = 'zd-oauth-8e4b2a6c0d1f';

let fake: ZendeskFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: ZendeskFakeOptions = {}): Promise<ZendeskFake> {
  fake = await startZendeskFake({ agentEmail: EMAIL, apiToken: TOKEN, oauthToken: OAUTH, ...options });
  return fake;
}

async function connect(opts: Record<string, unknown> = {}, pace?: RequestPace): Promise<DestinationConnection> {
  const options = zendeskDestination.optionsSchema.parse({
    base_url: fake!.url,
    email: EMAIL,
    api_token: TOKEN,
    ...opts,
  });
  const connection = await zendeskDestination.connect(options, { projectDir: process.cwd(), ...(pace && { pace }) });
  connections.push(connection);
  return connection;
}

function batch(records: OutboundRecord[], matchField = 'external_id'): WriteBatch {
  return { object: 'users', matchField, fieldTypes: {}, records };
}

const record = (
  key: string,
  fields: OutboundRecord['fields'],
  op: OutboundRecord['op'] = 'upsert',
  match: OutboundRecord['match'] = key,
): OutboundRecord => ({ key, op, match, fields });

const person = (i: number, extra: OutboundRecord['fields'] = {}): OutboundRecord =>
  record(String(i), { name: `Ada ${i}`, email: `ada${i}@example.com`, ...extra });

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const bulkRequests = (f: ZendeskFake) => f.requests.filter((r) => r.path.startsWith('/api/v2/users/') && r.users);

describe('zendesk destination: connection and auth', () => {
  it('checks an API token used as {email}/token', async () => {
    await start();
    await expect((await connect()).check()).resolves.toBeUndefined();
  });

  it('checks an OAuth token sent as a bearer token', async () => {
    await start();
    const connection = await connect({ api_token: undefined, email: undefined, oauth_token: OAUTH });
    await expect(connection.check()).resolves.toBeUndefined();
  });

  it('ends a wrong or revoked token in an AuthError that does not quote the token', async () => {
    await start();
    const wrong = await connect({ api_token: 'zd-token-wrong-000000' });
    const error = await caught(wrong.check());
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/401/);
    expect(error.message).not.toContain('zd-token-wrong-000000');

    const connection = await connect();
    fake!.revoke();
    const revoked = await caught(connection.write(batch([person(1)])));
    expect(revoked).toBeInstanceOf(AuthError);
    expect(revoked.message).not.toContain(TOKEN);
    expect(revoked.message).not.toContain(Buffer.from(`${EMAIL}/token:${TOKEN}`).toString('base64'));
  });

  it('refuses an end-user token in check()', async () => {
    await start({ agentRole: 'end-user' });
    expect(await caught((await connect()).check())).toBeInstanceOf(AuthError);
  });

  it('says what is missing from the options', async () => {
    await start();
    const parse = (o: Record<string, unknown>) => zendeskDestination.optionsSchema.parse(o);
    const noUrl = await caught(
      zendeskDestination.connect(parse({ email: EMAIL, api_token: TOKEN }), { projectDir: '.' }),
    );
    expect(noUrl).toBeInstanceOf(ConnectorConfigError);
    expect(noUrl.message).toMatch(/subdomain/);
    const noEmail = await caught(
      zendeskDestination.connect(parse({ subdomain: 'acme', api_token: TOKEN }), { projectDir: '.' }),
    );
    expect(noEmail.message).toMatch(/needs `email`/);
    const both = await caught(
      zendeskDestination.connect(parse({ subdomain: 'acme', email: EMAIL, api_token: TOKEN, oauth_token: OAUTH }), {
        projectDir: '.',
      }),
    );
    expect(both.message).toMatch(/keep one/);
    expect(() => parse({ subdomain: 'https://acme.zendesk.com' })).toThrow();
  });
});

describe('zendesk destination: upsert through create_or_update_many jobs', () => {
  it('creates, then updates by external_id, with custom fields under user_fields', async () => {
    const f = await start();
    const connection = await connect();
    const created = await connection.write(
      batch([person(1, { 'user_fields.plan': 'pro', 'user_fields.lifetime_value': 12.5 }), person(2)]),
    );
    expect(created).toEqual([
      expect.objectContaining({ key: '1', status: 'ok', action: 'created' }),
      expect.objectContaining({ key: '2', status: 'ok', action: 'created' }),
    ]);
    const sent = f.requests.find((r) => r.path === '/api/v2/users/create_or_update_many')!.body as {
      users: Record<string, unknown>[];
    };
    expect(sent.users[0]).toEqual({
      external_id: '1',
      name: 'Ada 1',
      email: 'ada1@example.com',
      user_fields: { plan: 'pro', lifetime_value: 12.5 },
    });

    const updated = await connection.write(batch([record('1', { 'user_fields.plan': 'enterprise' })]));
    expect(updated).toEqual([expect.objectContaining({ key: '1', status: 'ok', action: 'updated' })]);
    const stored = f.stored('users').get('1')!;
    // An absent field stays as it was; the mapped one changed.
    expect(stored).toMatchObject({
      name: 'Ada 1',
      'user_fields.plan': 'enterprise',
      'user_fields.lifetime_value': 12.5,
    });
    expect(created[0]).toMatchObject({ destinationId: String(stored.id) });
  });

  it('clears a user field with null and an array property with []', async () => {
    const f = await start();
    const connection = await connect();
    await connection.write(batch([person(1, { tags: ['vip'], 'user_fields.plan': 'pro' })]));
    await connection.write(batch([record('1', { tags: null, 'user_fields.plan': null })]));
    const stored = f.stored('users').get('1')!;
    expect(stored.tags).toEqual([]);
    expect(stored['user_fields.plan']).toBeUndefined();
  });

  it('matches on email when the sync matches on email', async () => {
    const f = await start();
    f.seedUser({ name: 'Grace', email: 'grace@example.com' });
    const connection = await connect();
    const outcomes = await connection.write(
      batch([record('7', { 'user_fields.plan': 'gold' }, 'upsert', 'grace@example.com')], 'email'),
    );
    expect(outcomes).toEqual([expect.objectContaining({ status: 'ok', action: 'updated' })]);
    expect(f.users()).toHaveLength(1);
    expect(f.stored('users').get('grace@example.com')).toMatchObject({ 'user_fields.plan': 'gold' });
  });

  it('never sends more than 100 users per request', async () => {
    const f = await start();
    const connection = await connect();
    const records = Array.from({ length: 230 }, (_, i) => person(i + 1));
    const outcomes = await connection.write(batch(records));
    expect(outcomes.filter((o) => o.status === 'ok')).toHaveLength(230);
    expect(bulkRequests(f).map((r) => r.users)).toEqual([100, 100, 30]);
    expect(f.users()).toHaveLength(230);
  });

  it('reports a user the job refused, with Zendesk details, while the rest lands', async () => {
    const f = await start();
    const connection = await connect();
    const outcomes = await connection.write(
      batch([person(1), person(2, { email: 'not-an-email' }), record('3', { email: 'ada3@example.com' })]),
    );
    expect(outcomes[0]).toMatchObject({ key: '1', status: 'ok' });
    expect(outcomes[1]).toMatchObject({ key: '2', status: 'rejected' });
    expect((outcomes[1] as { reason: string }).reason).toMatch(/Email: not-an-email is not properly formatted/);
    // A new user needs a name.
    expect(outcomes[2]).toMatchObject({ key: '3', status: 'rejected' });
    expect((outcomes[2] as { reason: string }).reason).toMatch(/Name: is too short/);
    expect([...f.stored('users').keys()]).toEqual(['1']);
  });

  it('refuses a record whose match value is not text', async () => {
    await start();
    const outcomes = await (await connect()).write(batch([record('1', { name: 'X' }, 'upsert', { a: 1 })]));
    expect(outcomes).toEqual([expect.objectContaining({ key: '1', status: 'rejected' })]);
  });

  it('refuses unknown properties and unknown user fields before sending anything', async () => {
    const f = await start();
    const connection = await connect();
    const unknownProperty = await caught(connection.write(batch([record('1', { first_name: 'Ada' })])));
    expect(unknownProperty).toBeInstanceOf(ConnectorConfigError);
    expect(unknownProperty.message).toMatch(/"first_name" is not a Zendesk user property/);
    const bareCustom = await caught(connection.write(batch([record('1', { plan: 'pro' })])));
    expect(bareCustom.message).toMatch(/did you mean "user_fields.plan"/);
    const unknownField = await caught(connection.write(batch([record('1', { 'user_fields.tier': 'a' })])));
    expect(unknownField.message).toMatch(/no active user field with key "tier"/);
    expect(bulkRequests(f)).toHaveLength(0);
  });

  it('refuses an object other than users, and a match key Zendesk cannot find users by', async () => {
    await start();
    const connection = await connect();
    expect(await caught(connection.write({ ...batch([person(1)]), object: 'tickets' }))).toBeInstanceOf(
      ConnectorConfigError,
    );
    expect((await caught(connection.write(batch([person(1)], 'phone')))).message).toMatch(/external_id or email/);
  });
});

describe('zendesk destination: jobs, rate limits and errors', () => {
  it('turns a 429 into a RateLimitedError carrying Retry-After', async () => {
    const f = await start();
    const connection = await connect();
    f.throttleNext(1, 7);
    const error = await caught(connection.write(batch([person(1)])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(7000);
  });

  it('throttles on the account rate limit per minute', async () => {
    // One write is a queueing request and a job-status poll: the second write is over the limit.
    const f = await start({ requestsPerMinute: 2 });
    const connection = await connect();
    await connection.write(batch([person(1)]));
    const error = await caught(connection.write(batch([person(2)])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBeGreaterThan(50_000);
    expect(f.requests.at(-1)!.status).toBe(429);
  });

  it('treats the job limit (TooManyJobs) as a rate limit', async () => {
    const f = await start({ maxJobs: 1 });
    f.stallJobs();
    const connection = await connect({ job_timeout_ms: 1000 });
    const first = await connection.write(batch([person(1)]));
    expect(first).toEqual([expect.objectContaining({ status: 'retry' })]);
    const error = await caught(connection.write(batch([person(2)])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.message).toMatch(/429/);
  });

  it('hands the records of a job still running after job_timeout_ms back for a later retry', async () => {
    const f = await start();
    f.stallJobs();
    const connection = await connect({ job_timeout_ms: 1000 });
    const started = Date.now();
    const outcomes = await connection.write(batch([person(1), person(2)]));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(outcomes).toEqual([
      expect.objectContaining({ key: '1', status: 'retry', reason: expect.stringMatching(/still queued/) }),
      expect.objectContaining({ key: '2', status: 'retry' }),
    ]);
    expect((outcomes[0] as { afterMs: number }).afterMs).toBeGreaterThan(0);
    // The job lands later; the retry is an idempotent create_or_update.
    f.releaseJobs();
    expect(f.users()).toHaveLength(2);
    expect(await connection.write(batch([person(1), person(2)]))).toEqual([
      expect.objectContaining({ status: 'ok', action: 'updated' }),
      expect.objectContaining({ status: 'ok', action: 'updated' }),
    ]);
  });

  it('reports a 404 (wrong subdomain or base_url) as a configuration error', async () => {
    const f = await start();
    const connection = await connect({ base_url: `${f.url}/nope` });
    const error = await caught(connection.write(batch([person(1)])));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/404/);
  });
});

describe('zendesk destination: update, insert and delete', () => {
  it('updates existing users by id and refuses missing ones (update mode never creates)', async () => {
    const f = await start();
    const id = f.seedUser({ name: 'Alan', email: 'alan@example.com', external_id: 'A-1' });
    const connection = await connect();
    const outcomes = await connection.write(
      batch([
        record('1', { 'user_fields.plan': 'pro' }, 'update', 'a-1'),
        record('2', { name: 'Nobody' }, 'update', 'B-2'),
      ]),
    );
    expect(outcomes).toEqual([
      expect.objectContaining({ key: '1', status: 'ok', action: 'updated' }),
      expect.objectContaining({ key: '2', status: 'rejected', reason: expect.stringMatching(/never creates/) }),
    ]);
    const sent = f.requests.find((r) => r.path === '/api/v2/users/update_many')!.body as { users: unknown[] };
    expect(sent.users).toEqual([{ id, user_fields: { plan: 'pro' } }]);
    expect(f.users()).toHaveLength(1);
  });

  it('refuses update mode matched on email: update_many cannot address users by email', async () => {
    await start();
    const error = await caught(
      (await connect()).write(batch([record('1', { name: 'X' }, 'update', 'x@example.com')], 'email')),
    );
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/external_id/);
  });

  it('creates new users and refuses existing ones (insert mode never updates)', async () => {
    const f = await start();
    f.seedUser({ name: 'Alan', email: 'alan@example.com', external_id: '1' });
    const connection = await connect();
    const outcomes = await connection.write(
      batch([
        record('1', { name: 'Alan 2' }, 'insert'),
        record('2', { name: 'Edsger', email: 'alan@example.com' }, 'insert'),
        record('3', { name: 'Barbara' }, 'insert'),
      ]),
    );
    expect(outcomes).toEqual([
      expect.objectContaining({ key: '1', status: 'rejected', reason: expect.stringMatching(/already exists/) }),
      expect.objectContaining({ key: '2', status: 'rejected', reason: expect.stringMatching(/already being used/) }),
      expect.objectContaining({ key: '3', status: 'ok', action: 'created' }),
    ]);
    expect(f.stored('users').get('1')).toMatchObject({ name: 'Alan' });
    expect(f.requests.filter((r) => r.path === '/api/v2/users/create_many').map((r) => r.users)).toEqual([2]);
  });

  it('soft-deletes by id in mirror mode; a user already gone counts as deleted', async () => {
    const f = await start();
    const id = f.seedUser({ name: 'Ken', email: 'ken@example.com', external_id: '5' });
    const connection = await connect();
    const outcomes = await connection.write(batch([record('5', {}, 'delete'), record('6', {}, 'delete')]));
    expect(outcomes).toEqual([
      expect.objectContaining({ key: '5', status: 'ok', action: 'deleted' }),
      expect.objectContaining({ key: '6', status: 'ok', action: 'deleted' }),
    ]);
    expect(f.requests.find((r) => r.path === '/api/v2/users/destroy_many')!.query).toBe(`?ids=${id}`);
    expect(f.stored('users').has('5')).toBe(false);
    expect(f.deletedUsers().map((u) => u.id)).toEqual([id]);
  });
});

describe('zendesk destination: field discovery', () => {
  it('lists user properties and active user fields with their types, across pages', async () => {
    const f = await start({
      maxPageSize: 2,
      userFields: [
        { key: 'plan', type: 'dropdown' },
        { key: 'lifetime_value', type: 'decimal' },
        { key: 'vip', type: 'checkbox' },
        { key: 'renewal', type: 'date' },
        { key: 'seats', type: 'integer' },
        { key: 'old', type: 'text', active: false },
      ],
    });
    const fields = await (await connect()).fields('users');
    const byName = new Map(fields.map((x) => [x.name, x]));
    expect(byName.get('email')).toMatchObject({ type: 'string', kind: 'known', matchable: true });
    expect(byName.get('external_id')).toMatchObject({ matchable: true });
    expect(byName.get('name')).toMatchObject({ required: true });
    expect(byName.get('tags')).toMatchObject({ type: 'json' });
    expect(fields.filter((x) => x.kind === 'custom').map((x) => [x.name, x.type])).toEqual([
      ['user_fields.plan', 'string'],
      ['user_fields.lifetime_value', 'number'],
      ['user_fields.vip', 'boolean'],
      ['user_fields.renewal', 'date'],
      ['user_fields.seats', 'integer'],
    ]);
    const pages = f.requests.filter((r) => r.path === '/api/v2/user_fields');
    expect(pages).toHaveLength(3);
    expect(pages[1]!.query).toContain('page%5Bafter%5D=');
  });

  it('refuses discovery of an object other than users', async () => {
    await start();
    expect(await caught((await connect()).fields('tickets'))).toBeInstanceOf(ConnectorConfigError);
  });
});

describe('zendesk fake: enforces the documented request shapes', () => {
  const auth = { authorization: `Basic ${Buffer.from(`${EMAIL}/token:${TOKEN}`).toString('base64')}` };
  const post = (f: ZendeskFake, body: unknown) =>
    fetch(`${f.url}/api/v2/users/create_or_update_many.json`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('refuses more than 100 users, a missing users array and a numeric external_id with 400', async () => {
    const f = await start();
    const tooMany = await post(f, { users: Array.from({ length: 101 }, (_, i) => ({ name: `u${i}` })) });
    expect(tooMany.status).toBe(400);
    expect(await tooMany.json()).toMatchObject({ error: { title: 'Invalid attribute' } });
    expect((await post(f, { user: { name: 'x' } })).status).toBe(400);
    expect((await post(f, { users: [{ name: 'x', external_id: 5 }] })).status).toBe(400);
    expect(f.jobs.size).toBe(0);
  });

  it('answers 401 without credentials', async () => {
    const f = await start();
    const response = await fetch(`${f.url}/api/v2/users/me.json`);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "Couldn't authenticate you" });
  });
});

describe('zendesk destination: bulk imports setting (403)', () => {
  it('reports a 403 of create_or_update_many as the bulk-imports setting, not as credentials', async () => {
    const f = await start({ bulkImports: false });
    const connection = await connect();
    // Nothing documented tells whether bulk imports are on: check() passes (see the docs).
    await expect(connection.check()).resolves.toBeUndefined();
    const error = await caught(connection.write(batch([person(1)])));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/bulk user imports are not enabled/);
    expect(error.message).toMatch(/Zendesk Customer Support/);
    expect(f.users()).toHaveLength(0);
    // insert mode's create_many needs the same setting.
    const insert = await caught(connection.write(batch([record('2', { name: 'B' }, 'insert')])));
    expect(insert).toBeInstanceOf(ConnectorConfigError);
  });

  it('leaves a 403 of any other endpoint an authentication error', () => {
    const refusal = (where: string) =>
      zendeskRefusal({ status: 403, headers: new Headers(), body: {}, where, snippet: 'Forbidden' });
    expect(refusal('Zendesk POST api/v2/users/create_or_update_many')).toBeInstanceOf(ConnectorConfigError);
    expect(refusal('Zendesk POST api/v2/users/create_many')).toBeInstanceOf(ConnectorConfigError);
    expect(refusal('Zendesk PUT api/v2/users/update_many')).toBeUndefined();
    expect(refusal('Zendesk GET api/v2/users/show_many')).toBeUndefined();
  });
});

describe('zendesk destination: pacing every request', () => {
  /** A lane pace that counts its slots and the 429s reported to it. */
  const recordingPace = () => {
    const counts = { takes: 0, throttled: 0 };
    const pace: RequestPace = {
      async take() {
        counts.takes++;
      },
      async throttled() {
        counts.throttled++;
      },
    };
    return { pace, counts };
  };

  it('takes a slot for every request — lookups, job polls, field discovery — and a 429 on a poll slows the lane', async () => {
    const f = await start();
    f.seedUser({ name: 'Alan', email: 'alan@example.com', external_id: 'A-1' });
    const { pace, counts } = recordingPace();
    const connection = await connect({}, pace);
    await connection.fields('users');
    await connection.write(batch([record('1', { 'user_fields.plan': 'pro' }, 'update', 'A-1')]));
    f.throttlePolls(1, 0);
    const outcomes = await connection.write(batch([person(2)]));
    expect(outcomes).toEqual([expect.objectContaining({ status: 'ok', action: 'created' })]);
    expect(f.requests.some((r) => r.path === '/api/v2/users/show_many')).toBe(true);
    expect(f.requests.filter((r) => r.path.startsWith('/api/v2/job_statuses/') && r.status === 429)).toHaveLength(1);
    expect(counts.takes).toBe(f.requests.length);
    expect(counts.throttled).toBe(1);
  });

  it('hands back the users of a queued job, throttled, when polling is rate limited past job_timeout_ms', async () => {
    const f = await start();
    const { pace, counts } = recordingPace();
    const connection = await connect({ job_timeout_ms: 1000 }, pace);
    f.throttlePolls(10, 30);
    const outcomes = await connection.write(batch([person(1)]));
    expect(outcomes).toEqual([
      expect.objectContaining({ key: '1', status: 'retry', throttled: 'rate-limit', afterMs: 30_000 }),
    ]);
    expect(counts.throttled).toBe(1);
  });

  it('keeps the chunks already written when a later chunk is rate limited', async () => {
    const f = await start();
    const connection = await connect();
    // The first create_or_update_many goes through; the second is answered 429.
    f.throttleNext(1, 3, 1);
    const outcomes = await connection.write(batch(Array.from({ length: 150 }, (_, i) => person(i + 1))));
    expect(outcomes.slice(0, 100).every((o) => o.status === 'ok')).toBe(true);
    expect(outcomes.slice(100)).toHaveLength(50);
    for (const o of outcomes.slice(100)) {
      expect(o).toMatchObject({ status: 'retry', throttled: 'rate-limit', afterMs: 3000 });
    }
    expect(f.users()).toHaveLength(100);
  });
});

describe('zendesk destination: jobs and their results', () => {
  it('places create_or_update_many results, which carry no index, on the right users', async () => {
    const f = await start();
    const connection = await connect();
    f.seedUser({ name: 'Existing', email: 'ada2@example.com', external_id: '2' });
    const outcomes = await connection.write(
      batch([person(1), person(2), person(3, { email: 'not-an-email' }), person(4)]),
    );
    const results = [...f.jobs.values()].at(-1)!.results!;
    expect(results.every((r) => !('index' in r))).toBe(true);
    const stored = f.stored('users');
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: String(stored.get('1')!.id) },
      { key: '2', status: 'ok', action: 'updated', destinationId: String(stored.get('2')!.id) },
      expect.objectContaining({ key: '3', status: 'rejected', reason: expect.stringMatching(/not-an-email/) }),
      { key: '4', status: 'ok', action: 'created', destinationId: String(stored.get('4')!.id) },
    ]);
  });

  it('ends a killed job at once: the users it got through are ok, the rest are retried', async () => {
    const f = await start();
    const connection = await connect({ job_timeout_ms: 10_000 });
    f.killNextJob(1);
    const started = Date.now();
    const outcomes = await connection.write(batch([person(1), person(2), person(3)]));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(outcomes).toEqual([
      expect.objectContaining({ key: '1', status: 'ok', action: 'created' }),
      expect.objectContaining({ key: '2', status: 'retry', reason: expect.stringMatching(/killed/) }),
      expect.objectContaining({ key: '3', status: 'retry', reason: expect.stringMatching(/killed/) }),
    ]);
    expect([...f.stored('users').keys()]).toEqual(['1']);
  });

  it('sends create_or_update_many again after a 5xx: an upsert by key is idempotent', async () => {
    const f = await start();
    const connection = await connect();
    f.failAfterApplying('/api/v2/users/create_or_update_many');
    const outcomes = await connection.write(batch([person(1)]));
    expect(outcomes).toEqual([expect.objectContaining({ key: '1', status: 'ok' })]);
    expect(f.requests.filter((r) => r.path === '/api/v2/users/create_or_update_many')).toHaveLength(2);
    expect(f.users()).toHaveLength(1);
  });

  it('never sends create_many twice: after a 5xx it looks the users up by external_id', async () => {
    const f = await start({ jobDelayMs: 0 });
    const connection = await connect();
    f.failAfterApplying('/api/v2/users/create_many');
    const outcomes = await connection.write(
      batch([record('1', { name: 'Barbara' }, 'insert'), record('2', { name: 'Edsger' }, 'insert')]),
    );
    const stored = f.stored('users');
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: String(stored.get('1')!.id) },
      { key: '2', status: 'ok', action: 'created', destinationId: String(stored.get('2')!.id) },
    ]);
    expect(f.requests.filter((r) => r.path === '/api/v2/users/create_many')).toHaveLength(1);
    // show_many before the create, and once more to reconcile.
    expect(f.requests.filter((r) => r.path === '/api/v2/users/show_many')).toHaveLength(2);
  });

  it('retries, without resending, a create_many matched on email whose answer was lost', async () => {
    const f = await start({ jobDelayMs: 0 });
    const connection = await connect();
    f.failAfterApplying('/api/v2/users/create_many');
    const outcomes = await connection.write(
      batch([record('1', { name: 'Barbara' }, 'insert', 'barbara@example.com')], 'email'),
    );
    expect(outcomes).toEqual([
      expect.objectContaining({ key: '1', status: 'retry', reason: expect.stringMatching(/not sent again/) }),
    ]);
    expect(f.requests.filter((r) => r.path === '/api/v2/users/create_many')).toHaveLength(1);
  });
});

describe('zendesk destination: nulls and value formats', () => {
  it('leaves a flag untouched on null: never unsuspends a user', async () => {
    const f = await start();
    f.seedUser({ name: 'Sus', email: 'sus@example.com', external_id: '9', suspended: true, restricted_agent: true });
    const connection = await connect();
    const outcomes = await connection.write(
      batch([record('9', { suspended: null, restricted_agent: null, notes: null, 'user_fields.plan': 'x' })]),
    );
    expect(outcomes).toEqual([expect.objectContaining({ status: 'ok', action: 'updated' })]);
    const sent = (
      f.requests.find((r) => r.path === '/api/v2/users/create_or_update_many')!.body as { users: unknown[] }
    ).users[0];
    expect(sent).toEqual({ external_id: '9', notes: null, user_fields: { plan: 'x' } });
    expect(f.stored('users').get('9')).toMatchObject({ suspended: true, restricted_agent: true });
  });

  it('sends a timestamp column into a date user field as its UTC date, and types lookup fields by target', async () => {
    const f = await start({
      userFields: [
        { key: 'renewal', type: 'date' },
        { key: 'owner', type: 'lookup', relationship_target_type: 'zen:user' },
        { key: 'asset', type: 'lookup', relationship_target_type: 'zen:custom_object:asset' },
      ],
    });
    const raw = await connect();
    const types = new Map((await raw.fields('users')).map((x) => [x.name, x.type]));
    expect(types.get('user_fields.renewal')).toBe('date');
    expect(types.get('user_fields.owner')).toBe('integer');
    expect(types.get('user_fields.asset')).toBe('string');

    const connection = withFormats(raw, zendeskDestination.formats);
    const outcomes = await connection.write({
      object: 'users',
      matchField: 'external_id',
      fieldTypes: { 'user_fields.renewal': 'timestamp', external_id: 'string' },
      records: [person(1, { 'user_fields.renewal': '2024-03-05T23:30:00.000Z' })],
    });
    expect(outcomes).toEqual([expect.objectContaining({ status: 'ok' })]);
    const sent = (
      f.requests.find((r) => r.path === '/api/v2/users/create_or_update_many')!.body as {
        users: { user_fields: Record<string, unknown> }[];
      }
    ).users[0]!;
    expect(sent.user_fields.renewal).toBe('2024-03-05');
    expect(f.stored('users').get('1')!['user_fields.renewal']).toBe('2024-03-05T00:00:00+00:00');
  });
});
