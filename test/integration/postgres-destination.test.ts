import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresDestination } from '#connectors/destinations/postgres/index';
import type {
  DestinationConnection,
  OutboundRecord,
  RecordOperation,
  RecordOutcome,
  WriteBatch,
} from '#connectors/sdk/destination';
import type { FieldType, JsonValue } from '#connectors/sdk/types';
import { ConnectorConfigError, TransientError } from '#core/errors';

const HOST = '127.0.0.1';
const database = `backflow_test_${randomBytes(6).toString('hex')}`;
const admin = new pg.Client({ host: HOST, port: 5432, user: 'postgres', database: 'postgres' });
const db = new pg.Client({ host: HOST, port: 5432, user: 'postgres', database });
let destination: DestinationConnection;

function connect(
  connection: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Promise<DestinationConnection> {
  const options = postgresDestination.optionsSchema.parse({ connection, ...extra });
  return postgresDestination.connect(options, { projectDir: process.cwd() });
}

function record(
  key: string,
  op: RecordOperation,
  fields: Record<string, JsonValue> = {},
  match: JsonValue = key,
): OutboundRecord {
  return { key, op, match, fields };
}

function batch(
  object: string,
  records: OutboundRecord[],
  fieldTypes: Record<string, FieldType>,
  matchField = 'id',
): WriteBatch {
  return { object, matchField, fieldTypes, records };
}

function byKey(outcomes: RecordOutcome[]): Record<string, RecordOutcome> {
  return Object.fromEntries(outcomes.map((o) => [o.key, o]));
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await db.query(sql)).rows;
}

const people: Record<string, FieldType> = { id: 'integer', name: 'string', age: 'integer' };

/** JSON a double cannot hold: an integer beyond 2^53, a decimal beyond 17 digits, a JSON null, -0. */
const EXACT_JSON =
  '{"big": 12345678901234567890, "prec": 0.1000000000000000055511151231257827, "n": null, "arr": [1, 2.50, -0]}';

beforeAll(async () => {
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await db.connect();
  destination = await connect({ database, user: 'postgres' });
});

afterAll(async () => {
  await destination?.close();
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
});

describe('postgres destination', () => {
  it('checks the connection', async () => {
    await expect(destination.check()).resolves.toBeUndefined();
  });

  it('creates the table with typed columns and the match field as primary key', async () => {
    const types: Record<string, FieldType> = {
      id: 'integer',
      email: 'string',
      score: 'number',
      active: 'boolean',
      born: 'date',
      seen_at: 'timestamp',
      meta: 'json',
      avatar: 'binary',
    };
    const outcomes = await destination.write(
      batch(
        'typed',
        [
          record(
            '1',
            'upsert',
            {
              email: 'ada@example.com',
              score: '12345678901234567890.125',
              active: true,
              born: '1815-12-10',
              seen_at: '2024-02-03T04:05:06.123456Z',
              meta: { tags: ['a'], n: 1 },
              avatar: Buffer.from([1, 2, 255]).toString('base64'),
            },
            1,
          ),
        ],
        types,
      ),
    );
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'created' }]);
    const columns = await rows(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'typed' ORDER BY ordinal_position`,
    );
    expect(Object.fromEntries(columns.map((c) => [c.column_name, c.data_type]))).toEqual({
      id: 'bigint',
      email: 'text',
      score: 'numeric',
      active: 'boolean',
      born: 'date',
      seen_at: 'timestamp with time zone',
      meta: 'jsonb',
      avatar: 'bytea',
    });
    const [row] = await rows(
      `SELECT score::text, active, born::text, to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS seen,
              meta, encode(avatar, 'hex') AS avatar FROM typed`,
    );
    expect(row).toEqual({
      score: '12345678901234567890.125',
      active: true,
      born: '1815-12-10',
      seen: '2024-02-03T04:05:06.123456',
      meta: { tags: ['a'], n: 1 },
      avatar: '0102ff',
    });
    const fields = await destination.fields('typed');
    expect(fields.find((f) => f.name === 'id')).toEqual({
      name: 'id',
      type: 'integer',
      required: true,
      kind: 'known',
      matchable: true,
    });
    expect(fields.find((f) => f.name === 'seen_at')).toMatchObject({
      type: 'timestamp',
      required: false,
      matchable: false,
    });
    expect(fields.map((f) => f.name)).toEqual(Object.keys(types));
  });

  it('returns no fields for a missing table', async () => {
    expect(await destination.fields('nope')).toEqual([]);
  });

  it('reports created then updated', async () => {
    const first = await destination.write(batch('people', [record('1', 'upsert', { name: 'Ada', age: 36 })], people));
    expect(first).toEqual([{ key: '1', status: 'ok', action: 'created' }]);
    const second = await destination.write(
      batch(
        'people',
        [record('1', 'upsert', { name: 'Ada L.', age: 37 }), record('2', 'upsert', { name: 'Bob', age: 5 })],
        people,
      ),
    );
    expect(byKey(second)).toEqual({
      '1': { key: '1', status: 'ok', action: 'updated' },
      '2': { key: '2', status: 'ok', action: 'created' },
    });
    expect(await rows('SELECT id::int, name, age::int FROM people ORDER BY id')).toEqual([
      { id: 1, name: 'Ada L.', age: 37 },
      { id: 2, name: 'Bob', age: 5 },
    ]);
  });

  it('leaves an absent field untouched and clears a null one', async () => {
    await destination.write(batch('people', [record('3', 'upsert', { name: 'Cy', age: 40 })], people));
    await destination.write(batch('people', [record('3', 'upsert', { name: 'Cyd' })], people));
    expect(await rows('SELECT name, age::int FROM people WHERE id = 3')).toEqual([{ name: 'Cyd', age: 40 }]);
    await destination.write(batch('people', [record('3', 'upsert', { age: null })], people));
    expect(await rows('SELECT name, age FROM people WHERE id = 3')).toEqual([{ name: 'Cyd', age: null }]);
  });

  it('never updates in insert mode', async () => {
    await destination.write(batch('people', [record('4', 'upsert', { name: 'Dee' })], people));
    const outcomes = await destination.write(
      batch('people', [record('4', 'insert', { name: 'Changed' }), record('5', 'insert', { name: 'Eve' })], people),
    );
    expect(byKey(outcomes)).toEqual({
      '4': { key: '4', status: 'rejected', reason: 'already exists' },
      '5': { key: '5', status: 'ok', action: 'created' },
    });
    expect(await rows('SELECT name FROM people WHERE id IN (4, 5) ORDER BY id')).toEqual([
      { name: 'Dee' },
      { name: 'Eve' },
    ]);
  });

  it('never creates in update mode', async () => {
    await destination.write(batch('people', [record('6', 'upsert', { name: 'Fay' })], people));
    const outcomes = await destination.write(
      batch('people', [record('6', 'update', { name: 'Faye' }), record('7', 'update', { name: 'Gus' })], people),
    );
    expect(byKey(outcomes)).toEqual({
      '6': { key: '6', status: 'ok', action: 'updated' },
      '7': {
        key: '7',
        status: 'rejected',
        reason: 'no matching record in the destination (update mode never creates)',
      },
    });
    expect(await rows('SELECT id::int, name FROM people WHERE id IN (6, 7)')).toEqual([{ id: 6, name: 'Faye' }]);
  });

  it('deletes idempotently', async () => {
    await destination.write(batch('people', [record('8', 'upsert', { name: 'Hal' })], people));
    const first = await destination.write(batch('people', [record('8', 'delete'), record('999', 'delete')], people));
    expect(byKey(first)).toEqual({
      '8': { key: '8', status: 'ok', action: 'deleted' },
      '999': { key: '999', status: 'ok', action: 'deleted' },
    });
    const again = await destination.write(batch('people', [record('8', 'delete')], people));
    expect(again).toEqual([{ key: '8', status: 'ok', action: 'deleted' }]);
    expect(await rows('SELECT 1 FROM people WHERE id = 8')).toEqual([]);
  });

  it('rejects only the record whose value does not fit the column', async () => {
    await destination.write(batch('people', [record('10', 'upsert', { name: 'J', age: 1 })], people));
    const outcomes = await destination.write(
      batch(
        'people',
        [
          record('11', 'upsert', { name: 'K', age: 2 }),
          record('12', 'upsert', { name: 'L', age: 'abc' }),
          record('10', 'upsert', { name: 'J2', age: 3 }),
        ],
        people,
      ),
    );
    const outcome = byKey(outcomes);
    expect(outcomes).toHaveLength(3);
    expect(outcome['11']).toEqual({ key: '11', status: 'ok', action: 'created' });
    expect(outcome['10']).toEqual({ key: '10', status: 'ok', action: 'updated' });
    expect(outcome['12']).toMatchObject({ status: 'rejected', reason: expect.stringContaining('abc') });
    expect(await rows('SELECT id::int, name, age::int FROM people WHERE id IN (10, 11, 12) ORDER BY id')).toEqual([
      { id: 10, name: 'J2', age: 3 },
      { id: 11, name: 'K', age: 2 },
    ]);
  });

  it('rejects a string too long for a varchar column and a NOT NULL violation', async () => {
    await db.query('CREATE TABLE short_names (id bigint PRIMARY KEY, name varchar(5), code text NOT NULL)');
    const types: Record<string, FieldType> = { id: 'integer', name: 'string', code: 'string' };
    const outcomes = byKey(
      await destination.write(
        batch(
          'short_names',
          [
            record('1', 'upsert', { name: 'short', code: 'a' }),
            record('2', 'upsert', { name: 'far too long', code: 'b' }),
            record('3', 'upsert', { name: 'ok', code: null }),
            record('4', 'upsert', { name: 'fine', code: 'd' }),
          ],
          types,
        ),
      ),
    );
    expect(outcomes['1']).toEqual({ key: '1', status: 'ok', action: 'created' });
    expect(outcomes['4']).toEqual({ key: '4', status: 'ok', action: 'created' });
    expect(outcomes['2']).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/too long/) });
    expect(outcomes['3']).toMatchObject({
      status: 'rejected',
      field: 'code',
      reason: expect.stringMatching(/null/),
    });
    expect(await rows('SELECT id::int FROM short_names ORDER BY id')).toEqual([{ id: 1 }, { id: 4 }]);
    const fields = await destination.fields('short_names');
    expect(fields.find((f) => f.name === 'code')).toMatchObject({ required: true, matchable: false });
  });

  it('writes JSON text, a JSON null and a negative zero exactly', async () => {
    await db.query(
      'CREATE TABLE exact (id bigint PRIMARY KEY, doc jsonb, raw json, dbl double precision, price numeric)',
    );
    const types: Record<string, FieldType> = {
      id: 'integer',
      doc: 'json',
      raw: 'json',
      dbl: 'number',
      price: 'number',
    };
    const outcomes = await destination.write(
      batch(
        'exact',
        [
          record('1', 'upsert', { doc: EXACT_JSON, raw: EXACT_JSON, dbl: -0, price: -0 }, 1),
          record('2', 'upsert', { doc: 'null', raw: 'null', dbl: 0, price: 0 }, 2),
          record('3', 'upsert', { doc: null, raw: null, dbl: null, price: null }, 3),
        ],
        types,
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok', 'ok']);
    const { rows: stored } = await db.query(
      `SELECT id::int, doc = $1::jsonb AS exact, doc::text AS doc, raw::text AS raw, dbl::text AS dbl,
              price::text AS price, doc IS NULL AS doc_null, raw IS NULL AS raw_null
         FROM exact ORDER BY id`,
      [EXACT_JSON],
    );
    // jsonb keeps numbers as numeric: every digit stays; numeric has no negative zero.
    const normalized =
      '{"n": null, "arr": [1, 2.50, 0], "big": 12345678901234567890, "prec": 0.1000000000000000055511151231257827}';
    expect(stored).toEqual([
      { id: 1, exact: true, doc: normalized, raw: normalized, dbl: '-0', price: '0', doc_null: false, raw_null: false },
      { id: 2, exact: false, doc: 'null', raw: 'null', dbl: '0', price: '0', doc_null: false, raw_null: false },
      { id: 3, exact: null, doc: null, raw: null, dbl: null, price: null, doc_null: true, raw_null: true },
    ]);
  });

  it('refuses, per record and naming the field, values PostgreSQL cannot hold', async () => {
    await db.query('CREATE TABLE picky (id bigint PRIMARY KEY, name text, small integer, doc jsonb)');
    const types: Record<string, FieldType> = { id: 'integer', name: 'string', small: 'integer', doc: 'json' };
    const fine = { name: 'fine', small: 1, doc: '{"a": 1}' };
    const outcomes = byKey(
      await destination.write(
        batch(
          'picky',
          [
            record('1', 'upsert', fine, 1),
            record('2', 'upsert', { ...fine, name: 'a\u0000b' }, 2),
            record('3', 'upsert', { ...fine, name: 'x\ud800y' }, 3),
            record('4', 'upsert', { ...fine, small: 99999999999 }, 4),
            record('5', 'upsert', { ...fine, doc: '{"a": "\\u0000"}' }, 5),
            record('6', 'upsert', { ...fine, doc: '{"\\udc00": 1}' }, 6),
            record('7', 'upsert', { ...fine, doc: '{"a": 1' }, 7),
            record('8', 'upsert', fine, 8),
          ],
          types,
        ),
      ),
    );
    expect(outcomes['1']).toEqual({ key: '1', status: 'ok', action: 'created' });
    expect(outcomes['8']).toEqual({ key: '8', status: 'ok', action: 'created' });
    expect(outcomes['2']).toEqual({
      key: '2',
      status: 'rejected',
      field: 'name',
      reason: 'text contains a NUL character (U+0000), which PostgreSQL text cannot store',
    });
    expect(outcomes['3']).toEqual({
      key: '3',
      status: 'rejected',
      field: 'name',
      reason:
        'text contains an unpaired UTF-16 surrogate (U+D800), which is not valid Unicode: fix the value in the model',
    });
    expect(outcomes['4']).toEqual({
      key: '4',
      status: 'rejected',
      field: 'small',
      reason: 'value "99999999999" is out of range for type integer',
    });
    expect(outcomes['5']).toEqual({
      key: '5',
      status: 'rejected',
      field: 'doc',
      reason: 'JSON contains a NUL character (U+0000), which PostgreSQL JSON cannot store',
    });
    expect(outcomes['6']).toMatchObject({
      status: 'rejected',
      field: 'doc',
      reason: expect.stringMatching(/^JSON contains an unpaired UTF-16 surrogate \(U\+DC00\)/),
    });
    expect(outcomes['7']).toMatchObject({
      status: 'rejected',
      field: 'doc',
      reason: expect.stringMatching(/^not valid JSON text/),
    });
    expect(await rows('SELECT id::int, name, small, doc FROM picky ORDER BY id')).toEqual([
      { id: 1, name: 'fine', small: 1, doc: { a: 1 } },
      { id: 8, name: 'fine', small: 1, doc: { a: 1 } },
    ]);
  });

  it('keeps an integer beyond 2^53 exact', async () => {
    const outcomes = await destination.write(
      batch('big', [record('k', 'upsert', { amount: '9007199254740993' }, '9007199254740993')], {
        id: 'integer',
        amount: 'integer',
      }),
    );
    expect(outcomes).toEqual([{ key: 'k', status: 'ok', action: 'created' }]);
    expect(await rows('SELECT id::text, amount::text FROM big')).toEqual([
      { id: '9007199254740993', amount: '9007199254740993' },
    ]);
  });

  it('adds a column the table lacks', async () => {
    await destination.write(batch('grow', [record('1', 'upsert', { a: 'x' })], { id: 'integer', a: 'string' }));
    const outcomes = await destination.write(
      batch('grow', [record('1', 'upsert', { b: 2 })], { id: 'integer', a: 'string', b: 'integer' }),
    );
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'updated' }]);
    expect(await rows('SELECT a, b::int FROM grow')).toEqual([{ a: 'x', b: 2 }]);
  });

  it('lets the last of duplicate match values win', async () => {
    const outcomes = await destination.write(
      batch(
        'dupes',
        [
          record('a', 'upsert', { v: 'first' }, 1),
          record('b', 'upsert', { v: 'second' }, 1),
          record('c', 'upsert', { v: 'x' }, 2),
        ],
        { id: 'integer', v: 'string' },
      ),
    );
    expect(outcomes).toHaveLength(3);
    expect(byKey(outcomes).b).toEqual({ key: 'b', status: 'ok', action: 'updated' });
    expect(await rows('SELECT id::int, v FROM dupes ORDER BY id')).toEqual([
      { id: 1, v: 'second' },
      { id: 2, v: 'x' },
    ]);
  });

  it('writes to schema.table and to the configured schema', async () => {
    await db.query('CREATE SCHEMA crm');
    await destination.write(batch('crm.accounts', [record('1', 'upsert', { name: 'A' })], people));
    const scoped = await connect({ database, user: 'postgres' }, { schema: 'crm' });
    try {
      const outcomes = await scoped.write(batch('accounts', [record('1', 'upsert', { name: 'B' })], people));
      expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'updated' }]);
    } finally {
      await scoped.close();
    }
    expect(await rows('SELECT name FROM crm.accounts')).toEqual([{ name: 'B' }]);
  });

  it('needs a unique match column to upsert, not to update', async () => {
    await db.query("CREATE TABLE loose (id bigint, name text); INSERT INTO loose VALUES (1, 'a')");
    const error = await destination
      .write(batch('loose', [record('1', 'upsert', { name: 'b' })], people))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect((error as Error).message).toMatch(/unique/);
    const outcomes = await destination.write(batch('loose', [record('1', 'update', { name: 'c' })], people));
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'updated' }]);
  });

  it('relearns a table dropped behind its cache', async () => {
    await destination.write(batch('volatile', [record('1', 'upsert', { name: 'A' })], people));
    await db.query('DROP TABLE volatile');
    const outcomes = await destination.write(batch('volatile', [record('1', 'upsert', { name: 'B' })], people));
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'created' }]);
  });

  it('creates a table once when lanes write to it concurrently', async () => {
    const writes = ['1', '2', '3', '4'].map((key) =>
      destination.write(batch('concurrent', [record(key, 'upsert', { name: key })], people)),
    );
    const outcomes = (await Promise.all(writes)).flat();
    expect(outcomes.every((o) => o.status === 'ok' && o.action === 'created')).toBe(true);
    expect(await rows('SELECT count(*)::int AS n FROM concurrent')).toEqual([{ n: 4 }]);
  });

  it('survives the server closing its connections, idle or busy', async () => {
    await destination.write(batch('dropped', [record('1', 'upsert', { name: 'A' })], people));
    const terminate = () =>
      admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'backflow'`,
        [database],
      );
    await terminate();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await destination.write(batch('dropped', [record('1', 'upsert', { name: 'B' })], people))).toEqual([
      { key: '1', status: 'ok', action: 'updated' },
    ]);

    await db.query('BEGIN');
    await db.query('LOCK TABLE dropped IN ACCESS EXCLUSIVE MODE');
    const blocked = destination
      .write(batch('dropped', [record('1', 'upsert', { name: 'C' })], people))
      .catch((e: unknown) => e);
    for (let i = 0; i < 100; i++) {
      const { rows: waiting } = await admin.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'backflow' AND wait_event_type = 'Lock'`,
        [database],
      );
      if (waiting.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await terminate();
    expect(await blocked).toBeInstanceOf(TransientError);
    await db.query('ROLLBACK');
    expect(await destination.write(batch('dropped', [record('1', 'upsert', { name: 'D' })], people))).toEqual([
      { key: '1', status: 'ok', action: 'updated' },
    ]);
  });

  it('throws TransientError without the password when the server is unreachable', async () => {
    const password = 'hunter2-very-secret';
    const unreachable = await connect({ host: HOST, port: 1, database, user: 'postgres', password });
    try {
      const error = await unreachable.check().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransientError);
      expect((error as Error).message).not.toContain(password);
      expect((error as Error).message).toContain('ECONNREFUSED');
      const writeError = await unreachable
        .write(batch('people', [record('1', 'upsert', { name: 'x' })], people))
        .catch((e: unknown) => e);
      expect(writeError).toBeInstanceOf(TransientError);
      expect((writeError as Error).message).not.toContain(password);
    } finally {
      await unreachable.close();
    }
  });

  it('throws ConnectorConfigError for a missing database', async () => {
    const missing = await connect({
      database: `${database}_missing`,
      user: 'postgres',
      password: 'pw-not-shown',
    });
    try {
      const error = await missing.check().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectorConfigError);
      expect((error as Error).message).toContain('does not exist');
      expect((error as Error).message).not.toContain('pw-not-shown');
    } finally {
      await missing.close();
    }
  });
});
