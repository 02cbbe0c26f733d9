import { afterEach, describe, expect, it } from 'vitest';
import { airtableRefusal } from '#connectors/destinations/airtable/client';
import { airtableDestination } from '#connectors/destinations/airtable/index';
import type { DestinationConnection, OutboundRecord, WriteBatch } from '#connectors/sdk/destination';
import type { RequestPace } from '#connectors/sdk/types';
import { AuthError, ConnectorConfigError, RateLimitedError } from '#core/errors';
import { type AirtableFake, type AirtableFakeOptions, startAirtableFake } from '#test/fakes/airtable/server';

const TOKEN = 'patAbC123.0123456789abcdef';

let fake: AirtableFake | undefined;
const connections: DestinationConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
});

async function start(options: Partial<AirtableFakeOptions> = {}): Promise<AirtableFake> {
  // A generous rate unless a test is about the limit: these tests are not paced.
  fake = await startAirtableFake({ token: TOKEN, rate: { max: 1000, ms: 1000 }, ...options });
  return fake;
}

async function connect(opts: Record<string, unknown> = {}, pace?: RequestPace): Promise<DestinationConnection> {
  const options = airtableDestination.optionsSchema.parse({
    base_url: fake!.url,
    base_id: fake!.baseId,
    access_token: TOKEN,
    ...opts,
  });
  const connection = await airtableDestination.connect(options, { projectDir: process.cwd(), ...(pace && { pace }) });
  connections.push(connection);
  return connection;
}

function batch(records: OutboundRecord[], matchField = 'email', object = 'Customers'): WriteBatch {
  return { object, matchField, fieldTypes: {}, records };
}

const record = (
  key: string,
  fields: OutboundRecord['fields'],
  op: OutboundRecord['op'] = 'upsert',
  match: OutboundRecord['match'] = `ada${key}@example.com`,
): OutboundRecord => ({ key, op, match, fields });

const people = (n: number, op: OutboundRecord['op'] = 'upsert', from = 1) =>
  Array.from({ length: n }, (_, i) => record(String(from + i), { firstname: `Ada ${from + i}` }, op));

async function caught(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const writes = (f: AirtableFake) => f.requests.filter((r) => r.method !== 'GET');

describe('airtable destination', () => {
  it('reports the table’s writable fields with their Backflow types, by name or ID', async () => {
    await start();
    const connection = await connect();
    await connection.check();
    const fields = await connection.fields('Customers');
    const byName = Object.fromEntries(fields.map((f) => [f.name, f]));
    expect(byName.email).toMatchObject({ type: 'string', matchable: true, required: false });
    expect(byName.ltv?.type).toBe('number');
    expect(byName.visits?.type).toBe('integer');
    expect(byName.signup).toMatchObject({ type: 'date', matchable: false });
    expect(byName.last_seen?.type).toBe('timestamp');
    expect(byName.active).toMatchObject({ type: 'boolean', matchable: false });
    expect(byName.tags).toMatchObject({ type: 'json', matchable: false });
    expect(byName.tier?.type).toBe('string');
    // Computed fields cannot be written.
    expect(byName.score).toBeUndefined();
    expect(byName.created).toBeUndefined();
    expect((await connection.fields('tblCustomers00001')).length).toBe(fields.length);
    await expect(connection.fields('Nope')).rejects.toThrow(ConnectorConfigError);
  });

  it('upserts on the match field, 10 records a request, telling created from updated', async () => {
    await start();
    const connection = await connect();
    const first = await connection.write(batch(people(25)));
    expect(first.every((o) => o.status === 'ok' && o.action === 'created' && o.destinationId?.startsWith('rec'))).toBe(
      true,
    );
    expect(writes(fake!).length).toBe(3);
    const body = writes(fake!)[0]!.body as Record<string, unknown>;
    expect(body).toMatchObject({ performUpsert: { fieldsToMergeOn: ['email'] }, typecast: false });
    expect((body.records as unknown[]).length).toBe(10);

    const second = await connection.write(
      batch([record('1', { firstname: 'Grace', plan: 'gold', ltv: 12.5 }), record('99', { firstname: 'New' })]),
    );
    expect(second.map((o) => o.status === 'ok' && o.action)).toEqual(['updated', 'created']);
    expect(second[0]).toMatchObject({ destinationId: first[0]!.status === 'ok' ? first[0]!.destinationId : '' });
    expect(fake!.stored('Customers').get('ada1@example.com')).toMatchObject({ firstname: 'Grace', ltv: 12.5 });
    expect(fake!.records('Customers').length).toBe(26);

    // A null clears the cell; a field left out is kept.
    await connection.write(batch([record('1', { ltv: null })]));
    expect(fake!.stored('Customers').get('ada1@example.com')).toEqual({
      email: 'ada1@example.com',
      firstname: 'Grace',
      plan: 'gold',
    });
  });

  it('rejects the record Airtable refuses, with its reason and field, and delivers the rest', async () => {
    await start();
    const connection = await connect();
    const records = people(10);
    records[6] = record('7', { firstname: 'Bad' }, 'upsert', 'not-an-email');
    const outcomes = await connection.write(batch(records));
    expect(outcomes.filter((o) => o.status === 'ok').length).toBe(9);
    expect(outcomes[6]).toMatchObject({
      status: 'rejected',
      field: 'email',
      reason: 'INVALID_VALUE_FOR_COLUMN: Field "email" cannot accept the provided value',
    });
    expect(fake!.stored('Customers').size).toBe(9);
    expect(writes(fake!).length).toBeLessThanOrEqual(12);
  });

  it('refuses an unknown select option unless typecast is on', async () => {
    await start();
    const strict = await connect();
    const [refused] = await strict.write(batch([record('1', { tier: 'enterprise' })]));
    expect(refused).toMatchObject({
      status: 'rejected',
      reason: expect.stringMatching(/INVALID_MULTIPLE_CHOICE_OPTIONS/),
    });
    const lenient = await connect({ typecast: true });
    const [ok] = await lenient.write(batch([record('1', { tier: 'enterprise', visits: '12' })]));
    expect(ok).toMatchObject({ status: 'ok', action: 'created' });
    expect(fake!.choices('Customers', 'tier')).toContain('enterprise');
    expect(fake!.stored('Customers').get('ada1@example.com')).toMatchObject({ visits: 12 });
  });

  it('rejects every record sending an unknown field, and a missing match value', async () => {
    await start();
    const connection = await connect();
    const outcomes = await connection.write(
      batch([record('1', { nickname: 'x' }), record('2', { nickname: 'y' }), record('3', {}, 'upsert', null)]),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(outcomes[0]).toMatchObject({ field: 'nickname', reason: expect.stringMatching(/UNKNOWN_FIELD_NAME/) });
    expect(outcomes[2]).toMatchObject({ field: 'email' });
  });

  it('update mode looks records up, updates them by ID and never creates', async () => {
    await start();
    const id = fake!.seed('Customers', { email: 'ada1@example.com', firstname: 'Ada' });
    fake!.seed('Customers', { email: 'twin@example.com' });
    fake!.seed('Customers', { email: 'twin@example.com' });
    const connection = await connect();
    const outcomes = await connection.write(
      batch([
        record('1', { firstname: 'Lovelace' }, 'update'),
        record('2', { firstname: 'Nobody' }, 'update'),
        record('3', { firstname: 'Twin' }, 'update', 'twin@example.com'),
      ]),
    );
    expect(outcomes[0]).toMatchObject({ status: 'ok', action: 'updated', destinationId: id });
    expect(outcomes[1]).toMatchObject({
      status: 'rejected',
      reason: expect.stringMatching(/update mode never creates/),
    });
    expect(outcomes[2]).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/needs exactly one/) });
    expect(fake!.records('Customers').length).toBe(3);
    const lookup = fake!.requests.find((r) => r.method === 'GET' && r.path.includes('filterByFormula'))!;
    expect(new URL(lookup.path, 'http://x').searchParams.get('filterByFormula')).toBe(
      'OR({email}="ada1@example.com",{email}="ada2@example.com",{email}="twin@example.com")',
    );
  });

  it('looks up values with quotes and backslashes, matching on a text field', async () => {
    await start();
    fake!.seed('Customers', { email: 'q@example.com', firstname: 'O"Brien \\ Jr' });
    const connection = await connect();
    const [outcome] = await connection.write(
      batch([record('1', { plan: 'gold' }, 'update', 'O"Brien \\ Jr')], 'firstname'),
    );
    expect(outcome).toMatchObject({ status: 'ok', action: 'updated' });
    expect(fake!.stored('Customers').get('q@example.com')).toMatchObject({ plan: 'gold' });
  });

  it('inserts with POST, and reconciles a create whose answer was lost instead of duplicating it', async () => {
    await start();
    const connection = await connect();
    const created = await connection.write(batch(people(3, 'insert')));
    expect(created.every((o) => o.status === 'ok' && o.action === 'created')).toBe(true);
    expect(writes(fake!)[0]!.method).toBe('POST');

    fake!.failAfterApplying(1);
    const outcomes = await connection.write(batch(people(2, 'insert', 10)));
    expect(outcomes.map((o) => o.status === 'ok' && o.action)).toEqual(['created', 'created']);
    // Sent once: the 503 after applying it was not answered by sending it again.
    expect(writes(fake!).filter((r) => r.method === 'POST').length).toBe(2);
    expect(fake!.records('Customers').length).toBe(5);
  });

  it('mirror deletes by record ID, 10 a request, what is gone counting as deleted', async () => {
    await start();
    const connection = await connect();
    await connection.write(batch(people(12)));
    fake!.seed('Customers', { email: 'ada3@example.com' });
    const deletes = [...people(12, 'delete'), record('50', {}, 'delete')];
    const outcomes = await connection.write(batch(deletes));
    expect(outcomes.every((o) => o.status === 'ok' && o.action === 'deleted')).toBe(true);
    expect(fake!.records('Customers').length).toBe(0);
    const deleteRequests = fake!.requests.filter((r) => r.method === 'DELETE');
    // 13 records (ada3 twice) in two chunks of lookups: 10 + 1, then 2.
    expect(deleteRequests.length).toBe(3);
    for (const r of deleteRequests) {
      expect(new URL(r.path, 'http://x').searchParams.getAll('records[]').length).toBeLessThanOrEqual(10);
    }
  });

  it('waits 30 s after a 429 without Retry-After, keeping what was written', async () => {
    await start({ rate: { max: 1, ms: 60_000 }, lockoutMs: 60_000 });
    const connection = await connect();
    const outcomes = await connection.write(batch(people(20)));
    expect(outcomes.slice(0, 10).every((o) => o.status === 'ok')).toBe(true);
    for (const o of outcomes.slice(10)) {
      expect(o).toMatchObject({ status: 'retry', throttled: 'rate-limit', afterMs: 30_000 });
    }
    // Locked out: the next batch fails as a whole.
    const error = await caught(connection.write(batch(people(1, 'upsert', 30))));
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(30_000);
  });

  it('reads Retry-After when Airtable sends it', () => {
    const headers = new Headers({ 'retry-after': '7' });
    const error = airtableRefusal({ status: 429, headers, body: {}, where: 'Airtable PATCH', snippet: '' });
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(7_000);
  });

  it('takes a slot of the lane’s pace for every request, the schema read and lookups included', async () => {
    await start();
    let slots = 0;
    const pace: RequestPace = {
      take: async () => {
        slots++;
      },
      throttled: async () => {},
    };
    const connection = await connect({}, pace);
    await connection.fields('Customers');
    await connection.write(batch(people(3)));
    await connection.write(batch(people(3, 'update')));
    await connection.write(batch(people(3, 'delete')));
    expect(slots).toBe(fake!.requests.length);
    expect(slots).toBe(1 + 1 + 2 + 2);
  });

  it('ends a revoked token in an AuthError, a base out of reach in a configuration error', async () => {
    await start();
    fake!.revoke();
    const connection = await connect();
    expect(await caught(connection.write(batch(people(1))))).toBeInstanceOf(AuthError);
    fake!.restore();
    const elsewhere = await connect({ base_id: 'appSomewhereElse1' });
    const error = await caught(elsewhere.check());
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect(error.message).toMatch(/schema\.bases:read/);
    expect(error.message).not.toContain(TOKEN);
    expect(await caught(connection.write(batch(people(1), 'email', 'Missing')))).toBeInstanceOf(ConnectorConfigError);
  });
});
