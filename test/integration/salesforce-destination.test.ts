import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parseBulkError } from '#connectors/destinations/salesforce/bulk';
import { CONCURRENT_LIMIT_WAIT_MS, DAILY_ALLOCATION_WAIT_MS } from '#connectors/destinations/salesforce/client';
import { parseCsv, toCsv } from '#connectors/destinations/salesforce/csv';
import { salesforceDestination } from '#connectors/destinations/salesforce/index';
import { UNCONFIRMED_RETRY_MS } from '#connectors/destinations/salesforce/write';
import type { DestinationConnection, OutboundRecord, RecordOutcome, WriteBatch } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError, UnconfirmedWriteError } from '#core/errors';
import { type SalesforceFake, type SalesforceFakeOptions, startSalesforceFake } from '#test/fakes/salesforce/server';

const CLIENT_ID = '3MVG9test.consumer.key';
const CLIENT_SECRET = 'F00DC0FFEE1234567890consumer';

let fake: SalesforceFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: SalesforceFakeOptions = {}): Promise<SalesforceFake> {
  fake = await startSalesforceFake({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, ...options });
  return fake;
}

async function connect(opts: Record<string, unknown> = {}, pace?: RequestPace): Promise<DestinationConnection> {
  const options = salesforceDestination.optionsSchema.parse({
    login_url: fake!.url,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    ...opts,
  });
  const connection = withFormats(
    await salesforceDestination.connect(options, { projectDir: process.cwd(), ...(pace ? { pace } : {}) }),
    salesforceDestination.formats,
  );
  connections.push(connection);
  return connection;
}

function batch(records: OutboundRecord[], object = 'Contact', matchField = 'External_Id__c'): WriteBatch {
  return { object, matchField, fieldTypes: {}, records };
}

const record = (
  key: string,
  fields: OutboundRecord['fields'],
  op: OutboundRecord['op'] = 'upsert',
  match: OutboundRecord['match'] = Number(key),
): OutboundRecord => ({ key, op, match, fields });

const contact = (i: number, extra: OutboundRecord['fields'] = {}) =>
  record(String(i), { LastName: `Hopper${i}`, Email: `grace.hopper${i}@example.com`, ...extra });

/** A lane pace that lets every request through and counts them. */
function countingPace() {
  const pace = {
    takes: 0,
    throttles: 0,
    async take() {
      pace.takes++;
    },
    async throttled() {
      pace.throttles++;
    },
  };
  return pace;
}

const byKey = (outcomes: RecordOutcome[]) => new Map(outcomes.map((o) => [o.key, o]));
const writesTo = (path: RegExp) =>
  fake!.requests.filter((r) => r.method !== 'GET' && path.test(r.path) && r.status === 200);

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('salesforce destination: authentication', () => {
  it('gets a session with the client credentials flow and uses it on the instance URL', async () => {
    await start();
    const connection = await connect();
    await connection.check();
    const [login, api] = fake!.requests;
    expect(login).toMatchObject({ method: 'POST', path: '/services/oauth2/token' });
    expect(String(login!.body)).toContain('grant_type=client_credentials');
    expect(api).toMatchObject({ method: 'GET', path: '/services/data/v62.0/', status: 200 });
  });

  it('signs a JWT (RS256) for the JWT bearer flow, and a wrong key is an AuthError', async () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = (k: typeof pair.privateKey) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
    await start({
      clientSecret: undefined,
      jwt: { publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(), username: 'sync@acme.com' },
    });
    const jwt = { client_secret: undefined, username: 'sync@acme.com' };
    // A JSON secret often carries the PEM with escaped line breaks.
    const escaped = pem(pair.privateKey).replace(/\n/g, '\\n');
    await (await connect({ ...jwt, private_key: escaped })).check();
    const assertion = new URLSearchParams(String(fake!.requests[0]!.body)).get('assertion')!;
    const claims = JSON.parse(Buffer.from(assertion.split('.')[1]!, 'base64url').toString());
    // `aud` is the login server: its origin when it is neither login. nor test.salesforce.com.
    expect(claims).toMatchObject({ iss: CLIENT_ID, sub: 'sync@acme.com', aud: fake!.url });
    expect(claims.exp - Date.now() / 1000).toBeLessThanOrEqual(180);

    const refused = await caught((await connect({ ...jwt, private_key: pem(other.privateKey) })).check());
    expect(refused).toBeInstanceOf(AuthError);
    expect(refused.message).toMatch(/invalid_grant: invalid assertion/);
  });

  it('refuses a wrong secret with an AuthError that never shows the secret', async () => {
    await start();
    const error = await caught((await connect({ client_secret: 'not-the-secret-at-all' })).check());
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/invalid_client: invalid client credentials/);
    expect(error.message).not.toContain('not-the-secret-at-all');
  });

  it('asks for a new token once on 401 INVALID_SESSION_ID, then carries on', async () => {
    await start();
    const connection = await connect();
    await connection.write(batch([contact(1)]));
    fake!.expireSessions();
    const outcomes = await connection.write(batch([contact(2)]));
    expect(outcomes).toEqual([expect.objectContaining({ key: '2', status: 'ok' })]);
    expect(fake!.tokensIssued).toBe(2);
  });

  it('ends in an AuthError when the app is revoked, after a single renewal attempt', async () => {
    await start();
    const connection = await connect();
    await connection.write(batch([contact(1)]));
    fake!.revoke();
    const error = await caught(connection.write(batch([contact(2)])));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/invalid_grant: authentication failure/);
    expect(fake!.requests.filter((r) => r.path === '/services/oauth2/token')).toHaveLength(2);
    fake!.restore();
    expect(await connection.write(batch([contact(2)]))).toEqual([expect.objectContaining({ status: 'ok' })]);
  });

  it('refuses options without a credential, and a private key without username', async () => {
    await start();
    await expect(connect({ client_secret: undefined })).rejects.toThrow(ConnectorConfigError);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await expect(connect({ client_secret: undefined, private_key: pem })).rejects.toThrow(/needs username/);
    await expect(connect({ client_secret: undefined, private_key: 'garbage', username: 'u' })).rejects.toThrow(
      /not a PEM private key/,
    );
  });
});

describe('salesforce destination: writes', () => {
  it('upserts through sObject Collections by external ID, with attributes, allOrNone false and text ids', async () => {
    await start();
    const connection = await connect();
    const outcomes = await connection.write(batch([contact(1, { Lifetime_Value__c: 12.5 }), contact(2)]));
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: expect.stringMatching(/^003\w{15}$/) },
      { key: '2', status: 'ok', action: 'created', destinationId: expect.stringMatching(/^003\w{15}$/) },
    ]);
    const [call] = writesTo(/composite\/sobjects\/Contact\/External_Id__c$/);
    expect(call!.method).toBe('PATCH');
    expect(call!.body).toEqual({
      allOrNone: false,
      records: [
        {
          attributes: { type: 'Contact' },
          LastName: 'Hopper1',
          Email: 'grace.hopper1@example.com',
          Lifetime_Value__c: 12.5,
          External_Id__c: '1',
        },
        {
          attributes: { type: 'Contact' },
          LastName: 'Hopper2',
          Email: 'grace.hopper2@example.com',
          External_Id__c: '2',
        },
      ],
    });
    const again = await connection.write(batch([record('1', { FirstName: 'Grace' })]));
    expect(again).toEqual([
      expect.objectContaining({
        action: 'updated',
        destinationId: outcomes[0]!.status === 'ok' && outcomes[0]!.destinationId,
      }),
    ]);
  });

  it('sends null to clear a field and leaves an absent field untouched', async () => {
    await start();
    const connection = await connect();
    await connection.write(batch([contact(1, { FirstName: 'Grace', Lifetime_Value__c: 99 })]));
    await connection.write(batch([record('1', { Lifetime_Value__c: null })]));
    expect(fake!.stored('Contact').get('1')).toMatchObject({ FirstName: 'Grace', Lifetime_Value__c: null });
    expect(writesTo(/External_Id__c$/).at(-1)!.body).toMatchObject({ records: [{ Lifetime_Value__c: null }] });
  });

  it('never sends more than 200 records in one collections call', async () => {
    await start();
    const connection = await connect();
    const outcomes = await connection.write(batch(Array.from({ length: 450 }, (_, i) => contact(i + 1))));
    expect(outcomes.filter((o) => o.status === 'ok')).toHaveLength(450);
    const sizes = writesTo(/External_Id__c$/).map((r) => (r.body as { records: unknown[] }).records.length);
    expect(sizes).toEqual([200, 200, 50]);
    expect(fake!.stored('Contact').size).toBe(450);
  });

  it('maps per-record errors to refused outcomes while the rest of the batch lands', async () => {
    await start();
    const connection = await connect();
    const outcomes = byKey(
      await connection.write(
        batch([
          contact(1),
          contact(2, { Email: 'not-an-email' }),
          contact(3, { LastName: null }),
          contact(4, { FirstName: 'x'.repeat(41) }),
          contact(5),
        ]),
      ),
    );
    expect(outcomes.get('1')).toMatchObject({ status: 'ok' });
    expect(outcomes.get('5')).toMatchObject({ status: 'ok' });
    expect(outcomes.get('2')).toEqual({
      key: '2',
      status: 'rejected',
      field: 'Email',
      reason: 'INVALID_EMAIL_ADDRESS: Email: invalid email address: not-an-email',
    });
    expect(outcomes.get('3')).toMatchObject({
      status: 'rejected',
      field: 'LastName',
      reason: /REQUIRED_FIELD_MISSING/,
    });
    expect(outcomes.get('4')).toMatchObject({ status: 'rejected', field: 'FirstName', reason: /STRING_TOO_LONG/ });
    expect([...fake!.stored('Contact').keys()].sort()).toEqual(['1', '5']);
  });

  it('refuses a value the field cannot take before sending, so one bad value cannot fail the call', async () => {
    await start();
    const connection = await connect();
    const outcomes = byKey(
      await connection.write(
        batch([
          contact(1, { Lifetime_Value__c: 'lots' }),
          contact(2, { Lifetime_Value__c: '12.50', HasOptedOutOfEmail: 'true' }),
        ]),
      ),
    );
    expect(outcomes.get('1')).toMatchObject({
      status: 'rejected',
      field: 'Lifetime_Value__c',
      reason: /expected a number/,
    });
    expect(outcomes.get('2')).toMatchObject({ status: 'ok' });
    expect(fake!.stored('Contact').get('2')).toMatchObject({ Lifetime_Value__c: 12.5, HasOptedOutOfEmail: true });
  });

  it('writes arrays to multi-select picklists as a;b;c', async () => {
    await start();
    const connection = await connect();
    await connection.write(batch([contact(1, { Interests__c: ['golf', 'chess'] })]));
    expect(fake!.stored('Contact').get('1')).toMatchObject({ Interests__c: 'golf;chess' });
  });

  it('updates by external ID without ever creating, and by record Id', async () => {
    await start();
    const id = fake!.seed('Contact', { LastName: 'Hopper', External_Id__c: '7' });
    const connection = await connect();
    const outcomes = byKey(
      await connection.write(
        batch([record('7', { FirstName: 'Grace' }, 'update'), record('8', { FirstName: 'Ada' }, 'update')]),
      ),
    );
    expect(outcomes.get('7')).toEqual({ key: '7', status: 'ok', action: 'updated', destinationId: id });
    expect(outcomes.get('8')).toMatchObject({
      status: 'rejected',
      reason: /no Contact with External_Id__c = 8 \(update mode never creates\)/,
    });
    expect(fake!.records('Contact').size).toBe(1);
    const query = fake!.requests.find((r) => r.path.endsWith('/query'))!;
    expect(query.query.q).toBe("SELECT Id, External_Id__c FROM Contact WHERE External_Id__c IN ('7', '8')");

    const byId = await connection.write(batch([record('7', { FirstName: 'Grace B.' }, 'upsert', id)], 'Contact', 'Id'));
    expect(byId).toEqual([{ key: '7', status: 'ok', action: 'updated', destinationId: id }]);
    expect(fake!.records('Contact').get(id)).toMatchObject({ FirstName: 'Grace B.' });
  });

  it('inserts only what does not exist yet', async () => {
    await start();
    fake!.seed('Contact', { LastName: 'Hopper', External_Id__c: '1' });
    const connection = await connect();
    const outcomes = byKey(
      await connection.write(batch([contact(1, {}), contact(2)].map((r) => ({ ...r, op: 'insert' as const })))),
    );
    expect(outcomes.get('1')).toMatchObject({
      status: 'rejected',
      reason: /already has External_Id__c = 1 \(insert mode never updates\)/,
    });
    expect(outcomes.get('2')).toMatchObject({ status: 'ok', action: 'created' });
    expect(writesTo(/composite\/sobjects$/)[0]).toMatchObject({ method: 'POST' });
  });

  it('deletes in mirror mode by looking the Ids up, and treats an already deleted record as done', async () => {
    await start({ queryPageSize: 2 });
    const ids = [1, 2, 3, 4, 5].map((i) => fake!.seed('Contact', { LastName: 'L', External_Id__c: String(i) }));
    const connection = await connect();
    const deletes = [1, 2, 3, 4, 5, 6].map((i) => record(String(i), {}, 'delete'));
    const outcomes = await connection.write(batch(deletes));
    expect(outcomes.every((o) => o.status === 'ok' && o.action === 'deleted')).toBe(true);
    expect(fake!.stored('Contact').size).toBe(0);
    // Five matches at two per page: the lookup followed nextRecordsUrl.
    expect(fake!.requests.filter((r) => r.path.includes('/query/'))).toHaveLength(2);
    const [call] = writesTo(/composite\/sobjects$/);
    expect(call).toMatchObject({ method: 'DELETE', query: { ids: ids.join(','), allOrNone: 'false' } });

    const again = await connection.write(batch([record('1', {}, 'delete', ids[0]!)], 'Contact', 'Id'));
    expect(again).toEqual([{ key: '1', status: 'ok', action: 'deleted', destinationId: ids[0] }]);
  });

  it('refuses a record when several Salesforce records share its match value', async () => {
    await start();
    fake!.seed('Contact', { LastName: 'A', Customer_Number__c: 42 });
    fake!.seed('Contact', { LastName: 'B', Customer_Number__c: 42 });
    const connection = await connect();
    const [outcome] = await connection.write(batch([record('42', {}, 'delete')], 'Contact', 'Customer_Number__c'));
    expect(outcome).toMatchObject({ status: 'rejected', reason: /2 Contact records have Customer_Number__c = 42/ });
    // A number field is compared with a bare literal.
    expect(fake!.requests.find((r) => r.path.endsWith('/query'))!.query.q).toMatch(/IN \(42\)$/);
  });

  it('stops with a ConnectorConfigError for an unknown object, field or match key', async () => {
    await start();
    const connection = await connect();
    await expect(connection.write(batch([contact(1)], 'Contactz'))).rejects.toThrow(/no object Contactz/);
    const unknown = await caught(connection.write(batch([contact(1, { Favourite_Color__c: 'red' })])));
    expect(unknown).toBeInstanceOf(ConnectorConfigError);
    expect(unknown.message).toMatch(/no field Favourite_Color__c/);
    await expect(connection.write(batch([contact(1)], 'Contact', 'LastName'))).rejects.toThrow(/cannot be a match key/);
    expect(fake!.writeTimes()).toHaveLength(0);
  });

  it('writes custom objects by their API name', async () => {
    await start();
    const connection = await connect();
    const outcomes = await connection.write(
      batch([record('s-1', { Plan__c: 'gold' }, 'upsert', 's-1')], 'Subscription__c', 'Subscription_Key__c'),
    );
    expect(outcomes).toEqual([expect.objectContaining({ status: 'ok', destinationId: expect.stringMatching(/^a01/) })]);
  });
});

describe('salesforce destination: limits', () => {
  it('reads 403 REQUEST_LIMIT_EXCEEDED as rate limiting, with the wait of the limit hit', async () => {
    await start();
    const connection = await connect();
    fake!.throttleNext(1);
    const error = await caught(connection.write(batch([contact(1)])));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(DAILY_ALLOCATION_WAIT_MS);
    expect(error.message).toMatch(/TotalRequests Limit exceeded/);
    expect(await connection.write(batch([contact(1)]))).toEqual([expect.objectContaining({ status: 'ok' })]);
  });

  it('waits only seconds when the concurrent long-running request limit is hit', async () => {
    await start();
    const realFetch = globalThis.fetch;
    globalThis.fetch = async (input, init) =>
      String(input).includes('/composite/')
        ? new Response(
            JSON.stringify([
              {
                message: 'ConcurrentRequests (Concurrent API Requests) Limit exceeded.',
                errorCode: 'REQUEST_LIMIT_EXCEEDED',
              },
            ]),
            { status: 403, headers: { 'content-type': 'application/json' } },
          )
        : realFetch(input, init);
    try {
      const connection = await connect();
      const error = await caught(connection.write(batch([contact(1)])));
      expect(error).toBeInstanceOf(RateLimitedError);
      expect((error as RateLimitedError).retryAfterMs).toBe(CONCURRENT_LIMIT_WAIT_MS);
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it('stops writing once the org has spent its daily allocation, and when max_api_usage is reached', async () => {
    await start({ dailyApiLimit: 6 });
    const connection = await connect({ max_api_usage: 0.5 });
    await connection.check(); // usage 1/6
    await connection.write(batch([contact(1)])); // describe + upsert: 3/6
    const ceiling = await caught(connection.write(batch([contact(2)])));
    expect(ceiling).toBeInstanceOf(RateLimitedError);
    expect(ceiling.message).toMatch(/used 3 of its 6 daily API requests, past max_api_usage 0.5/);
    expect(fake!.apiUsage()).toBe(3);

    const unbounded = await connect();
    await unbounded.check(); // 4/6
    await unbounded.write(batch([contact(2)])); // describe + upsert: 6/6
    const spent = await caught(unbounded.write(batch([contact(3)])));
    expect(spent).toBeInstanceOf(RateLimitedError);
    expect(spent.message).toMatch(/TotalRequests Limit exceeded.*6\/6/);
  });
});

describe('salesforce destination: field discovery', () => {
  it('describes the object: types, required fields, custom fields and match keys', async () => {
    await start();
    const fields = new Map((await (await connect()).fields('Contact')).map((f) => [f.name, f]));
    expect(fields.get('External_Id__c')).toEqual({
      name: 'External_Id__c',
      type: 'string',
      required: false,
      kind: 'custom',
      matchable: true,
    });
    expect(fields.get('Id')).toMatchObject({ matchable: true, kind: 'known' });
    expect(fields.get('LastName')).toMatchObject({ required: true, matchable: false });
    expect(fields.get('Email')).toMatchObject({ matchable: true, required: false });
    expect(fields.get('Lifetime_Value__c')).toMatchObject({ type: 'number', kind: 'custom' });
    expect(fields.get('HasOptedOutOfEmail')).toMatchObject({ type: 'boolean', required: false });
    expect(fields.get('Birthdate')).toMatchObject({ type: 'date' });
    // Read-only system fields are not offered.
    expect(fields.has('CreatedDate')).toBe(false);
  });
});

describe('salesforce destination: Bulk API 2.0', () => {
  it('loads a batch above bulk_threshold as an ingest job and reads its results per record', async () => {
    await start();
    const connection = await connect({ bulk_threshold: 3, bulk_poll_ms: 2_000 });
    fake!.seed('Contact', { LastName: 'Old', FirstName: 'Keep', External_Id__c: '1' });
    const outcomes = byKey(
      await connection.write(
        batch([
          contact(1, { Lifetime_Value__c: null }),
          contact(2, { FirstName: 'Ada, "the" first' }),
          contact(3, { Email: 'nope' }),
          contact(4),
        ]),
      ),
    );
    expect(outcomes.get('1')).toMatchObject({ status: 'ok', action: 'updated' });
    expect(outcomes.get('2')).toMatchObject({ status: 'ok', action: 'created' });
    expect(outcomes.get('3')).toMatchObject({
      status: 'rejected',
      field: 'Email',
      reason: 'INVALID_EMAIL_ADDRESS: Email: invalid email address: nope',
    });
    expect(fake!.stored('Contact').get('1')).toMatchObject({
      LastName: 'Hopper1',
      FirstName: 'Keep',
      Lifetime_Value__c: null,
    });
    expect(fake!.stored('Contact').get('2')).toMatchObject({ FirstName: 'Ada, "the" first' });
    const [job] = [...fake!.jobs.values()];
    expect(job).toMatchObject({ operation: 'upsert', externalIdFieldName: 'External_Id__c', state: 'JobComplete' });
    expect(parseCsv(job!.csv!)[0]).toMatchObject({ External_Id__c: '1', Lifetime_Value__c: '#N/A', FirstName: '' });
    expect(writesTo(/composite/)).toHaveLength(0);
  });

  it('gives records back for a retry when the job outlasts bulk_poll_ms, then reads that same job', async () => {
    await start({ bulkProcessingMs: 600 });
    const connection = await connect({ bulk_threshold: 1, bulk_poll_ms: 0 });
    const records = [contact(1), contact(2)];
    const first = await connection.write(batch(records));
    expect(first).toEqual([
      expect.objectContaining({
        key: '1',
        status: 'retry',
        reason: expect.stringMatching(/still InProgress/),
        afterMs: 30_000,
      }),
      expect.objectContaining({ key: '2', status: 'retry' }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const second = await connection.write(batch(records));
    expect(second.every((o) => o.status === 'ok')).toBe(true);
    expect(fake!.jobs.size).toBe(1);
  });

  it('speaks the Bulk API CSV dialect', () => {
    const csv = toCsv(
      ['A', 'B'],
      [
        ['x,y', 'say "hi"'],
        ['#N/A', ''],
      ],
    );
    expect(csv).toBe('A,B\n"x,y","say ""hi"""\n#N/A,\n');
    expect(parseCsv(csv)).toEqual([
      { A: 'x,y', B: 'say "hi"' },
      { A: '#N/A', B: '' },
    ]);
    expect(parseBulkError('REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --')).toEqual({
      statusCode: 'REQUIRED_FIELD_MISSING',
      message: 'Required fields are missing: [LastName]',
      fields: ['LastName'],
    });
  });
});

describe('salesforce destination: calls that may have committed are never sent twice blindly', () => {
  const insert = (i: number, extra: OutboundRecord['fields'] = {}) => ({ ...contact(i, extra), op: 'insert' as const });
  const creates = () => fake!.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/composite/sobjects'));

  it('looks the records up after a create whose connection dropped once it had committed: no duplicates, ok', async () => {
    await start();
    const connection = await connect();
    fake!.failAfterCommit({ method: 'POST', path: /^\/composite\/sobjects$/, mode: 'drop' });
    const outcomes = await connection.write(batch([insert(1), insert(2)]));
    const records = [...fake!.records('Contact').values()];
    expect(records).toHaveLength(2);
    expect(outcomes).toEqual([
      { key: '1', status: 'ok', action: 'created', destinationId: fake!.stored('Contact').get('1')!.Id },
      { key: '2', status: 'ok', action: 'created', destinationId: fake!.stored('Contact').get('2')!.Id },
    ]);
    expect(creates()).toHaveLength(1);
    // The lookup after the lost answer: the records' match values.
    const lookups = fake!.requests.filter((r) => r.path.endsWith('/query'));
    expect(lookups.at(-1)!.query.q).toBe("SELECT Id, External_Id__c FROM Contact WHERE External_Id__c IN ('1', '2')");
  });

  it('does the same when the answer never comes and the request times out', async () => {
    await start();
    const connection = await connect({ timeout_ms: 1_000 });
    fake!.failAfterCommit({ method: 'POST', path: /^\/composite\/sobjects$/, mode: 'stall' });
    const outcomes = await connection.write(batch([insert(1)]));
    expect(outcomes).toEqual([expect.objectContaining({ key: '1', status: 'ok', action: 'created' })]);
    expect(fake!.records('Contact').size).toBe(1);
    expect(creates()).toHaveLength(1);
  });

  it('gives back for a later retry what the lost create did not write, after Salesforce’s call timeout', async () => {
    await start();
    const connection = await connect();
    fake!.failAfterCommit({ method: 'POST', path: /^\/composite\/sobjects$/, mode: 'drop' });
    const outcomes = byKey(await connection.write(batch([insert(1), insert(2, { Email: 'not-an-email' })])));
    expect(outcomes.get('1')).toMatchObject({ status: 'ok', action: 'created' });
    expect(outcomes.get('2')).toMatchObject({
      status: 'retry',
      afterMs: UNCONFIRMED_RETRY_MS,
      reason: expect.stringMatching(/UnconfirmedWrite|may have been applied.*no Contact with External_Id__c = 2 yet/s),
    });
    expect(creates()).toHaveLength(1);
    // The retry looks first, as insert always does: the record created by the lost call is not created again.
    const again = byKey(await connection.write(batch([insert(1)])));
    expect(again.get('1')).toMatchObject({ status: 'rejected', reason: /already has External_Id__c = 1/ });
    expect(fake!.records('Contact').size).toBe(1);
  });

  it('reuses the Bulk API job whose create lost its answer instead of creating another', async () => {
    await start();
    const connection = await connect({ bulk_threshold: 1, bulk_poll_ms: 2_000 });
    fake!.failAfterCommit({ method: 'POST', path: /^\/jobs\/ingest$/, mode: 'drop' });
    const outcomes = await connection.write(batch([contact(1), contact(2)]));
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    expect(fake!.jobs.size).toBe(1);
    expect([...fake!.jobs.values()][0]).toMatchObject({ state: 'JobComplete' });
    expect(fake!.stored('Contact').size).toBe(2);
    expect(fake!.requests.some((r) => r.method === 'GET' && r.path.endsWith('/jobs/ingest'))).toBe(true);
  });

  it('aborts a job whose upload lost its answer (never closed, never processed), then loads a new one', async () => {
    await start();
    const connection = await connect({ bulk_threshold: 1, bulk_poll_ms: 2_000 });
    fake!.failAfterCommit({ method: 'PUT', path: /\/batches$/, mode: 'drop' });
    await expect(connection.write(batch([contact(1), contact(2)]))).rejects.toThrow(UnconfirmedWriteError);
    expect([...fake!.jobs.values()].map((j) => j.state)).toEqual(['Aborted']);
    expect(fake!.stored('Contact').size).toBe(0);
    const uploads = fake!.requests.filter((r) => r.method === 'PUT');
    expect(uploads).toHaveLength(1);
    const retried = await connection.write(batch([contact(1), contact(2)]));
    expect(retried.every((o) => o.status === 'ok')).toBe(true);
    expect(fake!.stored('Contact').size).toBe(2);
  });

  it('carries on with a job whose close (UploadComplete) went through before its answer was lost', async () => {
    await start();
    const connection = await connect({ bulk_threshold: 1, bulk_poll_ms: 2_000 });
    fake!.failAfterCommit({ method: 'PATCH', path: /^\/jobs\/ingest\/\w+$/, mode: 'drop' });
    const outcomes = await connection.write(batch([contact(1), contact(2)]));
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    expect([...fake!.jobs.values()].map((j) => j.state)).toEqual(['JobComplete']);
  });

  it('sends an upsert by external ID again after a lost answer: it is idempotent', async () => {
    await start();
    const connection = await connect();
    fake!.failAfterCommit({ method: 'PATCH', path: /External_Id__c$/, mode: 'drop' });
    const outcomes = await connection.write(batch([contact(1)]));
    expect(outcomes).toEqual([expect.objectContaining({ status: 'ok', action: 'updated' })]);
    expect(fake!.records('Contact').size).toBe(1);
  });
});

describe('salesforce destination: one match value twice in a batch', () => {
  it('the fake refuses both records of a request that names one external ID twice, as Salesforce does', async () => {
    await start();
    const token = (await (
      await fetch(`${fake!.url}/services/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
        }),
      })
    ).json()) as { access_token: string };
    const answer = await fetch(`${fake!.url}/services/data/v62.0/composite/sobjects/Contact/External_Id__c`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        allOrNone: false,
        records: [
          { attributes: { type: 'Contact' }, LastName: 'A', External_Id__c: 'x-1' },
          { attributes: { type: 'Contact' }, LastName: 'B', External_Id__c: 'X-1' },
        ],
      }),
    });
    const results = (await answer.json()) as { errors: { statusCode: string }[] }[];
    expect(results.map((r) => r.errors[0]?.statusCode)).toEqual(['DUPLICATE_EXTERNAL_ID', 'DUPLICATE_EXTERNAL_ID']);
  });

  it('sends records sharing a match value in successive requests, so both land and the last one wins', async () => {
    await start();
    const connection = await connect();
    const outcomes = await connection.write(
      batch([
        record('1', { LastName: 'First' }, 'upsert', 'ext-a'),
        record('2', { LastName: 'Other' }, 'upsert', 'ext-b'),
        record('3', { LastName: 'Last' }, 'upsert', 'EXT-A'),
      ]),
    );
    expect(outcomes.map((o) => [o.key, o.status])).toEqual([
      ['1', 'ok'],
      ['2', 'ok'],
      ['3', 'ok'],
    ]);
    expect(fake!.records('Contact').size).toBe(2);
    expect(fake!.stored('Contact').get('ext-a')).toMatchObject({ LastName: 'Last' });
    const upserts = writesTo(/External_Id__c$/).map((r) =>
      (r.body as { records: { External_Id__c: string }[] }).records.map((x) => x.External_Id__c),
    );
    expect(upserts).toEqual([['ext-a', 'ext-b'], ['EXT-A']]);
  });

  it('does the same for updates by looked-up Id', async () => {
    await start();
    fake!.seed('Contact', { LastName: 'Hopper', External_Id__c: 'a' });
    const connection = await connect();
    const outcomes = await connection.write(
      batch([record('1', { FirstName: 'Grace' }, 'update', 'a'), record('2', { FirstName: 'Ada' }, 'update', 'a')]),
    );
    expect(outcomes.every((o) => o.status === 'ok')).toBe(true);
    expect(fake!.stored('Contact').get('a')).toMatchObject({ FirstName: 'Ada' });
  });
});

describe('salesforce destination: rate limits and refusals', () => {
  it('keeps the requests written before REQUEST_LIMIT_EXCEEDED and gives the rest back, throttled', async () => {
    await start();
    const pace = countingPace();
    const connection = await connect({}, pace);
    fake!.throttleNext(1, 1);
    const outcomes = await connection.write(batch(Array.from({ length: 450 }, (_, i) => contact(i + 1))));
    expect(outcomes).toHaveLength(450);
    expect(outcomes.slice(0, 200).every((o) => o.status === 'ok')).toBe(true);
    for (const o of outcomes.slice(200)) {
      expect(o).toMatchObject({ status: 'retry', throttled: 'rate-limit', afterMs: DAILY_ALLOCATION_WAIT_MS });
    }
    expect(fake!.stored('Contact').size).toBe(200);
    // The refusal slowed the lane down.
    expect(pace.throttles).toBe(1);
  });

  it('reads 403 API_DISABLED_FOR_ORG as a configuration error naming the permission', async () => {
    await start();
    fake!.disableApi();
    const error = await caught((await connect()).check());
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/API_DISABLED_FOR_ORG.*API Enabled/);
  });

  it('reads any other 403 as the integration user’s permissions (AuthError)', async () => {
    await start();
    const realFetch = globalThis.fetch;
    globalThis.fetch = async (input, init) =>
      String(input).includes('/describe')
        ? new Response(JSON.stringify([{ message: 'insufficient access rights', errorCode: 'INSUFFICIENT_ACCESS' }]), {
            status: 403,
            headers: { 'content-type': 'application/json' },
          })
        : realFetch(input, init);
    try {
      const error = await caught((await connect()).fields('Contact'));
      expect(error).toBeInstanceOf(AuthError);
      expect(error.message).toMatch(/INSUFFICIENT_ACCESS/);
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it('takes a slot of the lane’s pace for every request: login, describe, lookup, write', async () => {
    await start();
    fake!.seed('Contact', { LastName: 'Hopper', External_Id__c: '1' });
    const pace = countingPace();
    const connection = await connect({}, pace);
    await connection.write(batch([record('1', { FirstName: 'Grace' }, 'update')]));
    expect(fake!.requests.map((r) => r.path.replace(/^\/services\/data\/v62\.0/, ''))).toEqual([
      '/services/oauth2/token',
      '/sobjects/Contact/describe',
      '/query',
      '/composite/sobjects',
    ]);
    expect(pace.takes).toBe(fake!.requests.length);
  });

  it('declares Salesforce’s allocation as a request rate: 1 request/s stays inside 100,000 a day', () => {
    const rate = salesforceDestination.limits.requestsPerSecond!.value;
    expect(rate * 86_400).toBeLessThanOrEqual(salesforceDestination.limits.dailyQuota!.value);
  });
});

describe('salesforce destination: client credentials need the My Domain', () => {
  it('refuses login.salesforce.com, test.salesforce.com or no login_url for the client credentials flow', async () => {
    expect(salesforceDestination.optionsSchema.parse({ client_id: 'x' }).login_url).toBeUndefined();
    for (const login_url of ['https://login.salesforce.com', 'https://test.salesforce.com/', undefined]) {
      const options = salesforceDestination.optionsSchema.parse({
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        login_url,
      });
      const error = await caught(salesforceDestination.connect(options, { projectDir: process.cwd() }));
      expect(error).toBeInstanceOf(ConnectorConfigError);
      expect(error.message).toMatch(/login_url.*My Domain.*my\.salesforce\.com/);
    }
  });

  it('turns the login server’s "request not supported on this domain" into a configuration error', async () => {
    await start({ genericLoginHost: true });
    const error = await caught((await connect()).check());
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/request not supported on this domain.*login_url.*My Domain/);
  });

  it('keeps https://login.salesforce.com as the JWT bearer flow’s default', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const options = salesforceDestination.optionsSchema.parse({
      client_id: CLIENT_ID,
      username: 'sync@acme.com',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    });
    await expect(salesforceDestination.connect(options, { projectDir: process.cwd() })).resolves.toBeDefined();
  });
});

describe('salesforce destination: value formats from the field types', () => {
  it('maps every Salesforce field type to its normalized type', async () => {
    await start();
    const types = Object.fromEntries((await (await connect()).fields('Everything__c')).map((f) => [f.name, f.type]));
    expect(types).toMatchObject({
      Date__c: 'date',
      Datetime__c: 'timestamp',
      Boolean__c: 'boolean',
      Double__c: 'number',
      Currency__c: 'number',
      Percent__c: 'number',
      Int__c: 'integer',
      String__c: 'string',
      Textarea__c: 'string',
      Picklist__c: 'string',
      Multipicklist__c: 'string',
      Email__c: 'string',
      Phone__c: 'string',
      Url__c: 'string',
      Reference__c: 'string',
      Id: 'string',
    });
  });

  it('writes each model type into each field type the way the field wants it', async () => {
    await start();
    const connection = await connect();
    const outcomes = await connection.write({
      object: 'Everything__c',
      matchField: 'Key__c',
      fieldTypes: {
        Key__c: 'integer',
        Date__c: 'timestamp',
        Datetime__c: 'date',
        String__c: 'date',
        Textarea__c: 'timestamp',
        Boolean__c: 'string',
        Double__c: 'string',
        Int__c: 'string',
        Currency__c: 'number',
        Percent__c: 'integer',
        Picklist__c: 'integer',
        Multipicklist__c: 'json',
        Email__c: 'string',
        Phone__c: 'string',
        Url__c: 'string',
      },
      records: [
        record(
          '1',
          {
            Date__c: '2026-01-31T23:30:00.000Z',
            Datetime__c: '2026-01-31',
            String__c: '2026-01-31',
            Textarea__c: '2026-01-31T23:30:00.000Z',
            Boolean__c: 'true',
            Double__c: '2.5',
            Int__c: '42',
            Currency__c: 12.5,
            Percent__c: 7,
            Picklist__c: 3,
            Multipicklist__c: '["golf","chess"]',
            Email__c: 'grace@example.com',
            Phone__c: '+1 555 0100',
            Url__c: 'https://example.com',
          },
          'upsert',
          1,
        ),
      ],
    });
    expect(outcomes).toEqual([expect.objectContaining({ status: 'ok' })]);
    expect(fake!.stored('Everything__c').get('1')).toMatchObject({
      // A timestamp into a date field: its UTC day.
      Date__c: '2026-01-31',
      // A date into a date/time field: midnight UTC.
      Datetime__c: '2026-01-31T00:00:00.000Z',
      // Dates and timestamps into text fields stay ISO 8601.
      String__c: '2026-01-31',
      Textarea__c: '2026-01-31T23:30:00.000Z',
      Boolean__c: true,
      Double__c: 2.5,
      Int__c: 42,
      Currency__c: 12.5,
      Percent__c: 7,
      Picklist__c: '3',
      Multipicklist__c: 'golf;chess',
      Email__c: 'grace@example.com',
      Phone__c: '+1 555 0100',
      Url__c: 'https://example.com',
    });
  });
});
