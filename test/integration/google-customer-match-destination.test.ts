import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { googleCustomerMatchDestination } from '#connectors/destinations/google-customer-match/index';
import { googleCustomerMatchLimits } from '#connectors/destinations/google-customer-match/limits';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import { type GoogleCustomerMatchFake, startGoogleCustomerMatchFake } from '#test/fakes/google-customer-match/server';
import { countingPace } from '../fakes/counting-pace.ts';

const CREDS = {
  customerId: '1234567890',
  developerToken: 'dev-token-AbCdEf123456',
  clientId: '1234-abc.apps.googleusercontent.com',
  clientSecret: 'GOCSPX-client-secret-xyz',
  refreshToken: '1//0refresh-token-for-tests',
};
const LIST = '5550001';
const OBJECT = `customer_match:${LIST}`;
const sha = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

let fake: GoogleCustomerMatchFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<Parameters<typeof startGoogleCustomerMatchFake>[0]> = {}) {
  fake = await startGoogleCustomerMatchFake({ ...CREDS, userLists: [LIST], ...options });
  return fake;
}

async function connect(f: GoogleCustomerMatchFake, extra: Record<string, unknown> = {}, pace?: RequestPace) {
  const options = googleCustomerMatchDestination.optionsSchema.parse({
    base_url: f.url,
    token_url: f.tokenUrl,
    customer_id: '123-456-7890',
    developer_token: CREDS.developerToken,
    client_id: CREDS.clientId,
    client_secret: CREDS.clientSecret,
    refresh_token: CREDS.refreshToken,
    poll_interval_ms: 0,
    job_wait_ms: 5_000,
    ...extra,
  });
  const connection = await googleCustomerMatchDestination.connect(options, { projectDir: process.cwd(), pace });
  connections.push(connection);
  return connection;
}

const enter = (key: string, email: string, fields: OutboundRecord['fields'] = {}): OutboundRecord => ({
  key,
  op: 'upsert',
  match: email,
  fields,
});
const leave = (key: string, email: string): OutboundRecord => ({ key, op: 'delete', match: email, fields: {} });
const batch = (records: OutboundRecord[], object = OBJECT): WriteBatch => ({
  object,
  matchField: 'email',
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

const apiCalls = (f: GoogleCustomerMatchFake) =>
  f.requests.filter((r) => r.path !== '/token').map((r) => r.path.replace(/^\/v\d+\/customers\/\d+\//, ''));

describe('google_customer_match: definition', () => {
  it('declares the documented limits with their pages, and one job at a time', () => {
    expect(googleCustomerMatchLimits.batchSize.value).toBeLessThanOrEqual(100_000);
    expect(googleCustomerMatchLimits.concurrency!.value).toBe(1);
    expect(googleCustomerMatchLimits.dailyQuota!.value).toBe(15_000);
    for (const limit of Object.values(googleCustomerMatchLimits)) {
      expect(limit.doc).toMatch(/^https:\/\/developers\.google\.com\/google-ads\//);
    }
  });

  it('takes the credentials from secrets, normalises customer ids and offers consent', () => {
    expect(googleCustomerMatchDestination.type).toBe('google_customer_match');
    expect(googleCustomerMatchDestination.secretKeys).toEqual([
      'developer_token',
      'client_id',
      'client_secret',
      'refresh_token',
    ]);
    expect(googleCustomerMatchDestination.modes).toEqual(['upsert', 'mirror']);
    const parsed = googleCustomerMatchDestination.optionsSchema.parse({
      customer_id: '123-456-7890',
      login_customer_id: '111-222-3333',
      developer_token: 'd',
      client_id: 'c',
      client_secret: 's',
      refresh_token: 'r',
      consent: { ad_user_data: 'GRANTED', ad_personalization: 'GRANTED' },
    });
    expect(parsed).toMatchObject({
      customer_id: '1234567890',
      login_customer_id: '1112223333',
      base_url: 'https://googleads.googleapis.com',
      token_url: 'https://oauth2.googleapis.com/token',
      identifiers_per_request: 100_000,
    });
    expect(() =>
      googleCustomerMatchDestination.optionsSchema.parse({ ...parsed, identifiers_per_request: 100_001 }),
    ).toThrow();
  });

  it('lists the identifier fields of a list and refuses another object name', async () => {
    const f = await start();
    const conn = await connect(f);
    const fields = await conn.fields(OBJECT);
    expect(fields.map((x) => x.name)).toEqual([
      'email',
      'phone',
      'first_name',
      'last_name',
      'country',
      'postal_code',
      'external_id',
    ]);
    expect(fields.filter((x) => x.matchable).map((x) => x.name)).toEqual(['email', 'phone', 'external_id']);
    expect(await caught(conn.fields('audience:1'))).toBeInstanceOf(ConnectorConfigError);
  });

  it('checks the credentials: a token from the refresh token, then one search', async () => {
    const f = await start();
    await (await connect(f)).check();
    expect(f.requests.map((r) => r.path)).toEqual(['/token', '/v21/customers/1234567890/googleAds:search']);
    expect(f.requests[1]!.headers['developer-token']).toBe(CREDS.developerToken);
  });
});

describe('google_customer_match: membership', () => {
  it('adds entered members through one job: create, addOperations, run, poll', async () => {
    const f = await start();
    const pace = countingPace();
    const conn = await connect(f, { consent: { ad_user_data: 'GRANTED', ad_personalization: 'GRANTED' } }, pace);
    const outcomes = await conn.write(
      batch([
        enter('1', 'Cloudy.SanFrancisco+shopping@gmail.com', { phone: '+1 (800) 555-0100' }),
        enter('2', 'alex.2@example.com', {
          first_name: 'Alex',
          last_name: 'Quinn',
          country: 'us',
          postal_code: '94045',
        }),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created' },
      { key: '2', status: 'ok', action: 'created' },
    ]);
    expect(apiCalls(f)).toEqual([
      'offlineUserDataJobs:create',
      'offlineUserDataJobs/4000000001:addOperations',
      'offlineUserDataJobs/4000000001:run',
      'googleAds:search',
    ]);
    const add = f.requests.find((r) => r.path.endsWith(':addOperations'))!;
    expect(add.body).toEqual({
      enablePartialFailure: true,
      operations: [
        {
          create: {
            userIdentifiers: [
              { hashedEmail: sha('cloudysanfrancisco@gmail.com') },
              { hashedPhoneNumber: sha('+18005550100') },
            ],
          },
        },
        {
          create: {
            userIdentifiers: [
              { hashedEmail: sha('alex.2@example.com') },
              {
                addressInfo: {
                  hashedFirstName: sha('alex'),
                  hashedLastName: sha('quinn'),
                  countryCode: 'US',
                  postalCode: '94045',
                },
              },
            ],
          },
        },
      ],
    });
    expect(f.jobs()).toEqual([
      {
        id: '4000000001',
        userList: LIST,
        status: 'SUCCESS',
        operations: 2,
        consent: { adUserData: 'GRANTED', adPersonalization: 'GRANTED' },
      },
    ]);
    expect(f.members(OBJECT)).toEqual(new Set([sha('cloudysanfrancisco@gmail.com'), sha('alex.2@example.com')]));
    expect(JSON.stringify(f.requests)).not.toMatch(/@|Alex|Quinn|555-0100/);
    expect(f.unhashedSeen()).toEqual([]);
    expect(pace.taken).toBe(f.requests.length);
  });

  it('removes members that left and re-adds them when they come back', async () => {
    const f = await start();
    const conn = await connect(f);
    await conn.write(batch([enter('1', 'ada@example.com'), enter('2', 'alan@example.com')]));
    const left = await conn.write(batch([leave('1', 'ada@example.com'), leave('3', 'nobody@example.com')]));
    expect(left).toEqual([
      { key: '1', status: 'ok', action: 'deleted' },
      { key: '3', status: 'ok', action: 'deleted' },
    ]);
    expect(f.members(OBJECT)).toEqual(new Set([sha('alan@example.com')]));
    await conn.write(batch([enter('1', 'ada@example.com')]));
    expect(f.members(OBJECT)).toEqual(new Set([sha('alan@example.com'), sha('ada@example.com')]));
    expect(f.jobs().map((j) => j.status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
  });

  it('sends a value already hashed as it is and an external id unhashed', async () => {
    const f = await start();
    const conn = await connect(f);
    const hashed = sha('grace@example.com');
    expect(await conn.write(batch([enter('1', hashed.toUpperCase(), { external_id: 'crm-42' })]))).toEqual([
      { key: '1', status: 'ok', action: 'created' },
    ]);
    const add = f.requests.find((r) => r.path.endsWith(':addOperations'))!;
    expect((add.body as { operations: unknown[] }).operations).toEqual([
      { create: { userIdentifiers: [{ hashedEmail: hashed }, { thirdPartyUserId: 'crm-42' }] } },
    ]);
  });

  it('rejects a record whose identifier cannot be normalised, naming the field and never the value', async () => {
    const f = await start();
    const conn = await connect(f);
    const outcomes = await conn.write(
      batch([
        enter('1', 'not-an-email.example.com'),
        enter('2', 'ok@example.com', { phone: 'call me maybe' }),
        enter('3', 'half@example.com', { first_name: 'Half' }),
        enter('4', 'fine@example.com'),
      ]),
    );
    expect(outcomes).toEqual([
      { key: '4', status: 'ok', action: 'created' },
      { key: '1', status: 'rejected', reason: 'email is not an email address', field: 'email' },
      { key: '2', status: 'rejected', reason: 'phone has no digits', field: 'phone' },
      {
        key: '3',
        status: 'rejected',
        reason:
          'an address needs first_name, last_name, country and postal_code: last_name, country, postal_code missing',
        field: 'last_name',
      },
    ]);
    expect(JSON.stringify(outcomes)).not.toMatch(/not-an-email|call me|Half/);
    expect(f.members(OBJECT)).toEqual(new Set([sha('fine@example.com')]));
    expect(f.unhashedSeen()).toEqual([]);
  });

  it("reports Google's partial failures per record, and the fake refuses raw identifiers", async () => {
    const f = await start();
    const conn = await connect(f);
    // A value that looks hashed but is not hex of the right length passes as text through no
    // path of the connector; the fake's own check is exercised directly here.
    const token = (
      (await await fetch(f.tokenUrl, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: CREDS.clientId,
          client_secret: CREDS.clientSecret,
          refresh_token: CREDS.refreshToken,
        }),
      }).then((r) => r.json())) as { access_token: string }
    ).access_token;
    const headers = {
      authorization: `Bearer ${token}`,
      'developer-token': CREDS.developerToken,
      'content-type': 'application/json',
    };
    const created = (await (
      await fetch(`${f.url}/v21/customers/${CREDS.customerId}/offlineUserDataJobs:create`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          job: {
            type: 'CUSTOMER_MATCH_USER_LIST',
            customerMatchUserListMetadata: { userList: `customers/${CREDS.customerId}/userLists/${LIST}` },
          },
        }),
      })
    ).json()) as { resourceName: string };
    const answer = await fetch(`${f.url}/v21/${created.resourceName}:addOperations`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        enablePartialFailure: true,
        operations: [
          { create: { userIdentifiers: [{ hashedEmail: 'ada@example.com' }] } },
          { create: { userIdentifiers: [{ hashedEmail: sha('x@example.com') }] } },
        ],
      }),
    });
    const body = (await answer.json()) as {
      partialFailureError: { details: { errors: { errorCode: unknown; location: unknown }[] }[] };
    };
    expect(body.partialFailureError.details[0]!.errors[0]).toMatchObject({
      errorCode: { offlineUserDataJobError: 'INVALID_SHA256_FORMAT' },
      location: { fieldPathElements: [{ fieldName: 'operations', index: 0 }, { fieldName: 'create' }] },
    });
    expect(f.unhashedSeen()).toEqual(['ada@example.com']);
    expect(conn).toBeDefined();
  });

  it('retries the records of a job that failed', async () => {
    const f = await start();
    const conn = await connect(f);
    f.failNextJob('PROCESSING_ERROR');
    const outcomes = await conn.write(batch([enter('1', 'ada@example.com')]));
    expect(outcomes).toEqual([
      { key: '1', status: 'retry', reason: expect.stringMatching(/job .* failed: PROCESSING_ERROR/) },
    ]);
    expect(f.members(OBJECT).size).toBe(0);
  });
});

describe('google_customer_match: rate limits and errors', () => {
  it('keeps the operations already added when Google throttles mid-batch: runs the job, the rest back throttled', async () => {
    const f = await start();
    const pace = countingPace();
    const conn = await connect(f, { identifiers_per_request: 2 }, pace);
    // create (1), addOperations (2) pass; the second addOperations is throttled.
    f.throttleAfter(2, 1);
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
      expect(outcome).toMatchObject({ status: 'retry', throttled: 'rate-limit', afterMs: 30_000 });
      expect((outcome as { reason: string }).reason).toMatch(/RESOURCE_EXHAUSTED/);
    }
    expect(outcomes.map((o) => o.key).sort()).toEqual(['1', '2', '3', '4', '5']);
    expect(f.members(OBJECT)).toEqual(new Set([sha('a@example.com'), sha('b@example.com')]));
    expect(pace.throttles).toBe(1);
    const again = await conn.write(
      batch([enter('3', 'c@example.com'), enter('4', 'd@example.com'), enter('5', 'e@example.com')]),
    );
    expect(again.every((o) => o.status === 'ok')).toBe(true);
    expect(f.members(OBJECT).size).toBe(5);
  });

  it('throws a RateLimitedError with the retryDelay when the job cannot even be created', async () => {
    const f = await start();
    const conn = await connect(f);
    f.throttleNext(1, 45);
    const error = await caught(conn.write(batch([enter('1', 'a@example.com')])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(45_000);
    expect(f.jobs()).toEqual([]);
  });

  it('ends a revoked refresh token in an AuthError that quotes no secret', async () => {
    const f = await start();
    const conn = await connect(f);
    f.revoke();
    const error = await caught(conn.write(batch([enter('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/invalid_grant/);
    for (const value of Object.values(CREDS).slice(1)) expect(error.message).not.toContain(value);
    expect(f.members(OBJECT).size).toBe(0);
  });

  it('sends login-customer-id for a manager account, and a missing one is an AuthError', async () => {
    const f = await start({ loginCustomerId: '1112223333' });
    const without = await connect(f);
    const error = await caught(without.write(batch([enter('1', 'ada@example.com')])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/USER_PERMISSION_DENIED/);
    const withManager = await connect(f, { login_customer_id: '111-222-3333' });
    expect(await withManager.write(batch([enter('1', 'ada@example.com')]))).toEqual([
      { key: '1', status: 'ok', action: 'created' },
    ]);
  });

  it('reports a user list that does not exist as a configuration error', async () => {
    const f = await start();
    const conn = await connect(f);
    const error = await caught(conn.write(batch([enter('1', 'ada@example.com')], 'customer_match:999')));
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/INVALID_USER_LIST_ID/);
  });
});
