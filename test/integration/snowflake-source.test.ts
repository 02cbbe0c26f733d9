import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint, ReadRequest, RowPage, SourceConnection } from '#connectors/sdk/source';
import type { JsonValue, Row } from '#connectors/sdk/types';
import { snowflakeSource } from '#connectors/sources/snowflake/index';
import { AuthError, ConnectorConfigError, TransientError } from '#core/errors';
import { type FakeSnowflake, startFakeSnowflake } from '#test/fakes/snowflake/server';
import { describeKeysetReads, KEYSET_ROWS } from './keyset-reads.ts';

/** JSON a double cannot hold: an integer beyond 2^53, a decimal beyond 17 digits, a JSON null, -0. */
const EXACT_JSON =
  '{"big": 12345678901234567890, "prec": 0.1000000000000000055511151231257827, "n": null, "arr": [1, 2.50, -0]}';

const PASSWORD = 'correct-horse-battery-staple';
const PASSPHRASE = 'open sesame';
const TAG = 'backflow:customers-to-crm:run-7';
const context = { projectDir: os.tmpdir(), tag: TAG };

const keyPair = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE },
  });
const { publicKey, privateKey } = keyPair();

let fake: FakeSnowflake;
let source: SourceConnection;

function connect(overrides: Record<string, unknown> = {}): Promise<SourceConnection> {
  const opts = snowflakeSource.optionsSchema.parse({
    account: 'acme-prod',
    username: 'backflow',
    warehouse: 'compute_wh',
    role: 'backflow_reader',
    database: 'analytics',
    schema: 'public',
    access_url: fake.url,
    timeout_ms: 5_000,
    login_retries: 0,
    password: PASSWORD,
    ...overrides,
  });
  return snowflakeSource.connect(opts, context);
}

async function readAll(connection: SourceConnection, request: ReadRequest): Promise<RowPage[]> {
  const pages: RowPage[] = [];
  for await (const page of connection.read(request)) pages.push(page);
  return pages;
}

const ids = (pages: RowPage[]): JsonValue[] => pages.flatMap((p) => p.rows.map((r) => r.ID ?? null));

beforeAll(async () => {
  fake = await startFakeSnowflake({
    users: { BACKFLOW: PASSWORD },
    publicKeys: { KEYPAIR_USER: publicKey },
    chunkSize: 1000,
    warehouses: ['COMPUTE_WH'],
  });
  // Snowflake stores unquoted identifiers in upper case: the seeded columns are upper case too.
  await fake.db.run(`
    create table TYPES as
    select * from (values
      (1, 9007199254740993::bigint, 12345678901234567890123::decimal(38,0),
       12345678901234567890.1234567891::decimal(38,10), 1.25::double, true, date '2024-02-29',
       time '12:34:56.5', timestamp '2024-02-03 04:05:06.123456',
       timestamptz '2024-02-03 04:05:06.123456+02', timestamp_ms '2024-02-03 04:05:06.789',
       '{"a":[1,2,{"b":null}],"s":"x"}'::json, {'x': 1, 'y': 'z'}, [1, 2, 3], '\\xDE\\xAD\\xBE\\xEF'::blob,
       'héllo "quoted" ''text'''),
      (2, 42::bigint, 7::decimal(38,0), 0.1::decimal(38,10), -0.5::double, false, date '1969-12-31',
       time '00:00:00', timestamp '1969-12-31 23:59:59.5', timestamptz '2024-06-01 00:00:00+00',
       timestamp_ms '1970-01-01 00:00:00', '[]'::json, {'x': 2, 'y': null}, [], ''::blob, ''),
      (3, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null)
    ) as t("ID", "N_BIG", "N_38_0", "N_38_10", "F", "B", "D", "T", "TS_NTZ", "TS_TZ", "TS_LTZ", "V", "O", "A", "BIN", "S")
  `);
  // Keyset data: 7 rows share each UPDATED_AT, so ties straddle every page boundary; a few rows
  // have no primary key, a few no cursor.
  await fake.db.run(`
    create table PEOPLE as
    select case when i % 97 = 0 then null else i end as "ID",
           case when i % 89 = 0 then null else timestamp '2024-01-01 00:00:00' + to_seconds(i // 7) end as "UPDATED_AT",
           'person ' || i as "NAME"
    from range(1, 501) r(i)
  `);
  await fake.db.run(`
    create table EVENTS as
    select i as "ID", 'evt-' || lpad(i::varchar, 5, '0') as "CODE", (i * 1.5)::decimal(18,2) as "AMOUNT"
    from range(5000) r(i)
  `);
  const sqlText = (value: string | number | null) =>
    value === null ? 'null' : typeof value === 'number' ? String(value) : `'${value}'`;
  await fake.db.run(`
    create table keyset_rows as
    select * from (values ${KEYSET_ROWS.map((r) => `(${[r.scenario, r.id, r.updated_at, r.note].map(sqlText).join(', ')})`).join(', ')})
      as t("scenario", "id", "updated_at", "note")
  `);
  await fake.db.run('alter table keyset_rows alter "updated_at" type timestamp');
  source = await connect();
});

afterAll(async () => {
  await source?.close();
  await fake?.stop();
  // The driver's logging is configured away from the working directory.
  expect(existsSync(path.join(process.cwd(), 'snowflake.log'))).toBe(false);
});

describeKeysetReads(
  () => source,
  (n) => `select "id", "updated_at", "note" from keyset_rows where "scenario" = ${n}`,
  'random()',
);

describe('snowflake source: login', () => {
  it('logs in with a password, sets up a UTC session and tags every query with the sync and run', async () => {
    await source.check();
    const login = fake.logins.find((l) => l.ok && l.user === 'backflow');
    expect(login).toMatchObject({
      account: 'acme-prod',
      authenticator: 'SNOWFLAKE',
      warehouse: 'compute_wh',
      role: 'backflow_reader',
      database: 'analytics',
      schema: 'public',
      queryTag: TAG,
    });
    expect(fake.queries.some((q) => /^alter session set TIMEZONE = 'UTC'/.test(q.sqlText))).toBe(true);
    expect(fake.queries.length).toBeGreaterThan(0);
    for (const query of fake.queries) expect(query.queryTag).toBe(TAG);
  });

  it('refuses a wrong password with an AuthError naming the account and user, never the secret', async () => {
    const error = await connect({ password: 'wrong-password' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    const message = (error as Error).message;
    expect(message).toContain('"backflow"');
    expect(message).toContain('"acme-prod"');
    expect(message).toContain('Incorrect username or password');
    expect(message).not.toContain('wrong-password');
    expect(JSON.stringify((error as Error).cause ?? null)).not.toContain('wrong-password');
    expect(fake.logins.at(-1)).toMatchObject({ ok: false, user: 'backflow' });
  });

  it('logs in with an encrypted key pair (the JWT is verified against the public key)', async () => {
    const unencrypted = createPrivateKey({ key: privateKey, passphrase: PASSPHRASE })
      .export({ type: 'pkcs8', format: 'pem' })
      .toString();
    // As pasted into a secret: PEM with escaped newlines, base64 of the PEM, an unencrypted PEM.
    for (const [key, passphrase] of [
      [privateKey.replaceAll('\n', '\\n'), PASSPHRASE],
      [Buffer.from(privateKey).toString('base64'), PASSPHRASE],
      [unencrypted, undefined],
    ]) {
      const connection = await connect({
        username: 'keypair_user',
        password: undefined,
        private_key: key,
        private_key_passphrase: passphrase,
      });
      try {
        await connection.check();
        expect(fake.logins.at(-1)).toMatchObject({ ok: true, authenticator: 'SNOWFLAKE_JWT', user: 'keypair_user' });
      } finally {
        await connection.close();
      }
    }
  });

  it('refuses an encrypted private key without its passphrase, as a configuration error', async () => {
    const error = await connect({ username: 'keypair_user', password: undefined, private_key: privateKey }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect((error as Error).message).toContain('add private_key_passphrase');
    await expect(
      connect({
        username: 'keypair_user',
        password: undefined,
        private_key: privateKey,
        private_key_passphrase: 'nope',
      }),
    ).rejects.toThrow(/private_key_passphrase does not decrypt it/);
    await expect(connect({ password: undefined, private_key: 'not a key' })).rejects.toThrow(/not a PEM key/);
  });

  it('refuses a key pair whose public key is not the registered one', async () => {
    const other = keyPair();
    const error = await connect({
      username: 'keypair_user',
      password: undefined,
      private_key: other.privateKey,
      private_key_passphrase: PASSPHRASE,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as Error).message).toContain('JWT token is invalid');
  });

  it('says which secret is missing', async () => {
    await expect(connect({ password: undefined })).rejects.toThrow(/needs "password" or "private_key"/);
    await expect(connect({ authenticator: 'SNOWFLAKE_JWT' })).rejects.toThrow(/needs "private_key"/);
  });

  it('reports an unreachable Snowflake as a TransientError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await connect({ access_url: `http://127.0.0.1:${port}` }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
  });

  it('check() names a warehouse the session could not use', async () => {
    const connection = await connect({ warehouse: 'missing_wh' });
    try {
      await expect(connection.check()).rejects.toThrow(ConnectorConfigError);
      await expect(connection.check()).rejects.toThrow(/warehouse "missing_wh"/);
    } finally {
      await connection.close();
    }
  });

  it('sets a statement timeout and gives up on a statement that never answers', async () => {
    const connection = await connect({ query_timeout_s: 1, timeout_ms: 500 });
    try {
      expect(fake.queries.at(-1)?.sqlText).toContain('STATEMENT_TIMEOUT_IN_SECONDS = 1');
      fake.queryDelayMs = 5_000;
      const error = await connection.check().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransientError);
      expect((error as Error).message).toMatch(/did not answer within 2 s/);
    } finally {
      fake.queryDelayMs = 0;
      await connection.close();
    }
  });

  it('renews an expired session token with the master token', async () => {
    fake.expireSessionTokens();
    await source.check();
    expect(fake.requests.some((r) => r.path.startsWith('/session/token-request') && r.status === 200)).toBe(true);
  });

  it('closes its session', async () => {
    const before = fake.sessionCount;
    const connection = await connect();
    expect(fake.sessionCount).toBe(before + 1);
    await connection.close();
    expect(fake.sessionCount).toBe(before);
  });
});

describe('snowflake source: discovery and types', () => {
  it('describes a model with normalized types', async () => {
    const columns = await source.describe('select * from TYPES');
    expect(columns.map((c) => [c.name, c.type, c.nativeType])).toEqual([
      ['ID', 'integer', 'NUMBER(38,0)'],
      ['N_BIG', 'integer', 'NUMBER(38,0)'],
      ['N_38_0', 'integer', 'NUMBER(38,0)'],
      ['N_38_10', 'number', 'NUMBER(38,10)'],
      ['F', 'number', 'FLOAT'],
      ['B', 'boolean', 'BOOLEAN'],
      ['D', 'date', 'DATE'],
      ['T', 'string', 'TIME'],
      ['TS_NTZ', 'timestamp', 'TIMESTAMP_NTZ'],
      ['TS_TZ', 'timestamp', 'TIMESTAMP_TZ'],
      ['TS_LTZ', 'timestamp', 'TIMESTAMP_LTZ'],
      ['V', 'json', 'VARIANT'],
      ['O', 'json', 'OBJECT'],
      ['A', 'json', 'ARRAY'],
      ['BIN', 'binary', 'BINARY'],
      ['S', 'string', 'VARCHAR'],
    ]);
  });

  it('normalizes every type: exact numbers, ISO dates and UTC timestamps, JSON text, base64', async () => {
    const [page] = await readAll(source, { sql: 'select * from TYPES', primaryKey: 'ID', pageSize: 10 });
    expect(page?.rows).toEqual([
      {
        ID: 1,
        N_BIG: '9007199254740993',
        N_38_0: '12345678901234567890123',
        N_38_10: '12345678901234567890.1234567891',
        F: 1.25,
        B: true,
        D: '2024-02-29',
        T: '12:34:56.5',
        TS_NTZ: '2024-02-03T04:05:06.123456Z',
        TS_TZ: '2024-02-03T02:05:06.123456Z',
        TS_LTZ: '2024-02-03T04:05:06.789Z',
        V: '{"a":[1,2,{"b":null}],"s":"x"}',
        O: '{"x":1,"y":"z"}',
        A: '[1,2,3]',
        BIN: '3q2+7w==',
        S: `héllo "quoted" 'text'`,
      },
      {
        ID: 2,
        N_BIG: 42,
        N_38_0: 7,
        N_38_10: 0.1,
        F: -0.5,
        B: false,
        D: '1969-12-31',
        T: '00:00:00',
        TS_NTZ: '1969-12-31T23:59:59.5Z',
        TS_TZ: '2024-06-01T00:00:00Z',
        TS_LTZ: '1970-01-01T00:00:00Z',
        V: '[]',
        O: '{"x":2,"y":null}',
        A: '[]',
        BIN: '',
        S: '',
      },
      {
        ID: 3,
        ...Object.fromEntries(
          [
            'N_BIG',
            'N_38_0',
            'N_38_10',
            'F',
            'B',
            'D',
            'T',
            'TS_NTZ',
            'TS_TZ',
            'TS_LTZ',
            'V',
            'O',
            'A',
            'BIN',
            'S',
          ].map((k) => [k, null]),
        ),
      },
    ]);
  });

  it('reads VARIANT, OBJECT and ARRAY text exactly, a JSON null apart from SQL NULL, and a negative zero', async () => {
    await fake.db.run(
      `create table EXACT as select * from (values
         (1, $1::json, {'big': 12345678901234567890::hugeint, 'price': 2.50::decimal(10,2), 'neg': '-0'::double},
          [12345678901234567890::hugeint], '-0'::double),
         (2, 'null'::json, {'big': 0::hugeint, 'price': 0::decimal(10,2), 'neg': 0::double}, [], 0::double),
         (3, null, null, null, null)
       ) as t("ID", "V", "O", "A", "F")`,
      [EXACT_JSON],
    );
    try {
      const [page] = await readAll(source, { sql: 'select * from EXACT', primaryKey: 'ID', pageSize: 10 });
      expect(page?.rows).toEqual([
        {
          ID: 1,
          V: EXACT_JSON,
          O: '{"big":12345678901234567890,"price":2.50,"neg":-0}',
          A: '[12345678901234567890]',
          F: -0,
        },
        { ID: 2, V: 'null', O: '{"big":0,"price":0.00,"neg":0}', A: '[]', F: 0 },
        { ID: 3, V: null, O: null, A: null, F: null },
      ]);
      expect(Object.is(page?.rows[0]?.F, -0)).toBe(true);
    } finally {
      await fake.db.run('drop table EXACT');
    }
  });

  it('lists tables', async () => {
    expect(await source.listTables()).toEqual(expect.arrayContaining(['main.EVENTS', 'main.PEOPLE', 'main.TYPES']));
  });

  it("reports SQL errors as ConnectorConfigError with Snowflake's message", async () => {
    const missing = await source.describe('select * from NO_SUCH_TABLE').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ConnectorConfigError);
    expect((missing as Error).message).toMatch(/^Snowflake could not run the model SQL: SQL compilation error/);
    expect((missing as Error).message).toContain('NO_SUCH_TABLE');
    const syntax = await readAll(source, { sql: 'select from where', primaryKey: 'ID', pageSize: 10 }).catch(
      (e: unknown) => e,
    );
    expect(syntax).toBeInstanceOf(ConnectorConfigError);
    // The session survives a failed statement.
    await source.check();
  });

  it('says when the primary key column is missing, hinting at upper case', async () => {
    const error = await readAll(source, { sql: 'select * from PEOPLE', primaryKey: 'id', pageSize: 10 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect((error as Error).message).toContain('did you mean "ID"');
  });
});

describe('snowflake source: reads', () => {
  it('streams a result larger than one chunk (inline rows, then chunk downloads)', async () => {
    const before = fake.requests.filter((r) => r.path.startsWith('/chunks/')).length;
    const pages = await readAll(source, { sql: 'select * from EVENTS', primaryKey: 'ID', pageSize: 5000 });
    const downloads = fake.requests.filter((r) => r.path.startsWith('/chunks/')).length - before;
    expect(downloads).toBe(4);
    expect(pages).toHaveLength(1);
    const rows = pages[0]!.rows;
    expect(rows).toHaveLength(5000);
    expect(rows.map((r) => r.ID)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(rows[4999]).toEqual({ ID: 4999, CODE: 'evt-04999', AMOUNT: 7498.5 });
  });

  it('binds keyset positions as text cast to the column type, in one statement for the whole read', async () => {
    const before = fake.executions;
    const pages = await readAll(source, {
      sql: 'select * from EVENTS',
      primaryKey: 'CODE',
      pageSize: 2000,
      after: { pk: 'evt-00999' },
    });
    expect(pages.map((p) => p.rows.length)).toEqual([2000, 2000]);
    expect(pages[0]!.rows[0]!.CODE).toBe('evt-01000');
    // One statement reads every page: the model ran once, its result streamed in chunks.
    expect(fake.executions - before).toBe(1);
    const bound = fake.queries.at(-1)!;
    expect(bound.sqlText).toContain('"CODE" > cast(? as VARCHAR)');
    expect(bound.sqlText.endsWith('order by "CODE"')).toBe(true);
    expect(bound.bindings).toEqual(['evt-00999']);
  });

  it('full read of many pages: the model runs once (one statement), its chunks streamed', async () => {
    const before = fake.executions;
    const queries = fake.queries.length;
    const pages = await readAll(source, { sql: 'select * from PEOPLE', primaryKey: 'ID', pageSize: 7 });
    expect(pages.length).toBeGreaterThan(70);
    expect(fake.executions - before).toBe(1);
    const [statement] = fake.queries.slice(queries).filter((q) => q.sqlText.includes('PEOPLE'));
    expect(statement!.sqlText).toMatch(/order by "ID" nulls first$/);
    expect(statement!.rows).toBe(500);
  });

  it('a continuation reads the kept result on by query id, running nothing; a purged result is read again from the checkpoint', async () => {
    const request = { sql: 'select * from PEOPLE', primaryKey: 'ID', pageSize: 40 };
    const whole = ids(await readAll(source, request));
    // The first invocation stops after three keyed pages (the planner hands over at a checkpoint).
    const first: RowPage[] = [];
    for await (const page of source.read(request)) {
      first.push(page);
      if (first.filter((p) => p.checkpoint).length === 3) break;
    }
    const last = first.at(-1)!;
    expect(last.resume).toBeDefined();
    const fetches = fake.resultFetches.length;
    // A fresh connection, as a fresh Lambda invocation has (the plan describes the model first).
    const fresh = await connect();
    try {
      await fresh.describe(request.sql);
      const executions = fake.executions;
      const rest = await readAll(fresh, { ...request, after: last.checkpoint, resume: last.resume });
      expect([...ids(first), ...ids(rest)]).toEqual(whole);
      // No statement ran the model: the result was fetched by query id, from the chunks needed.
      expect(fake.executions).toBe(executions);
      expect(fake.resultFetches.slice(fetches)).toEqual([{ queryId: JSON.parse(last.resume!).id, found: true }]);
      // Every page of the continuation can hand over again, into the same result.
      expect(
        rest.every((p) => p.checkpoint === undefined || JSON.parse(p.resume!).id === JSON.parse(last.resume!).id),
      ).toBe(true);

      // Gone (Snowflake purges results after 24 hours): one keyset statement from the checkpoint.
      fake.expireResults();
      const again = await readAll(fresh, { ...request, after: last.checkpoint, resume: last.resume });
      expect([...ids(first), ...ids(again)]).toEqual(whole);
      expect(fake.executions).toBe(executions + 1);
      expect(fake.resultFetches.at(-1)).toEqual({ queryId: JSON.parse(last.resume!).id, found: false });
      expect(fake.queries.at(-1)!.sqlText).toContain('"ID" > cast(? as');

      // A resume point that does not stand at the checkpoint is not trusted: read from the checkpoint.
      const pages: RowPage[] = [];
      for await (const page of fresh.read(request)) {
        pages.push(page);
        if (pages.filter((p) => p.checkpoint).length === 2) break;
      }
      const wrong = await readAll(fresh, { ...request, after: first.at(-1)!.checkpoint, resume: pages.at(-1)!.resume });
      expect([...ids(first), ...ids(wrong)]).toEqual(whole);
    } finally {
      await fresh.close();
    }
  });

  it('resuming deep in a kept result downloads only the chunks from the resume point on', async () => {
    const request = { sql: 'select * from EVENTS', primaryKey: 'CODE', pageSize: 1000 };
    const first: RowPage[] = [];
    for await (const page of source.read(request)) {
      first.push(page);
      if (first.length === 3) break;
    }
    const { id } = JSON.parse(first.at(-1)!.resume!) as { id: string };
    const requests = fake.requests.length;
    const rest = await readAll(source, { ...request, after: first.at(-1)!.checkpoint, resume: first.at(-1)!.resume });
    expect(rest[0]!.rows[0]!.CODE).toBe('evt-03000');
    const chunks = fake.requests
      .slice(requests)
      .map((r) => new RegExp(`^/chunks/${id}/(\\d+)`).exec(r.path)?.[1])
      .filter((c) => c !== undefined)
      .map(Number);
    // Rows 0-999 are inline, chunk 0 holds 1000-1999: row 2999 (the checkpoint's) is in chunk 1.
    expect(chunks.length).toBeGreaterThan(0);
    expect(Math.min(...chunks)).toBe(1);
  });

  it('full read: rows without a primary key first, then every keyed row once, in key order', async () => {
    const pages = await readAll(source, { sql: 'select * from PEOPLE', primaryKey: 'ID', pageSize: 3 });
    const nullPages = pages.filter((p) => p.checkpoint === undefined);
    expect(nullPages.flatMap((p) => p.rows.map((r) => r.ID))).toEqual([null, null, null, null, null]);
    expect(pages.slice(0, nullPages.length)).toEqual(nullPages);
    const keyed = ids(pages.filter((p) => p.checkpoint !== undefined));
    const expected = Array.from({ length: 500 }, (_, i) => i + 1).filter((i) => i % 97 !== 0);
    expect(keyed).toEqual(expected);
    for (const page of pages.filter((p) => p.checkpoint)) {
      expect(page.checkpoint).toEqual({ pk: page.rows.at(-1)!.ID });
    }
    // Resuming after a checkpoint yields exactly the rest.
    const resumed = await readAll(source, {
      sql: 'select * from PEOPLE',
      primaryKey: 'ID',
      pageSize: 50,
      after: { pk: 250 },
    });
    expect(ids(resumed)).toEqual(expected.filter((i) => i > 250));
  });

  it('incremental read: (cursor, pk) order with ties across page boundaries, nothing lost or repeated', async () => {
    // Rows without a primary key are invalid; incremental reads are tested on valid rows.
    const sql = 'select * from PEOPLE where "ID" is not null';
    const withCursor = (await allPeople()).filter((r) => r.UPDATED_AT !== null && r.ID !== null);
    for (const pageSize of [3, 10, 64]) {
      const pages = await readAll(source, { sql, primaryKey: 'ID', cursor: 'UPDATED_AT', pageSize });
      const rows = pages.flatMap((p) => p.rows);
      expect(rows.map((r) => [r.UPDATED_AT, r.ID])).toEqual(withCursor.map((r) => [r.UPDATED_AT, r.ID]));
      for (const page of pages) {
        const last = page.rows.at(-1)!;
        expect(page.checkpoint).toEqual({ cursor: last.UPDATED_AT, pk: last.ID });
      }
    }
    // Resume from the middle of a run of equal cursor values.
    const middle = withCursor.findIndex((r) => r.UPDATED_AT === '2024-01-01T00:00:30Z' && r.ID === 213);
    expect(middle).toBeGreaterThan(0);
    const after: Checkpoint = { cursor: '2024-01-01T00:00:30Z', pk: 213 };
    const resumed = await readAll(source, { sql, primaryKey: 'ID', cursor: 'UPDATED_AT', pageSize: 5, after });
    expect(resumed.flatMap((p) => p.rows)).toEqual(withCursor.slice(middle + 1));
    const bound = fake.queries.filter((q) => q.bindings.length === 3).at(-1);
    expect(bound?.sqlText).toContain('cast(? as TIMESTAMP)');
    expect(bound?.sqlText).toContain('cast(? as DECIMAL(38,0))');
  });

  it('watermark is the highest (cursor, pk); readKeys pages every key', async () => {
    const sql = 'select * from PEOPLE';
    const people = await allPeople();
    const top = people.filter((r) => r.UPDATED_AT !== null && r.ID !== null).at(-1)!;
    expect(await source.watermark(sql, 'UPDATED_AT', 'ID')).toEqual({ cursor: top.UPDATED_AT, pk: top.ID });
    expect(await source.watermark('select * from PEOPLE where 1 = 0', 'UPDATED_AT', 'ID')).toBeUndefined();
    const pages: unknown[][] = [];
    for await (const keys of source.readKeys(sql, 'ID', 128)) pages.push(keys);
    expect(pages.map((p) => p.length)).toEqual([128, 128, 128, 116]);
    expect(new Set(pages.flat()).size).toBe(496);
  });

  it('streams 100,000 rows in pages of 10,000 with bounded memory', async () => {
    await fake.db.run(`
      create table BIG as
      select i as "ID", timestamp '2024-01-01' + to_seconds(i // 10) as "UPDATED_AT",
             (i * 1.25)::decimal(18,2) as "AMOUNT", repeat(chr(65 + (i % 26)::integer), 2000) as "PAYLOAD"
      from range(100000) r(i)
    `);
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peak = 0;
    let count = 0;
    let expectedId = 0;
    let pages = 0;
    for await (const page of source.read({ sql: 'select * from BIG', primaryKey: 'ID', pageSize: 10_000 })) {
      pages++;
      for (const row of page.rows) {
        if (row.ID !== expectedId) throw new Error(`row ${expectedId} missing or out of order (got ${row.ID})`);
        expectedId++;
      }
      count += page.rows.length;
      gc();
      peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
    }
    expect(count).toBe(100_000);
    expect(pages).toBe(10);
    // 100,000 rows of 2 KB would be over 200 MB if the reader held them: it holds about one page.
    expect(peak).toBeLessThan(150 * 1024 * 1024);
  });
});

async function allPeople(): Promise<Row[]> {
  const rows = (
    await fake.db.runAndReadAll(
      `select "ID", strftime("UPDATED_AT", '%Y-%m-%dT%H:%M:%SZ') as "UPDATED_AT", "NAME" from PEOPLE order by "UPDATED_AT", "ID"`,
    )
  ).getRowObjectsJson() as Row[];
  return rows.map((r) => ({ ...r, ID: r.ID === null ? null : Number(r.ID) }));
}
