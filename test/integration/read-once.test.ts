import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBConnection as DuckConnection, type DuckDBConnection } from '@duckdb/node-api';
import mysqlCore from 'mysql2';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDuckDb } from '#connectors/duckdb/database';
import { manifests } from '#connectors/manifests';
import type { SourceConnection } from '#connectors/sdk/source';
import { duckdbSource } from '#connectors/sources/duckdb/index';
import { mysqlSource } from '#connectors/sources/mysql/index';
import { postgresSource } from '#connectors/sources/postgres/index';
import { snowflakeSource } from '#connectors/sources/snowflake/index';
import { parseConfig } from '#core/config/load';
import { planSync } from '#core/planner';
import { noMetrics, systemClock } from '#core/ports';
import { MemoryLaneQueue, MemoryStateStore } from '#test/fakes/memory-ports';
import { type FakeSnowflake, startFakeSnowflake } from '#test/fakes/snowflake/server';

/**
 * "The warehouse read once per plan invocation", end to end: planSync over each real source
 * (PostgreSQL and MariaDB servers, embedded DuckDB, the Snowflake fake with the real driver),
 * counting the statements each sends at the driver level (a wrapper around the real driver's
 * query method: the server is real, only the counting is added). A full read of many pages runs
 * the model once; a plan continued in fresh invocations runs it once per invocation (Snowflake:
 * once in all, the continuations read the kept result by query id); every row is read once.
 */

const TABLE = 'read_once';
const PAGE = 100;
/** Keys 1..1000; key 500 twice and key 900 three times (repeated keys), and 3 rows without a key. */
const ROWS: { id: number | null; name: string; second: number }[] = [
  ...Array.from({ length: 1000 }, (_, i) => ({ id: i + 1, name: `n${i + 1}`, second: i + 1 })),
  { id: 500, name: 'copy', second: 500 },
  { id: 900, name: 'copy', second: 900 },
  { id: 900, name: 'copy2', second: 900 },
  ...[1, 2, 3].map((i) => ({ id: null, name: `nokey${i}`, second: i })),
];
/** Rows read, invalid ones (every copy of a repeated key, every row without a key), records queued. */
const TOTAL = ROWS.length;
const INVALID = 2 + 3 + 3;
const QUEUED = 998;
const stamp = (second: number) => new Date(Date.UTC(2024, 0, 1) + second * 1000).toISOString().slice(0, 19);

const yml = `version: 1
sources:
  wh: { type: duckdb }
models:
  m: { source: wh, sql: select * from ${TABLE}, primary_key: id, cursor: updated_at, page_size: ${PAGE} }
destinations:
  crm: { type: webhook, url: "http://127.0.0.1:1/" }
syncs:
  s:
    model: m
    destination: crm
    object: people
    mode: upsert
    match: { id: id }
    mappings: { name: name }
    lock_lease_seconds: 30
`;

/** Statements that name the model, by kind, as the driver was asked to run them. */
class Statements {
  readonly texts: string[] = [];
  record(text: string): void {
    if (text.includes(TABLE)) this.texts.push(text.trim());
  }
  /** Statements that read the model's rows (PostgreSQL: the DECLARE of the cursor its FETCHes read). */
  get reads(): string[] {
    return this.texts.filter(
      (t) => !/ limit 0$/i.test(t) && !/having count\(\*\) > 1/i.test(t) && !/ desc( nulls last)? limit 1$/i.test(t),
    );
  }
  get duplicates(): string[] {
    return this.texts.filter((t) => /having count\(\*\) > 1/i.test(t));
  }
  get watermarks(): string[] {
    return this.texts.filter((t) => / desc( nulls last)? limit 1$/i.test(t));
  }
  reset(): void {
    this.texts.length = 0;
  }
}

/** Wraps `name` where the prototype chain of `proto` defines it, recording each statement's text. */
function countOn(proto: object, name: string, statements: Statements, textOf: (arg: unknown) => string): () => void {
  let owner: object | null = proto;
  while (owner && !Object.hasOwn(owner, name)) owner = Object.getPrototypeOf(owner) as object | null;
  if (!owner) throw new Error(`no method ${name}`);
  const original = (owner as Record<string, unknown>)[name] as (...args: unknown[]) => unknown;
  (owner as Record<string, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
    statements.record(textOf(args[0]));
    return original.apply(this, args);
  };
  const target = owner;
  return () => {
    (target as Record<string, unknown>)[name] = original;
  };
}

const textOf = (arg: unknown): string =>
  typeof arg === 'string'
    ? arg
    : String((arg as { text?: string; sql?: string })?.text ?? (arg as { sql?: string })?.sql ?? '');

interface Harness {
  readonly statements: Statements;
  connect(): Promise<SourceConnection>;
  /** Changes the row of key `id` (every copy, or the one named `name`) to a later cursor value and a new name. */
  touch(id: number, name?: string): Promise<void>;
  /** Statements counted by the fake (Snowflake) rather than a driver wrapper. */
  readonly settle?: () => void;
}

function setup() {
  const config = parseConfig(yml, '/tmp/backflow.yml', manifests, {});
  return { sync: config.syncs.s!, model: config.models.m! };
}

/**
 * Plans the sync until it is done, each invocation on a fresh connection (as a fresh Lambda
 * has) believing it has no time left: it hands over after every page with a checkpoint.
 */
async function planInInvocations(harness: Harness, state: MemoryStateStore, queue: MemoryLaneQueue, full: boolean) {
  const { sync, model } = setup();
  const reads: number[] = [];
  for (let i = 0; i < 100; i++) {
    const source = await harness.connect();
    harness.statements.reset();
    try {
      const outcome = await planSync(
        { sync, model, lane: 'crm', batchSize: 50, full, remainingMs: () => 0, reserveMs: 1 },
        { state, queue, clock: systemClock, metrics: noMetrics, source },
      );
      harness.settle?.();
      reads.push(harness.statements.reads.length);
      if (outcome.status === 'planned') return { reads, run: outcome.run };
    } finally {
      await source.close();
    }
  }
  throw new Error('the plan did not finish in 100 invocations');
}

function describeReadOnce(name: string, harness: () => Harness, oncePerPlan = false): void {
  describe(`${name}: the model runs once per plan invocation`, () => {
    it(`a full read of ${Math.ceil(TOTAL / PAGE)}+ pages runs the model once, every row read once`, async () => {
      const h = harness();
      const { sync, model } = setup();
      const state = new MemoryStateStore();
      const queue = new MemoryLaneQueue();
      const source = await h.connect();
      h.statements.reset();
      try {
        const outcome = await planSync(
          { sync, model, lane: 'crm', batchSize: 50, full: true },
          { state, queue, clock: systemClock, metrics: noMetrics, source },
        );
        h.settle?.();
        expect(outcome.status).toBe('planned');
        if (outcome.status !== 'planned') return;
        expect(outcome.run.counters).toMatchObject({ extracted: TOTAL, invalid: INVALID, queued: QUEUED });
        expect(h.statements.reads).toHaveLength(1);
        expect(h.statements.reads[0]).toMatch(/order by/i);
        expect(h.statements.reads[0]).not.toMatch(/limit/i);
        // A full read of a cursor model notes the watermark first (top-1), and asks no repeated keys.
        expect(h.statements.watermarks).toHaveLength(1);
        expect(h.statements.duplicates).toHaveLength(0);
      } finally {
        await source.close();
      }
    });

    it('a plan continued in fresh invocations runs the model at most once each, losing and repeating no row; an incremental run adds one cheap query for repeated keys', async () => {
      const h = harness();
      const state = new MemoryStateStore();
      const queue = new MemoryLaneQueue();
      const { reads, run } = await planInInvocations(h, state, queue, true);
      expect(reads.length).toBeGreaterThanOrEqual(10);
      if (oncePerPlan) {
        // The continuations read the first invocation's kept result by query id: nothing runs again.
        expect(reads).toEqual([1, ...reads.slice(1).map(() => 0)]);
      } else {
        expect(reads.every((n) => n === 1)).toBe(true);
      }
      expect(run.counters).toMatchObject({ extracted: TOTAL, invalid: INVALID, queued: QUEUED });
      const keys = queue.sent.flatMap((s) => s.message.records.map((r) => r.key));
      expect(keys).toHaveLength(QUEUED);
      expect(new Set(keys).size).toBe(QUEUED);
      expect(keys).not.toContain('500');
      expect(keys).not.toContain('900');

      // Incremental: key 7 changed, and one copy of the repeated key 500. Both copies of 500 stay
      // invalid (the unchanged copy is found by a group-by over the key only), 900 too, none sent.
      await h.touch(7);
      await h.touch(500, 'copy');
      const sent = queue.sent.length;
      const { sync, model } = setup();
      const source = await h.connect();
      h.statements.reset();
      try {
        const outcome = await planSync(
          { sync, model, lane: 'crm', batchSize: 50 },
          { state, queue, clock: systemClock, metrics: noMetrics, source },
        );
        h.settle?.();
        expect(outcome.status).toBe('planned');
        if (outcome.status !== 'planned') return;
        expect(h.statements.reads).toHaveLength(1);
        expect(h.statements.duplicates).toHaveLength(1);
        expect(h.statements.duplicates[0]).toMatch(
          /^select \S+ from \(select \* from read_once\) as model where \S+ is not null group by \S+ having count\(\*\) > 1/i,
        );
        expect(h.statements.watermarks).toHaveLength(0);
        expect(outcome.run.counters).toMatchObject({ extracted: 2, queued: 1, invalid: 2 });
      } finally {
        await source.close();
      }
      expect(queue.sent.slice(sent).flatMap((s) => s.message.records.map((r) => r.key))).toEqual(['7']);
    });
  });
}

// PostgreSQL
const pgDatabase = `backflow_once_${randomBytes(6).toString('hex')}`;
const pgAdmin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
const pgDb = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: pgDatabase });
const pgStatements = new Statements();
// MySQL / MariaDB
const myDatabase = `backflow_once_${randomBytes(6).toString('hex')}`;
let myDb: mysql.Connection;
const myStatements = new Statements();
// DuckDB
const projectDir = mkdtempSync(path.join(os.tmpdir(), 'backflow-read-once-'));
let duck: DuckDBConnection;
const duckStatements = new Statements();
// Snowflake
let fake: FakeSnowflake;
const sfStatements = new Statements();
let sfSeen = 0;
const restore: (() => void)[] = [];

beforeAll(async () => {
  const values = ROWS.map((r) => [r.id, r.name, stamp(r.second)] as const);
  await pgAdmin.connect();
  await pgAdmin.query(`CREATE DATABASE ${pgDatabase}`);
  await pgDb.connect();
  await pgDb.query(`CREATE TABLE ${TABLE} (id integer, name text, updated_at timestamp)`);
  await pgDb.query(`INSERT INTO ${TABLE} SELECT * FROM unnest($1::int[], $2::text[], $3::timestamp[])`, [
    values.map((v) => v[0]),
    values.map((v) => v[1]),
    values.map((v) => v[2]),
  ]);

  myDb = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root' });
  await myDb.query(`CREATE DATABASE \`${myDatabase}\``);
  await myDb.query(`USE \`${myDatabase}\``);
  await myDb.query(`CREATE TABLE ${TABLE} (id int, name varchar(20), updated_at datetime)`);
  await myDb.query(`INSERT INTO ${TABLE} VALUES ?`, [values.map((v) => [...v])]);

  duck = await openDuckDb('warehouse.duckdb', { projectDir });
  await duck.run(`create table ${TABLE} (id integer, name varchar, updated_at timestamp)`);
  const appender = await duck.createAppender(TABLE);
  for (const [id, name, at] of values) {
    if (id === null) appender.appendNull();
    else appender.appendInteger(id);
    appender.appendVarchar(name);
    appender.appendVarchar(at);
    appender.endRow();
  }
  appender.closeSync();

  fake = await startFakeSnowflake({ users: { BACKFLOW: 'pw' }, chunkSize: 150 });
  await fake.db.run(`create table ${TABLE} (id integer, name varchar, updated_at timestamp)`);
  await fake.db.run(
    `insert into ${TABLE} select * from (values ${values.map(([id, name, at]) => `(${id ?? 'null'}, '${name}', timestamp '${at}')`).join(', ')})`,
  );

  restore.push(countOn(pg.Client.prototype, 'query', pgStatements, textOf));
  restore.push(countOn(mysqlCore.Connection.prototype, 'query', myStatements, textOf));
  restore.push(countOn(DuckConnection.prototype, 'run', duckStatements, textOf));
  restore.push(countOn(DuckConnection.prototype, 'stream', duckStatements, textOf));
});

afterAll(async () => {
  for (const undo of restore) undo();
  await pgDb.end();
  await pgAdmin.query(`DROP DATABASE IF EXISTS ${pgDatabase}`);
  await pgAdmin.end();
  await myDb?.query(`DROP DATABASE IF EXISTS \`${myDatabase}\``);
  await myDb?.end();
  duck?.closeSync();
  rmSync(projectDir, { recursive: true, force: true });
  await fake?.stop();
});

const later = "timestamp '2030-01-01 00:00:00'";

describeReadOnce('PostgreSQL (server-side cursor)', () => ({
  statements: pgStatements,
  connect: () =>
    postgresSource.connect(
      postgresSource.optionsSchema.parse({ connection: { host: '127.0.0.1', database: pgDatabase, user: 'postgres' } }),
      { projectDir },
    ),
  async touch(id, name) {
    await pgDb.query(
      `UPDATE ${TABLE} SET updated_at = ${later}, name = name || '!' WHERE id = $1${name ? ' AND name = $2' : ''}`,
      name ? [id, name] : [id],
    );
  },
}));

describeReadOnce('MariaDB/MySQL (streamed result)', () => ({
  statements: myStatements,
  connect: () =>
    mysqlSource.connect(
      mysqlSource.optionsSchema.parse({ connection: { host: '127.0.0.1', database: myDatabase, user: 'root' } }),
      { projectDir },
    ),
  async touch(id, name) {
    await myDb.query(
      `UPDATE ${TABLE} SET updated_at = '2030-01-01 00:00:00', name = concat(name, '!') WHERE id = ?${name ? ' AND name = ?' : ''}`,
      name ? [id, name] : [id],
    );
  },
}));

describeReadOnce('DuckDB (streamed result)', () => ({
  statements: duckStatements,
  connect: () => duckdbSource.connect(duckdbSource.optionsSchema.parse({ path: 'warehouse.duckdb' }), { projectDir }),
  async touch(id, name) {
    await duck.run(
      `update ${TABLE} set updated_at = ${later}, name = name || '!' where id = ${id}${name ? ` and name = '${name}'` : ''}`,
    );
  },
}));

describeReadOnce(
  'Snowflake (one statement, result chunks streamed, continuations by query id)',
  () => ({
    statements: sfStatements,
    connect: () =>
      snowflakeSource.connect(
        snowflakeSource.optionsSchema.parse({
          account: 'acme',
          username: 'backflow',
          password: 'pw',
          access_url: fake.url,
          timeout_ms: 5_000,
          login_retries: 0,
        }),
        { projectDir },
      ),
    // The fake logs every statement it ran: those since the last look are this invocation's.
    settle() {
      for (const query of fake.queries.slice(sfSeen)) sfStatements.record(query.sqlText);
      sfSeen = fake.queries.length;
    },
    async touch(id, name) {
      await fake.db.run(
        `update ${TABLE} set updated_at = ${later}, name = name || '!' where id = ${id}${name ? ` and name = '${name}'` : ''}`,
      );
    },
  }),
  true,
);
