import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint, RowPage, SourceConnection } from '#connectors/sdk/source';
import { mysqlSource } from '#connectors/sources/mysql/index';
import { ConnectorConfigError, TransientError } from '#core/errors';
import { describeKeysetReads, KEYSET_ROWS } from './keyset-reads.ts';

// A local time zone far from UTC: any date or timestamp parsed through a JS Date would shift.
process.env.TZ = 'Pacific/Kiritimati';

const HOST = '127.0.0.1';
const database = `backflow_src_${randomBytes(6).toString('hex')}`;
let db: mysql.Connection;
let source: SourceConnection;

function connect(connection: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<SourceConnection> {
  const options = mysqlSource.optionsSchema.parse({ connection, ...extra });
  return mysqlSource.connect(options, { projectDir: process.cwd() });
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

const T1 = '2024-05-01 10:00:00.000001';
const T2 = '2024-05-01 10:00:00.123456';
const T3 = '2024-05-02 00:00:00';

beforeAll(async () => {
  db = await mysql.createConnection({ host: HOST, port: 3306, user: 'root', multipleStatements: true });
  await db.query(`CREATE DATABASE \`${database}\``);
  await db.query(`USE \`${database}\``);
  // TIMESTAMP values are written from a session two hours east of UTC: stored (and read) in UTC.
  await db.query(`SET time_zone = '+02:00'`);
  await db.query(`
    CREATE TABLE types (
      id bigint PRIMARY KEY, big bigint, ubig bigint unsigned, small smallint, i int, ti tinyint, flag tinyint(1),
      bo boolean, num decimal(38,10), price decimal(10,2), f float, dbl double, day date, dtm datetime(6),
      dt0 datetime, ts timestamp(6) NULL, tm time, js json, bl blob, vb varbinary(16), txt text, vc varchar(20),
      ch char(3), en enum('a','b'), uid char(36), yr year
    );
    INSERT INTO types VALUES (
      1, 9007199254740993, 18446744073709551615, 7, 42, -3, 1,
      false, 1234567890123456789012345678.0123456789, 12.50, 1.5, 0.1, '2024-01-01', '2024-02-03 04:05:06.123456',
      '2024-02-03 04:05:06', '2024-02-03 06:05:06.123456', '12:34:56', '{"a": [1, 2, {"b": null}]}', x'000102ff',
      x'cafe', 'hello', 'vc', 'ab', 'b', '123e4567-e89b-12d3-a456-426614174000', 2024
    );
    INSERT INTO types (id, big) VALUES (2, -9007199254740991);
    CREATE TABLE items (id int NULL, name varchar(50));
    CREATE TABLE events (id bigint PRIMARY KEY, updated_at datetime(6), changed_at timestamp(6) NULL, note text);
    CREATE INDEX events_cursor ON events (updated_at, id);
    CREATE TABLE bigkeys (id bigint unsigned PRIMARY KEY);
    INSERT INTO bigkeys VALUES (1), (18446744073709551613), (18446744073709551614), (18446744073709551615);
    CREATE TABLE exact (id int PRIMARY KEY, js json, dbl double);
  `);
  await db.query(`INSERT INTO exact VALUES (1, ?, -0e0), (2, 'null', 0), (3, NULL, NULL)`, [EXACT_JSON]);
  const ids: (number | null)[] = [...Array.from({ length: 18 }, (_, i) => i + 1), null, null];
  for (const id of shuffled(ids)) {
    await db.query('INSERT INTO items VALUES (?, ?)', [
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
  await db.query(`SET time_zone = '+00:00'`);
  for (const [id, at] of shuffled(events)) {
    await db.query('INSERT INTO events VALUES (?, ?, ?, ?)', [id, at, at, `event-${id}`]);
  }
  await db.query(`
    CREATE TABLE keyset_rows (scenario int, id int NULL, updated_at datetime(6) NULL, note varchar(50));
    CREATE TABLE ci_keys (
      k varchar(10) COLLATE utf8mb4_general_ci NULL, c varchar(10) COLLATE utf8mb4_general_ci, note int
    );
    INSERT INTO ci_keys VALUES ('a', 'x', 1), ('B', 'X', 2), ('A', 'x', 3), ('a ', 'X ', 4), ('ä', 'x', 5),
      ('b', 'y', 6), ('a', 'x', 7), ('Ä', 'Y', 8), ('á', 'x', 9), ('b ', 'y', 10), ('c', 'x', 11);
  `);
  await db.query('INSERT INTO keyset_rows VALUES ?', [
    KEYSET_ROWS.map((r) => [r.scenario, r.id, r.updated_at, r.note]),
  ]);
  source = await connect({ database, user: 'root' });
});

afterAll(async () => {
  await source?.close();
  await db?.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await db?.end();
});

describeKeysetReads(
  () => source,
  (n) => `select id, updated_at, note from keyset_rows where scenario = ${n}`,
  'rand()',
);

describe('mysql source', () => {
  it('checks the connection', async () => {
    await expect(source.check()).resolves.toBeUndefined();
  });

  it('reports a refused connection as transient, naming host and port', async () => {
    const refused = await connect({ database, user: 'root', port: 1 });
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
    const wrong = await connect({ database: `${database}_missing`, user: 'root' });
    try {
      const error = await wrong.check().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectorConfigError);
      expect((error as Error).message).toMatch(/Unknown database.*connection\.database/);
    } finally {
      await wrong.close();
    }
  });

  it('describes a model with normalized and native types', async () => {
    const columns = await source.describe('select * from types');
    const byName = Object.fromEntries(columns.map((c) => [c.name, [c.type, c.nativeType]]));
    expect(byName).toEqual({
      id: ['integer', 'bigint'],
      big: ['integer', 'bigint'],
      ubig: ['integer', 'bigint unsigned'],
      small: ['integer', 'smallint'],
      i: ['integer', 'int'],
      ti: ['integer', 'tinyint'],
      flag: ['boolean', 'tinyint(1)'],
      bo: ['boolean', 'tinyint(1)'],
      num: ['number', 'decimal(38,10)'],
      price: ['number', 'decimal(10,2)'],
      f: ['number', 'float'],
      dbl: ['number', 'double'],
      day: ['date', 'date'],
      dtm: ['timestamp', 'datetime(6)'],
      dt0: ['timestamp', 'datetime'],
      ts: ['timestamp', 'timestamp(6)'],
      tm: ['string', 'time'],
      js: ['json', 'json'],
      bl: ['binary', 'blob'],
      vb: ['binary', 'varbinary(16)'],
      txt: ['string', 'text'],
      vc: ['string', 'varchar'],
      ch: ['string', 'char'],
      en: ['string', 'enum'],
      uid: ['string', 'char'],
      yr: ['integer', 'year'],
    });
    expect(columns.map((c) => c.name)).toEqual(Object.keys(byName));
  });

  it('normalizes every type', async () => {
    const [page] = await pages(source.read({ sql: 'select * from types', primaryKey: 'id', pageSize: 10 }));
    expect(page?.rows[0]).toEqual({
      id: 1,
      big: '9007199254740993',
      ubig: '18446744073709551615',
      small: 7,
      i: 42,
      ti: -3,
      flag: true,
      bo: false,
      num: '1234567890123456789012345678.0123456789',
      price: 12.5,
      f: 1.5,
      dbl: 0.1,
      day: '2024-01-01',
      dtm: '2024-02-03T04:05:06.123456Z',
      dt0: '2024-02-03T04:05:06Z',
      ts: '2024-02-03T04:05:06.123456Z',
      tm: '12:34:56',
      js: '{"a": [1, 2, {"b": null}]}',
      bl: Buffer.from([0, 1, 2, 255]).toString('base64'),
      vb: Buffer.from([0xca, 0xfe]).toString('base64'),
      txt: 'hello',
      vc: 'vc',
      ch: 'ab',
      en: 'b',
      uid: '123e4567-e89b-12d3-a456-426614174000',
      yr: 2024,
    });
    const second = page?.rows[1];
    expect(second?.big).toBe(-9007199254740991);
    expect(Object.entries(second ?? {}).filter(([k, v]) => k !== 'id' && k !== 'big' && v !== null)).toEqual([]);
    expect(page?.checkpoint).toEqual({ pk: 2 });
  });

  it('reads JSON as the exact text the server holds, a JSON null apart from SQL NULL, and doubles as printed', async () => {
    const [page] = await pages(source.read({ sql: 'select * from exact', primaryKey: 'id', pageSize: 10 }));
    // The server's own text of each value: JSON as stored (MariaDB keeps the text as written;
    // MySQL normalizes it), and the double as printed (MariaDB stores -0e0 as 0, MySQL keeps -0).
    const [printed] = (await db.query(
      'SELECT id, cast(js AS char) AS js, concat(dbl) AS dbl FROM exact ORDER BY id',
    )) as [{ id: number; js: string | null; dbl: string | null }[], unknown];
    expect(printed[0]?.js).toContain('12345678901234567890');
    expect(page?.rows).toEqual(
      printed.map((p) => ({ id: p.id, js: p.js, dbl: p.dbl === null ? null : Number(p.dbl) })),
    );
    expect(page?.rows[1]?.js).toBe('null');
    expect(page?.rows[2]?.js).toBeNull();
    expect(Object.is(page?.rows[0]?.dbl, Number(printed[0]?.dbl))).toBe(true);
    const [[server]] = (await db.query('SELECT version() AS v')) as [{ v: string }[], unknown];
    if (/mariadb/i.test(server!.v)) expect(page?.rows[0]?.js).toBe(EXACT_JSON);
  });

  it('keeps a date at midnight and a timestamp at midnight unshifted', async () => {
    const [page] = await pages(
      source.read({
        sql: `select 1 as id, date '2024-03-10' as d, timestamp '2024-03-10 00:00:00' as ts`,
        primaryKey: 'id',
        pageSize: 10,
      }),
    );
    expect(page?.rows).toEqual([{ id: 1, d: '2024-03-10', ts: '2024-03-10T00:00:00Z' }]);
    // TIMESTAMP columns are shown in the session time zone: it must be UTC whatever the server's is.
    const [session] = await pages(
      source.read({ sql: 'select 1 as id, @@session.time_zone as tz', primaryKey: 'id', pageSize: 1 }),
    );
    expect(session?.rows).toEqual([{ id: 1, tz: '+00:00' }]);
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
    const sql = "select * from items union all select null, concat('extra-', id) from items where id <= 5";
    const all = await pages(source.read({ sql, primaryKey: 'id', pageSize: 3 }));
    const unkeyed = all.filter((p) => p.checkpoint === undefined);
    expect(unkeyed.map((p) => p.rows.length)).toEqual([3, 3, 1]);
    expect(new Set(unkeyed.flatMap((p) => p.rows.map((r) => r.name))).size).toBe(7);
  });

  it('resumes a full read after a checkpoint, binding the key back exactly', async () => {
    const rest = await pages(
      source.read({ sql: 'select * from items', primaryKey: 'id', pageSize: 3, after: { pk: 9 } }),
    );
    expect(rest.flatMap((p) => p.rows.map((r) => r.id))).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18]);
    const big = await pages(
      source.read({
        sql: 'select * from bigkeys',
        primaryKey: 'id',
        pageSize: 3,
        after: { pk: '18446744073709551613' },
      }),
    );
    expect(big.flatMap((p) => p.rows.map((r) => r.id))).toEqual(['18446744073709551614', '18446744073709551615']);
  });

  it('binds text keys back exactly, whatever they hold, and leaves a ? in the model alone', async () => {
    const sql = `select k, '?' as q from (select 'a''b' as k union all select 'a\\\\b' union all select 'é'
      union all select 'z?' union all select '') as x where k <> '?'`;
    const all = await pages(source.read({ sql, primaryKey: 'k', pageSize: 1 }));
    // Text keys go in the order of their UTF-8 bytes: 'z?' (7a) before 'é' (c3 a9).
    expect(all.flatMap((p) => p.rows.map((r) => r.k))).toEqual(['', "a'b", 'a\\b', 'z?', 'é']);
    expect(all.every((p) => p.rows.every((r) => r.q === '?'))).toBe(true);
    const error = await pages(
      source.read({ sql: 'select * from events', primaryKey: 'id', pageSize: 3, after: { pk: "1' or '1" } }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect((error as Error).message).toMatch(/does not fit column "id".*--full/);
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

  it('binds checkpoints back in the column type (TIMESTAMP cursor, text keys)', async () => {
    const request = {
      sql: "select concat('k', lpad(id, 3, '0')) as code, changed_at from events",
      primaryKey: 'code',
      cursor: 'changed_at',
      pageSize: 3,
    } as const;
    const all = await pages(source.read(request));
    expect(all.flatMap((p) => p.rows.map((r) => r.code))).toHaveLength(16);
    const checkpoint = all[2]?.checkpoint as Checkpoint;
    expect(checkpoint).toEqual({ cursor: '2024-05-01T10:00:00.123456Z', pk: 'k009' });
    const rest = await pages(source.read({ ...request, after: checkpoint }));
    expect(rest.flatMap((p) => p.rows.map((r) => r.code))).toEqual(
      Array.from({ length: 7 }, (_, i) => `k${String(i + 10).padStart(3, '0')}`),
    );
  });

  it('reads text keys binary-exact under a case- and accent-insensitive PAD SPACE collation', async () => {
    // utf8mb4_general_ci holds 'a' = 'A' = 'a ' = 'ä': a keyset boundary compared by the collation
    // would skip all but one of them. Backflow sees eight different keys here.
    const sql = 'select * from ci_keys';
    const everyNote = Array.from({ length: 11 }, (_, i) => i + 1);
    for (const pageSize of [1, 2, 3]) {
      const all = await pages(source.read({ sql, primaryKey: 'k', pageSize }));
      expect(all.flatMap((p) => p.rows.map((r) => r.note)).sort((a, b) => Number(a) - Number(b))).toEqual(everyNote);
      for (const [i, page] of all.entries()) {
        const rest = await pages(source.read({ sql, primaryKey: 'k', pageSize, after: page.checkpoint }));
        expect(rest.flatMap((p) => p.rows.map((r) => r.note))).toEqual(
          all.slice(i + 1).flatMap((p) => p.rows.map((r) => r.note)),
        );
      }
      const incremental = await pages(source.read({ sql, primaryKey: 'k', cursor: 'c', pageSize }));
      const read = incremental.flatMap((p) => p.rows.map((r) => r.note)).sort((a, b) => Number(a) - Number(b));
      expect(read).toEqual(everyNote);
    }
    const keys: unknown[] = [];
    for await (const page of source.readKeys(sql, 'k', 2)) keys.push(...page);
    expect([...new Set(keys)]).toEqual(['A', 'B', 'a', 'a ', 'b', 'b ', 'c', 'Ä', 'á', 'ä']);
    await expect(source.duplicateKeys(sql, 'k', 10)).resolves.toEqual(['a']);
    // The watermark is the highest (cursor, key) in that same order: 'y' (79) above 'Y' (59) and 'x'.
    await expect(source.watermark(sql, 'c', 'k')).resolves.toEqual({ cursor: 'y', pk: 'b ' });
  });

  it('gives the highest (cursor, key) as watermark', async () => {
    await expect(source.watermark('select * from events', 'updated_at', 'id')).resolves.toEqual({
      cursor: '2024-05-02T00:00:00.000000Z',
      pk: 16,
    });
    await expect(source.watermark('select * from events where false', 'updated_at', 'id')).resolves.toBeUndefined();
  });

  it('streams primary keys in pages', async () => {
    const all: unknown[][] = [];
    for await (const keys of source.readKeys('select * from items', 'id', 5)) all.push(keys);
    expect(all.map((k) => k.length)).toEqual([5, 5, 5, 3]);
    expect(all.flat()).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
    const big: unknown[][] = [];
    for await (const keys of source.readKeys('select * from bigkeys', 'id', 2)) big.push(keys);
    expect(big).toEqual([
      [1, '18446744073709551613'],
      ['18446744073709551614', '18446744073709551615'],
    ]);
  });

  it('lists tables as schema.table', async () => {
    const tables = await source.listTables();
    expect(tables.filter((t) => t.startsWith(`${database}.`))).toEqual(
      ['bigkeys', 'ci_keys', 'events', 'exact', 'items', 'keyset_rows', 'types'].map((t) => `${database}.${t}`),
    );
    expect(tables.some((t) => t.startsWith('mysql.') || t.startsWith('information_schema.'))).toBe(false);
  });

  it('reports bad model SQL as a configuration error', async () => {
    const error = await source.describe('select * from nope').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect((error as Error).message).toMatch(/model SQL.*nope.*doesn't exist/);
    const parse = await source.describe('selec 1').catch((e: unknown) => e);
    expect(parse).toBeInstanceOf(ConnectorConfigError);
    expect((parse as Error).message).toMatch(/SQL syntax/);
    const missing = await pages(source.read({ sql: 'select * from items', primaryKey: 'nope', pageSize: 3 })).catch(
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(ConnectorConfigError);
    expect((missing as Error).message).toMatch(/no column "nope"/);
  });
});
