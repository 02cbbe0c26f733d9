import { randomBytes } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileRules, type Dialect, type Rule, segmentSql } from '#core/segments';

/**
 * Segment rules compiled to each dialect and run by the real database: PostgreSQL and MariaDB on
 * 127.0.0.1, DuckDB in process. The same rows, the same rules, the same members everywhere.
 * Snowflake's compiled text is checked as text (its fake runs on DuckDB, not Snowflake's parser).
 */
const database = `backflow_seg_${randomBytes(5).toString('hex')}`;
const DAY = 24 * 3600 * 1000;
const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

/** id, plan, ltv, email, note, signed_up (UTC), trial */
const ROWS: [number, string | null, number | null, string, string | null, string, boolean][] = [
  [1, 'trial', 10, 'a@x.test', "it's 100% fun", iso(now - 2 * DAY), true],
  [2, 'gold', 5000, 'b@x.test', 'back\\slash', iso(now - 40 * DAY), false],
  [3, 'trial', null, 'c@y.test', null, iso(now - 29 * DAY), true],
  [4, null, 250, 'd@x.test', 'under_score', iso(now - 400 * DAY), false],
  [5, 'silver', 1200.5, 'e@y.test', '50%', iso(now - 1 * DAY), false],
];

const SELECT = 'select id, plan, ltv, email, note, signed_up, trial from customers';

const CASES: { name: string; rule: Rule; members: number[] }[] = [
  {
    name: 'trial users who signed up in the last 30 days',
    rule: {
      all: [
        { column: 'plan', op: 'eq', value: 'trial' },
        { column: 'signed_up', op: 'within_last', value: '30 days' },
      ],
    },
    members: [1, 3],
  },
  { name: 'high value (gte)', rule: { all: [{ column: 'ltv', op: 'gte', value: 1200.5 }] }, members: [2, 5] },
  {
    name: 'plan is not gold (nulls included)',
    rule: { all: [{ column: 'plan', op: 'ne', value: 'gold' }] },
    members: [1, 3, 4, 5],
  },
  { name: 'in a list', rule: { any: [{ column: 'plan', op: 'in', value: ['gold', 'silver'] }] }, members: [2, 5] },
  {
    name: 'not in a list (nulls included)',
    rule: { all: [{ column: 'plan', op: 'not_in', value: ['trial'] }] },
    members: [2, 4, 5],
  },
  { name: 'is null', rule: { all: [{ column: 'ltv', op: 'is_null' }] }, members: [3] },
  {
    name: 'contains a quote, literally',
    rule: { all: [{ column: 'note', op: 'contains', value: "'s 100%" }] },
    members: [1],
  },
  {
    name: 'contains % and _ literally',
    rule: {
      any: [
        { column: 'note', op: 'contains', value: '50%' },
        { column: 'note', op: 'contains', value: 'r_s' },
      ],
    },
    members: [4, 5],
  },
  { name: 'a backslash literally', rule: { all: [{ column: 'note', op: 'contains', value: 'k\\s' }] }, members: [2] },
  { name: 'starts with', rule: { all: [{ column: 'email', op: 'starts_with', value: 'c@' }] }, members: [3] },
  { name: 'a boolean', rule: { all: [{ column: 'trial', op: 'eq', value: true }] }, members: [1, 3] },
  {
    name: 'nested any/all, and older than a year',
    rule: {
      any: [
        {
          all: [
            { column: 'plan', op: 'eq', value: 'silver' },
            { column: 'ltv', op: 'gt', value: 1000 },
          ],
        },
        { column: 'signed_up', op: 'not_within_last', value: '1 year' },
      ],
    },
    members: [4, 5],
  },
];

let pgClient: pg.Client;
let my: mysql.Connection;
let duck: Awaited<ReturnType<DuckDBInstance['connect']>>;

beforeAll(async () => {
  const admin = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`create database ${database}`);
  await admin.end();
  pgClient = new pg.Client({ host: '127.0.0.1', user: 'postgres', database });
  await pgClient.connect();
  await pgClient.query(
    'create table customers (id int primary key, plan text, ltv numeric, email text, note text, signed_up timestamptz, trial boolean)',
  );
  my = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
  await my.query(`create database ${database}`);
  await my.query(`use ${database}`);
  await my.query("set time_zone = '+00:00'");
  await my.query(
    'create table customers (id int primary key, plan varchar(20), ltv decimal(12,2), email varchar(50), note varchar(50), signed_up datetime(3), trial boolean)',
  );
  duck = await (await DuckDBInstance.create(':memory:')).connect();
  await duck.run(
    "set TimeZone = 'UTC'; create table customers (id int primary key, plan varchar, ltv decimal(12,2), email varchar, note varchar, signed_up timestamptz, trial boolean)",
  );
  for (const row of ROWS) {
    const values = [row[0], row[1], row[2], row[3], row[4], `${row[5]}+00`, row[6]];
    await pgClient.query('insert into customers values ($1, $2, $3, $4, $5, $6, $7)', values);
    await my.query('insert into customers values (?, ?, ?, ?, ?, ?, ?)', [...values.slice(0, 5), row[5], row[6]]);
    await duck.run('insert into customers values ($1, $2, $3, $4, $5, $6::timestamptz, $7)', values as never);
  }
});

afterAll(async () => {
  await pgClient?.end();
  const admin = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`drop database if exists ${database} with (force)`);
  await admin.end();
  await my?.query(`drop database if exists ${database}`);
  await my?.end();
  duck?.closeSync();
});

async function members(dialect: Dialect, rule: Rule): Promise<number[]> {
  const sql = `${segmentSql(SELECT, compileRules(rule, dialect))} order by id`;
  if (dialect === 'postgres') return (await pgClient.query(sql)).rows.map((r) => Number(r.id));
  if (dialect === 'mysql') return ((await my.query(sql))[0] as { id: number }[]).map((r) => Number(r.id));
  return (await (await duck.run(sql)).getRowObjects()).map((r) => Number(r.id));
}

describe('segment rules compiled to each source dialect, run by the real database', () => {
  for (const dialect of ['postgres', 'mysql', 'duckdb'] as const) {
    for (const c of CASES) {
      it(`${dialect}: ${c.name}`, async () => {
        expect(await members(dialect, c.rule)).toEqual(c.members);
      });
    }
  }

  it('snowflake: dateadd for periods, unquoted simple names, standard string literals', () => {
    expect(compileRules(CASES[0]!.rule, 'snowflake')).toBe(
      "(plan = 'trial' AND signed_up >= dateadd(day, -30, current_timestamp()))",
    );
    expect(compileRules({ all: [{ column: 'note', op: 'contains', value: "it's" }] }, 'snowflake')).toBe(
      "(note LIKE '%it''s%' ESCAPE '\\')",
    );
  });
});
