import { afterEach, describe, expect, it } from 'vitest';
import { klaviyoDestination } from '#connectors/destinations/klaviyo/index';
import { MAX_JOB_BYTES, MAX_JOB_PROFILES } from '#connectors/destinations/klaviyo/limits';
import { KLAVIYO_REVISION } from '#connectors/destinations/klaviyo/manifest';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import { type KlaviyoFake, type KlaviyoFakeOptions, startKlaviyoFake } from '#test/fakes/klaviyo/server';
import { countingPace } from '../fakes/counting-pace.ts';

const API_KEY = 'pk_integration0123456789abcdef01234567';

let fake: KlaviyoFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<KlaviyoFakeOptions> = {}): Promise<KlaviyoFake> {
  fake = await startKlaviyoFake({ apiKey: API_KEY, jobMs: 100, ...options });
  return fake;
}

async function connect(
  baseUrl: string,
  opts: Record<string, unknown> = {},
  pace?: RequestPace,
): Promise<DestinationConnection> {
  const options = klaviyoDestination.optionsSchema.parse({ base_url: baseUrl, api_key: API_KEY, ...opts });
  const connection = await klaviyoDestination.connect(options, {
    projectDir: process.cwd(),
    pace,
    purpose: pace ? 'write' : 'discover',
  });
  connections.push(connection);
  return connection;
}

function batch(records: OutboundRecord[], matchField = 'email', object = 'profiles'): WriteBatch {
  return { object, matchField, fieldTypes: {}, records };
}

const record = (
  key: string,
  match: OutboundRecord['match'],
  fields: OutboundRecord['fields'] = {},
): OutboundRecord => ({
  key,
  op: 'upsert',
  match,
  fields,
});

const calls = (f: KlaviyoFake, method: string, pattern: RegExp) =>
  f.requests().filter((r) => r.method === method && pattern.test(r.path));

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('klaviyo destination: definition', () => {
  it('declares the documented limits, upsert only, and the profile object', () => {
    expect(klaviyoDestination.limits.batchSize.value).toBe(10_000);
    expect(klaviyoDestination.limits.maxRequestBytes?.value).toBe(5 * 1024 * 1024);
    // Under the bulk import endpoints' steady 150/m (2.5/s).
    expect(klaviyoDestination.limits.requestsPerSecond?.value).toBe(2);
    // mirror is list membership's; a profile is never deleted (see the rejection test).
    expect(klaviyoDestination.modes).toEqual(['upsert', 'mirror']);
    expect(klaviyoDestination.objects?.map((o) => o.name)).toEqual(['profiles', 'list:<listId>']);
    expect(klaviyoDestination.objects?.[0]?.onDelete).toBeUndefined();
    expect(klaviyoDestination.objects?.[0]?.matchKeys).toEqual(['email', 'external_id', 'phone_number']);
    expect(klaviyoDestination.secretKeys).toEqual(['api_key']);
    expect(KLAVIYO_REVISION).toMatch(/^20(2[5-9])-\d\d-15$/);
  });

  it('reports the standard profile attributes with exact types', async () => {
    const f = await start();
    const connection = await connect(f.url);
    const fields = await connection.fields('profiles');
    const byName = new Map(fields.map((x) => [x.name, x]));
    for (const name of ['email', 'phone_number', 'external_id', 'first_name', 'last_name', 'organization', 'title']) {
      expect(byName.get(name)?.type, name).toBe('string');
    }
    expect(byName.get('location.city')?.type).toBe('string');
    expect(byName.get('location.latitude')?.type).toBe('number');
    expect(fields.filter((x) => x.matchable).map((x) => x.name)).toEqual(['email', 'phone_number', 'external_id']);
    await expect(connection.fields('lists')).rejects.toThrow(ConnectorConfigError);
  });

  it('checks the key with a paced read, and refuses a wrong key', async () => {
    const f = await start();
    const pace = countingPace();
    const good = await connect(f.url, {}, pace);
    await good.check();
    expect(pace.taken).toBe(1);
    const bad = await klaviyoDestination.connect(
      klaviyoDestination.optionsSchema.parse({ base_url: f.url, api_key: 'pk_wrong' }),
      { projectDir: process.cwd() },
    );
    const error = await caught(bad.check());
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).not.toContain('pk_wrong');
  });
});

describe('klaviyo destination: bulk import jobs', () => {
  it('imports a batch in one job, polled until complete, every request paced', async () => {
    const f = await start();
    const pace = countingPace();
    const connection = await connect(f.url, {}, pace);
    const outcomes = await connection.write(
      batch([
        record('1', 'ada@example.com', { first_name: 'Ada', 'location.city': 'London', 'properties.plan': 'gold' }),
        record('2', 'bob@example.com', { first_name: 'Bob', 'properties.ltv': 12.5 }),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok' },
      { key: '2', status: 'ok' },
    ]);
    expect(f.stored('profiles').get('ada@example.com')).toMatchObject({
      first_name: 'Ada',
      'location.city': 'London',
      'properties.plan': 'gold',
    });
    expect(f.stored('profiles').get('bob@example.com')).toMatchObject({ 'properties.ltv': 12.5 });
    expect(f.jobs()).toHaveLength(1);
    expect(calls(f, 'GET', /^\/api\/profile-bulk-import-jobs\/[^/]+$/).length).toBeGreaterThan(0);
    // Nothing failed: the job's failed_count is 0, so its errors are not read.
    expect(calls(f, 'GET', /import-errors/)).toHaveLength(0);
    expect(pace.taken).toBe(f.requests().length);
  });

  it('matches on external_id and phone_number too', async () => {
    const f = await start({ keyBy: 'external_id' });
    const connection = await connect(f.url);
    await connection.write(batch([record('1', 'cust-1', { first_name: 'Ann' })], 'external_id'));
    await connection.write(batch([record('2', '+14155550100', { external_id: 'cust-2' })], 'phone_number'));
    expect(f.stored('profiles').get('cust-1')).toMatchObject({ first_name: 'Ann' });
    expect(f.stored('profiles').get('cust-2')).toMatchObject({ phone_number: '+14155550100' });
  });

  it('reports per-record refusals from the job’s import errors, across pages, while the rest lands', async () => {
    const f = await start();
    const connection = await connect(f.url);
    const records = Array.from({ length: 230 }, (_, i) =>
      record(String(i), i % 2 === 0 ? `bad-${i}` : `ok${i}@example.com`, { first_name: `N${i}` }),
    );
    const outcomes = await connection.write(batch(records));
    const rejected = outcomes.filter((o) => o.status === 'rejected');
    expect(rejected).toHaveLength(115);
    expect(rejected[0]).toMatchObject({ key: '0', reason: 'invalid: Invalid email address: bad-0', field: 'email' });
    expect(outcomes.filter((o) => o.status === 'ok')).toHaveLength(115);
    // 115 errors at 100 a page: two pages.
    expect(calls(f, 'GET', /import-errors/)).toHaveLength(2);
    expect(f.stored('profiles').get('ok1@example.com')).toMatchObject({ first_name: 'N1' });
  });

  it('splits a batch into jobs of at most 10,000 profiles and 5 MB', async () => {
    const f = await start();
    const connection = await connect(f.url, {}, countingPace());
    const many = Array.from({ length: MAX_JOB_PROFILES + 5 }, (_, i) => record(String(i), `p${i}@example.com`));
    const outcomes = await connection.write(batch(many));
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    expect(f.jobs().map((j) => j.profiles)).toEqual([MAX_JOB_PROFILES, 5]);

    const big = 'x'.repeat(400_000);
    const heavy = Array.from({ length: 30 }, (_, i) =>
      record(`h${i}`, `h${i}@example.com`, { 'properties.blob': big }),
    );
    const before = f.jobs().length;
    expect((await connection.write(batch(heavy))).every((o) => o.status === 'ok')).toBe(true);
    const sizes = f
      .jobs()
      .slice(before)
      .map((j) => j.profiles);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(30);
    for (const size of sizes) expect(size * 400_000).toBeLessThan(MAX_JOB_BYTES);
  });

  it('gives back the records of a job still running, and reads the same job on the retry', async () => {
    const f = await start({ jobMs: 1_500 });
    const connection = await connect(f.url, { job_wait_ms: 0 });
    const records = [record('1', 'slow@example.com', { first_name: 'Slow' })];
    const first = await connection.write(batch(records));
    expect(first[0]).toMatchObject({ status: 'retry', afterMs: 30_000 });
    expect(first[0]!.status === 'retry' && first[0]!.reason).toMatch(/still (queued|processing)/);
    await new Promise((r) => setTimeout(r, 1_600));
    const second = await connection.write(batch(records));
    expect(second).toEqual([{ key: '1', status: 'ok' }]);
    expect(f.jobs()).toHaveLength(1);
  });

  it('rejects a field Klaviyo profiles do not have, and an empty match value', async () => {
    const f = await start();
    const connection = await connect(f.url);
    const outcomes = await connection.write(
      batch([record('1', 'a@example.com', { favourite: 'x' }), record('2', null), record('3', 'c@example.com')]),
    );
    expect(outcomes).toContainEqual(expect.objectContaining({ key: '1', status: 'rejected', field: 'favourite' }));
    expect(outcomes).toContainEqual(expect.objectContaining({ key: '2', status: 'rejected', field: 'email' }));
    expect(outcomes).toContainEqual({ key: '3', status: 'ok' });
  });
});

describe('klaviyo destination: mirror on profiles', () => {
  it('rejects a delete: Klaviyo documents no bulk delete of profiles', async () => {
    const f = await start();
    const connection = await connect(f.url);
    const outcomes = await connection.write(batch([{ key: '1', op: 'delete', match: 'gone@example.com', fields: {} }]));
    expect(outcomes).toEqual([
      expect.objectContaining({ key: '1', status: 'rejected', reason: expect.stringMatching(/no bulk delete/) }),
    ]);
    expect(f.requests()).toHaveLength(0);
  });
});

describe('klaviyo destination: list membership', () => {
  it('adds found profiles, rejects unknown ones, and removes leavers — paced, chunked by 100', async () => {
    const f = await start();
    const ids = Array.from({ length: 150 }, (_, i) => f.seed({ email: `m${i}@example.com` }));
    const listId = f.createList('VIP');
    const pace = countingPace();
    const connection = await connect(f.url, {}, pace);
    const enter = Array.from({ length: 150 }, (_, i) => record(String(i), `M${i}@example.com`));
    const outcomes = await connection.write(
      batch([...enter, record('x', 'nobody@example.com')], 'email', `list:${listId}`),
    );
    expect(outcomes.filter((o) => o.status === 'ok')).toHaveLength(150);
    expect(outcomes.find((o) => o.key === 'x')).toMatchObject({
      status: 'rejected',
      reason: /no Klaviyo profile with email nobody@example.com/,
    });
    expect(f.members(`list:${listId}`).size).toBe(150);
    // The list read once, two lookups of ≤ 100, two adds.
    expect(calls(f, 'GET', /^\/api\/profiles$/)).toHaveLength(2);
    expect(calls(f, 'POST', /relationships\/profiles$/)).toHaveLength(2);
    expect(pace.taken).toBe(f.requests().length);

    const leave = await connection.write(
      batch(
        [
          { key: '0', op: 'delete', match: 'm0@example.com', fields: {} },
          { key: 'y', op: 'delete', match: 'nobody@example.com', fields: {} },
        ],
        'email',
        `list:${listId}`,
      ),
    );
    expect(leave).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: '0', status: 'ok', action: 'deleted', destinationId: ids[0] }),
        expect.objectContaining({ key: 'y', status: 'ok', action: 'deleted' }),
      ]),
    );
    expect(f.members(`list:${listId}`).has('m0@example.com')).toBe(false);
  });

  it('refuses a list that does not exist, before writing', async () => {
    const f = await start();
    const connection = await connect(f.url);
    await expect(connection.write(batch([record('1', 'a@example.com')], 'email', 'list:nope12'))).rejects.toThrow(
      ConnectorConfigError,
    );
    await expect(connection.fields('list:bad-id!')).rejects.toThrow(ConnectorConfigError);
  });
});

describe('klaviyo destination: clearing fields', () => {
  it('clears with Create or Update Profile: a null attribute, and unset for a custom property', async () => {
    const f = await start();
    const connection = await connect(f.url);
    await connection.write(
      batch([record('1', 'c@example.com', { first_name: 'Cy', title: 'CTO', 'properties.plan': 'gold' })]),
    );
    const outcomes = await connection.write(
      batch([record('1', 'c@example.com', { first_name: 'Cy', title: null, 'properties.plan': null })]),
    );
    expect(outcomes).toEqual([expect.objectContaining({ key: '1', status: 'ok', action: 'updated' })]);
    const stored = f.stored('profiles').get('c@example.com')!;
    expect(stored.title).toBeUndefined();
    expect(stored['properties.plan']).toBeUndefined();
    expect(stored.first_name).toBe('Cy');
    expect(calls(f, 'POST', /^\/api\/profile-import$/)).toHaveLength(1);
  });

  it('keeps the job’s outcomes when a later profile import is rate limited', async () => {
    const f = await start({ rateLimits: { profileImport: { burst: 1, steady: 700 } } });
    const pace = countingPace();
    const connection = await connect(f.url, {}, pace);
    const outcomes = await connection.write(
      batch([
        record('1', 'j@example.com', { first_name: 'J' }),
        record('2', 'k@example.com', { first_name: null }),
        record('3', 'l@example.com', { first_name: null }),
      ]),
    );
    expect(outcomes.find((o) => o.key === '1')).toEqual({ key: '1', status: 'ok' });
    expect(outcomes.find((o) => o.key === '2')).toMatchObject({ status: 'ok' });
    expect(outcomes.find((o) => o.key === '3')).toMatchObject({ status: 'retry', throttled: 'rate-limit' });
    expect(pace.throttles).toBe(1);
  });
});

describe('klaviyo destination: whole-batch failures', () => {
  it('throws a RateLimitedError with Retry-After when the job create is throttled', async () => {
    const f = await start();
    const connection = await connect(f.url);
    f.throttleNext(1);
    const error = await caught(connection.write(batch([record('1', 'r@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(1_000);
  });

  it('throws an AuthError for a revoked key, naming no secret', async () => {
    const f = await start();
    const connection = await connect(f.url);
    f.revoke();
    const error = await caught(connection.write(batch([record('1', 'r@example.com')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).not.toContain(API_KEY);
  });
});

describe('the klaviyo fake', () => {
  it('requires the revision header, and refuses more than 10,000 profiles a job', async () => {
    const f = await start();
    const headers = { authorization: `Klaviyo-API-Key ${API_KEY}`, 'content-type': 'application/vnd.api+json' };
    const noRevision = await fetch(`${f.url}/api/lists`, { headers });
    expect(noRevision.status).toBe(400);
    const profiles = Array.from({ length: 10_001 }, (_, i) => ({
      type: 'profile',
      attributes: { email: `${i}@x.io` },
    }));
    const tooMany = await fetch(`${f.url}/api/profile-bulk-import-jobs`, {
      method: 'POST',
      headers: { ...headers, revision: KLAVIYO_REVISION },
      body: JSON.stringify({ data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: profiles } } } }),
    });
    expect(tooMany.status).toBe(400);
  });

  it('answers the burst limit with 429 and Retry-After', async () => {
    const f = await start();
    const headers = { authorization: `Klaviyo-API-Key ${API_KEY}`, revision: KLAVIYO_REVISION };
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await fetch(`${f.url}/api/profile-bulk-import-jobs/none`, { headers });
      statuses.push(r.status);
      if (r.status === 429) expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect(statuses).toContain(429);
  });
});
