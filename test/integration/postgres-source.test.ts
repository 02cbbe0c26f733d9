import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint, RowPage, SourceConnection } from '#connectors/sdk/source';
import { postgresSource } from '#connectors/sources/postgres/index';
import { ConnectorConfigError, TransientError } from '#core/errors';
import { describeKeysetReads, KEYSET_ROWS } from './keyset-reads.ts';

// A local time zone far from UTC: any date or timestamp parsed through a JS Date would shift.
process.env.TZ = 'Pacific/Kiritimati';

const HOST = '127.0.0.1';
const database = `backflow_src_${randomBytes(6).toString('hex')}`;
const admin = new pg.Client({ host: HOST, port: 5432, user: 'postgres', database: 'postgres' });
const db = new pg.Client({ host: HOST, port: 5432, user: 'postgres', database });
let source: SourceConnection;

function connect(connection: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<SourceConnection> {
  const options = postgresSource.optionsSchema.parse({ connection, ...extra });
  return postgresSource.connect(options, { projectDir: process.cwd() });
}

async function pages(iterable: AsyncIterable<RowPage>): Promise<RowPage[]> {
  const all: RowPage[] = [];
  for await (const page of iterable) all.push(page);
  return all;
}

function shuffled<T>(values: T[]): T[] {
  return values
    .map((value, i) => ({ value, sort: (i * 7919) % values.length }))
    .sort((a, b) => a.sort - b.sort)
    .map((x) => x.value);
}

/** JSON a double cannot hold: an integer beyond 2^53, a decimal beyond 17 digits, a JSON null, -0. */
const EXACT_JSON =
  '{"big": 12345678901234567890, "prec": 0.1000000000000000055511151231257827, "n": null, "arr": [1, 2.50, -0]}';

const T1 = '2024-05-01 10:00:00.000001+00';
const T2 = '2024-05-01 10:00:00.123456+00';
const T3 = '2024-05-02 00:00:00+00';

beforeAll(async () => {
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  // The source must not depend on the server's or database's time zone.
  await admin.query(`ALTER DATABASE ${database} SET timezone = 'Asia/Tokyo'`);
  await db.connect();
  await db.query(`
    CREATE TYPE mood AS ENUM ('sad', 'happy');
    CREATE TABLE types (
      id bigint PRIMARY KEY, big bigint, small smallint, int4 integer, num numeric(38,10), price numeric(10,2),
      real4 real, dbl double precision, flag boolean, day date, ts timestamp(6), ts0 timestamp, tstz timestamptz,
      js json, jsb jsonb, bin bytea, txt text, vc varchar(10), ch char(3), uid uuid, ints integer[], texts text[],
      tss timestamptz[], iv interval, tm time, feeling mood
    );
    INSERT INTO types VALUES (
      1, 9007199254740993, 7, 42, 1234567890123456789012345678.0123456789, 12.50,
      1.5, 0.1, true, '2024-01-01', '2024-02-03 04:05:06.123456', '2024-02-03 04:05:06', '2024-02-03 06:05:06.123456+02',
      '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": "x"}', '\\x000102ff', 'hello', 'vc', 'ab',
      '123e4567-e89b-12d3-a456-426614174000', '{1,2,NULL}', '{"a,b",NULL,"c\\"d"}',
      '{"2024-01-01 00:00:00+00"}', '1 day 02:00:00', '12:34:56', 'happy'
    );
    INSERT INTO types (id, big) VALUES (2, -9007199254740991);
    CREATE TABLE items (id integer, name text);
    CREATE TABLE events (id bigint PRIMARY KEY, updated_at timestamptz(6), note text);
    CREATE INDEX events_cursor ON events (updated_at, id);
    CREATE SCHEMA sales;
    CREATE TABLE sales.orders (id int PRIMARY KEY);
  `);
  const ids: (number | null)[] = [...Array.from({ length: 18 }, (_, i) => i + 1), null, null];
  for (const id of shuffled(ids)) {
    await db.query('INSERT INTO items VALUES ($1, $2)', [
      id,
      id === null ? `nameless-${randomBytes(2).toString('hex')}` : `item-${id}`,
    ]);
  }
  const events: [number, string | null][] = [
    ...[1, 2, 3].map((id): [number, string] => [id, T1]),
    ...Array.from({ length: 10 }, (_, i): [number, string] => [i + 4, T2]),
    ...[14, 15, 16].map((id): [number, string] => [id, T3]),
    [17, null],
  ];
  for (const [id, at] of shuffled(events)) {
    await db.query('INSERT INTO events VALUES ($1, $2, $3)', [id, at, `event-${id}`]);
  }
  await db.query('CREATE TABLE keyset_rows (scenario int, id int, updated_at timestamp(6), note text)');
  await db.query('INSERT INTO keyset_rows SELECT * FROM json_populate_recordset(null::keyset_rows, $1)', [
    JSON.stringify(KEYSET_ROWS),
  ]);
  source = await connect({ database, user: 'postgres' });
});

afterAll(async () => {
  await source?.close();
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
});

describeKeysetReads(
  () => source,
  (n) => `select id, updated_at, note from keyset_rows where scenario = ${n}`,
  'random()',
);

describe('postgres source', () => {
  it('checks the connection', async () => {
    await expect(source.check()).resolves.toBeUndefined();
  });

  it('reports a refused connection as transient, naming host and port', async () => {
    const refused = await connect({ database, user: 'postgres', port: 1 });
    try {
      const error = await refused.check().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransientError);
      expect((error as Error).message).toMatch(/127\.0\.0\.1:1\b/);
      expect((error as Error).message).toMatch(/connection refused/i);
      expect((error as Error).message).toMatch(/connection\.host and connection\.port/);
    } finally {
      await refused.close();
    }
  });

  it('reports a missing database as a configuration error', async () => {
    const wrong = await connect({ database: `${database}_missing`, user: 'postgres' });
    try {
      const error = await wrong.check().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectorConfigError);
      expect((error as Error).message).toMatch(/does not exist.*connection\.database/);
    } finally {
      await wrong.close();
    }
  });

  it('never shows the password in errors', async () => {
    const secret = 'hunter2-very-secret';
    const refused = await connect({ database, user: 'postgres', port: 1, password: secret });
    try {
      const error = (await refused.check().catch((e: unknown) => e)) as Error;
      expect(error.message).not.toContain(secret);
    } finally {
      await refused.close();
    }
  });

  it('describes a model with normalized and native types', async () => {
    const columns = await source.describe('select * from types');
    const byName = Object.fromEntries(columns.map((c) => [c.name, [c.type, c.nativeType]]));
    expect(byName).toEqual({
      id: ['integer', 'bigint'],
      big: ['integer', 'bigint'],
      small: ['integer', 'smallint'],
      int4: ['integer', 'integer'],
      num: ['number', 'numeric(38,10)'],
      price: ['number', 'numeric(10,2)'],
      real4: ['number', 'real'],
      dbl: ['number', 'double precision'],
      flag: ['boolean', 'boolean'],
      day: ['date', 'date'],
      ts: ['timestamp', 'timestamp(6) without time zone'],
      ts0: ['timestamp', 'timestamp without time zone'],
      tstz: ['timestamp', 'timestamp with time zone'],
      js: ['json', 'json'],
      jsb: ['json', 'jsonb'],
      bin: ['binary', 'bytea'],
      txt: ['string', 'text'],
      vc: ['string', 'character varying(10)'],
      ch: ['string', 'character(3)'],
      uid: ['string', 'uuid'],
      ints: ['json', 'integer[]'],
      texts: ['json', 'text[]'],
      tss: ['json', 'timestamp with time zone[]'],
      iv: ['string', 'interval'],
      tm: ['string', 'time without time zone'],
      feeling: ['string', 'mood'],
    });
    expect(columns.map((c) => c.name)).toEqual(Object.keys(byName));
  });

  it('normalizes every type', async () => {
    const [page] = await pages(source.read({ sql: 'select * from types', primaryKey: 'id', pageSize: 10 }));
    expect(page?.rows[0]).toEqual({
      id: 1,
      big: '9007199254740993',
      small: 7,
      int4: 42,
      num: '1234567890123456789012345678.0123456789',
      price: 12.5,
      real4: 1.5,
      dbl: 0.1,
      flag: true,
      day: '2024-01-01',
      ts: '2024-02-03T04:05:06.123456Z',
      ts0: '2024-02-03T04:05:06Z',
      tstz: '2024-02-03T04:05:06.123456Z',
      js: '{"a": [1, 2, {"b": null}]}',
      jsb: '{"a": "x", "z": 1}',
      bin: Buffer.from([0, 1, 2, 255]).toString('base64'),
      txt: 'hello',
      vc: 'vc',
      ch: 'ab ',
      uid: '123e4567-e89b-12d3-a456-426614174000',
      ints: '[1,2,null]',
      texts: '["a,b",null,"c\\"d"]',
      tss: '["2024-01-01T00:00:00Z"]',
      iv: '1 day 02:00:00',
      tm: '12:34:56',
      feeling: 'happy',
    });
    const second = page?.rows[1];
    expect(second?.big).toBe(-9007199254740991);
    expect(Object.entries(second ?? {}).filter(([k, v]) => k !== 'id' && k !== 'big' && v !== null)).toEqual([]);
    expect(page?.checkpoint).toEqual({ pk: 2 });
  });

  it('reads JSON as the exact text PostgreSQL holds, a JSON null apart from SQL NULL, and a negative zero', async () => {
    const [page] = await pages(
      source.read({
        sql: `select * from (values
                (1, '${EXACT_JSON}'::json, '${EXACT_JSON}'::jsonb, '-0'::float8,
                 '{12345678901234567890, 2.50}'::numeric[], '{-0, NaN, 1.5}'::float8[]),
                (2, 'null'::json, 'null'::jsonb, 0::float8, null, null),
                (3, null, null, null, null, null)) as v(id, js, jsb, dbl, nums, floats)`,
        primaryKey: 'id',
        pageSize: 10,
      }),
    );
    expect(page?.rows).toEqual([
      {
        id: 1,
        js: EXACT_JSON,
        // jsonb's own text: keys reordered, numbers exact (as numeric, which has no negative zero).
        jsb: '{"n": null, "arr": [1, 2.50, 0], "big": 12345678901234567890, "prec": 0.1000000000000000055511151231257827}',
        dbl: -0,
        nums: '[12345678901234567890,2.50]',
        // NaN has no JSON number: a string, as PostgreSQL's to_json writes it.
        floats: '[-0,"NaN",1.5]',
      },
      { id: 2, js: 'null', jsb: 'null', dbl: 0, nums: null, floats: null },
      { id: 3, js: null, jsb: null, dbl: null, nums: null, floats: null },
    ]);
    expect(Object.is(page?.rows[0]?.dbl, -0)).toBe(true);
    expect(Object.is(page?.rows[1]?.dbl, 0)).toBe(true);
  });

  it('keeps a date at midnight and a timestamp at midnight unshifted', async () => {
    const [page] = await pages(
      source.read({
        sql: `select 1 as id, date '2024-03-10' as d, timestamp '2024-03-10 00:00:00' as ts,
              timestamptz '2024-03-10 00:00:00+00' as tstz`,
        primaryKey: 'id',
        pageSize: 10,
      }),
    );
    expect(page?.rows).toEqual([{ id: 1, d: '2024-03-10', ts: '2024-03-10T00:00:00Z', tstz: '2024-03-10T00:00:00Z' }]);
    const [session] = await pages(
      source.read({ sql: "select 1 as id, current_setting('TimeZone') as tz", primaryKey: 'id', pageSize: 1 }),
    );
    expect(session?.rows).toEqual([{ id: 1, tz: 'UTC' }]);
  });

  it('reads the whole model in key order, rows without a key first, each row exactly once', async () => {
    const all = await pages(source.read({ sql: 'select * from items', primaryKey: 'id', pageSize: 3 }));
    expect(all[0]?.rows.map((r) => r.id)).toEqual([null, null]);
    expect(all[0]?.checkpoint).toBeUndefined();
    const keyed = all.slice(1);
    expect(keyed.map((p) => p.rows.length)).toEqual([3, 3, 3, 3, 3, 3]);
    for (const page of keyed) expect(page.checkpoint).toEqual({ pk: page.rows[page.rows.length - 1]?.id });
    const ids = keyed.flatMap((p) => p.rows.map((r) => r.id));
    expect(ids).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
    const names = all.flatMap((p) => p.rows.map((r) => r.name));
    expect(new Set(names).size).toBe(20);
  });

  it('pages rows without a key when there are more than a page of them', async () => {
    const sql = "select * from items union all select null, 'extra-' || id from items where id <= 5";
    const all = await pages(source.read({ sql, primaryKey: 'id', pageSize: 3 }));
    const unkeyed = all.filter((p) => p.checkpoint === undefined);
    expect(unkeyed.map((p) => p.rows.length)).toEqual([3, 3, 1]);
    expect(new Set(unkeyed.flatMap((p) => p.rows.map((r) => r.name))).size).toBe(7);
    expect(all.slice(unkeyed.length).flatMap((p) => p.rows.map((r) => r.id))).toHaveLength(18);
  });

  it('releases its connection when a reader stops early', async () => {
    for (let i = 0; i < 4; i++) {
      for await (const page of source.read({ sql: 'select * from items', primaryKey: 'id', pageSize: 1 })) {
        expect(page.rows).toHaveLength(1);
        break;
      }
    }
    await expect(source.check()).resolves.toBeUndefined();
  });

  it('resumes a full read after a checkpoint, binding the key back exactly', async () => {
    const rest = await pages(
      source.read({ sql: 'select * from items', primaryKey: 'id', pageSize: 3, after: { pk: 9 } }),
    );
    expect(rest.flatMap((p) => p.rows.map((r) => r.id))).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18]);
    expect(rest.every((p) => p.checkpoint !== undefined)).toBe(true);
    const big = await pages(
      source.read({
        sql: 'select * from (values (1::int8), (9007199254740993), (9007199254740994), (9007199254740995)) as v(id)',
        primaryKey: 'id',
        pageSize: 3,
        after: { pk: '9007199254740993' },
      }),
    );
    expect(big.flatMap((p) => p.rows.map((r) => r.id))).toEqual(['9007199254740994', '9007199254740995']);
  });

  it('reads incrementally by (cursor, key) when cursor values tie across pages', async () => {
    const request = { sql: 'select * from events', primaryKey: 'id', cursor: 'updated_at', pageSize: 3 } as const;
    const all = await pages(source.read(request));
    const ids = all.flatMap((p) => p.rows.map((r) => r.id));
    expect(ids).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(all[1]?.checkpoint).toEqual({ cursor: '2024-05-01T10:00:00.123456Z', pk: 6 });
    // Resume from every checkpoint: exactly the rest, nothing lost or repeated.
    for (const [i, page] of all.entries()) {
      const rest = await pages(source.read({ ...request, after: page.checkpoint }));
      const expected = all.slice(i + 1).flatMap((p) => p.rows.map((r) => r.id));
      expect(rest.flatMap((p) => p.rows.map((r) => r.id))).toEqual(expected);
    }
    const afterFirst = await pages(
      source.read({ ...request, after: { cursor: '2024-05-01T10:00:00.000001Z', pk: 3 } }),
    );
    expect(afterFirst.flatMap((p) => p.rows.map((r) => r.id))).toEqual(Array.from({ length: 13 }, (_, i) => i + 4));
  });

  it('binds checkpoints back in the column type (timestamp without time zone, text keys)', async () => {
    const request = {
      sql: "select 'k' || lpad(id::text, 3, '0') as key, updated_at::timestamp as updated_at from events",
      primaryKey: 'key',
      cursor: 'updated_at',
      pageSize: 3,
    } as const;
    const all = await pages(source.read(request));
    expect(all.flatMap((p) => p.rows.map((r) => r.key))).toHaveLength(16);
    const checkpoint = all[2]?.checkpoint as Checkpoint;
    expect(checkpoint).toEqual({ cursor: '2024-05-01T10:00:00.123456Z', pk: 'k009' });
    const rest = await pages(source.read({ ...request, after: checkpoint }));
    expect(rest.flatMap((p) => p.rows.map((r) => r.key))).toEqual(
      Array.from({ length: 7 }, (_, i) => `k${String(i + 10).padStart(3, '0')}`),
    );
  });

  it('gives the highest (cursor, key) as watermark', async () => {
    await expect(source.watermark('select * from events', 'updated_at', 'id')).resolves.toEqual({
      cursor: '2024-05-02T00:00:00Z',
      pk: 16,
    });
    await expect(source.watermark('select * from events where false', 'updated_at', 'id')).resolves.toBeUndefined();
  });

  it('streams primary keys in pages', async () => {
    const all: unknown[][] = [];
    for await (const keys of source.readKeys('select * from items', 'id', 5)) all.push(keys);
    expect(all.map((k) => k.length)).toEqual([5, 5, 5, 3]);
    expect(all.flat()).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
  });

  it('lists the tables of user schemas', async () => {
    const tables = await source.listTables();
    expect(tables).toEqual(['public.events', 'public.items', 'public.keyset_rows', 'public.types', 'sales.orders']);
  });

  it('reports bad model SQL as a configuration error', async () => {
    const error = await source.describe('select * from nope').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect((error as Error).message).toMatch(/model SQL.*"nope" does not exist/);
    const reading = await pages(source.read({ sql: 'selec 1', primaryKey: 'id', pageSize: 3 })).catch(
      (e: unknown) => e,
    );
    expect(reading).toBeInstanceOf(ConnectorConfigError);
    const missing = await pages(source.read({ sql: 'select * from items', primaryKey: 'nope', pageSize: 3 })).catch(
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(ConnectorConfigError);
    expect((missing as Error).message).toMatch(/no column "nope"/);
  });
});
