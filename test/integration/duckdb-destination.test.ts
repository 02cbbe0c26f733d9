import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duckdbDestination } from '#connectors/destinations/duckdb/index';
import { openDuckDb } from '#connectors/duckdb/database';
import type {
  DestinationConnection,
  OutboundRecord,
  RecordOperation,
  RecordOutcome,
  WriteBatch,
} from '#connectors/sdk/destination';
import type { FieldType, JsonValue } from '#connectors/sdk/types';
import { ConnectorConfigError } from '#core/errors';

const projectDir = mkdtempSync(path.join(os.tmpdir(), 'backflow-duckdb-dest-'));
const context = { projectDir };
let destination: DestinationConnection;
let db: DuckDBConnection;

function connect(opts: Record<string, unknown>): Promise<DestinationConnection> {
  return duckdbDestination.connect(duckdbDestination.optionsSchema.parse(opts), context);
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
  return (await db.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
}

const people: Record<string, FieldType> = { id: 'integer', name: 'string', age: 'integer' };

/** JSON a double cannot hold: an integer beyond 2^53, a decimal beyond 17 digits, a JSON null, -0. */
const EXACT_JSON =
  '{"big": 12345678901234567890, "prec": 0.1000000000000000055511151231257827, "n": null, "arr": [1, 2.50, -0]}';

beforeAll(async () => {
  destination = await connect({ path: 'dest.duckdb' });
  db = await openDuckDb('dest.duckdb', context);
});

afterAll(async () => {
  await destination?.close();
  db?.closeSync();
  rmSync(projectDir, { recursive: true, force: true });
});

describe('duckdb destination', () => {
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
              score: 1.5,
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
      "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'typed' ORDER BY column_index",
    );
    expect(Object.fromEntries(columns.map((c) => [c.column_name, c.data_type]))).toEqual({
      id: 'BIGINT',
      email: 'VARCHAR',
      score: 'DOUBLE',
      active: 'BOOLEAN',
      born: 'DATE',
      seen_at: 'TIMESTAMP WITH TIME ZONE',
      meta: 'JSON',
      avatar: 'BLOB',
    });
    expect(
      await rows(
        "SELECT constraint_column_names AS c FROM duckdb_constraints() WHERE table_name = 'typed' AND constraint_type = 'PRIMARY KEY'",
      ),
    ).toEqual([{ c: ['id'] }]);
    const [row] = await rows(
      `SELECT score, active, born::VARCHAR AS born, strftime(seen_at, '%Y-%m-%dT%H:%M:%S.%f') AS seen,
              meta::VARCHAR AS meta, hex(avatar) AS avatar FROM typed`,
    );
    expect(row).toEqual({
      score: 1.5,
      active: true,
      born: '1815-12-10',
      seen: '2024-02-03T04:05:06.123456',
      meta: '{"tags":["a"],"n":1}',
      avatar: '0102FF',
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
    expect(await rows('SELECT id::INT AS id, name, age::INT AS age FROM people ORDER BY id')).toEqual([
      { id: 1, name: 'Ada L.', age: 37 },
      { id: 2, name: 'Bob', age: 5 },
    ]);
  });

  it('leaves an absent field untouched and clears a null one', async () => {
    await destination.write(batch('people', [record('3', 'upsert', { name: 'Cy', age: 40 })], people));
    await destination.write(batch('people', [record('3', 'upsert', { name: 'Cyd' })], people));
    expect(await rows('SELECT name, age::INT AS age FROM people WHERE id = 3')).toEqual([{ name: 'Cyd', age: 40 }]);
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
    expect(await rows('SELECT id::INT AS id, name FROM people WHERE id IN (6, 7)')).toEqual([{ id: 6, name: 'Faye' }]);
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
    expect((outcome['12'] as { reason: string }).reason).not.toContain('\n');
    expect(
      await rows('SELECT id::INT AS id, name, age::INT AS age FROM people WHERE id IN (10, 11, 12) ORDER BY id'),
    ).toEqual([
      { id: 10, name: 'J2', age: 3 },
      { id: 11, name: 'K', age: 2 },
    ]);
  });

  it('rejects a NOT NULL violation and bad base64 in a table created beforehand', async () => {
    await db.run('CREATE TABLE strict_things (id BIGINT PRIMARY KEY, code VARCHAR NOT NULL, blob BLOB)');
    const types: Record<string, FieldType> = { id: 'integer', code: 'string', blob: 'binary' };
    const outcomes = byKey(
      await destination.write(
        batch(
          'strict_things',
          [
            record('1', 'upsert', { code: 'a', blob: 'AQI=' }),
            record('2', 'upsert', { code: null, blob: null }),
            record('3', 'upsert', { code: 'c', blob: '!!!' }),
            record('4', 'upsert', { code: 'd', blob: null }),
          ],
          types,
        ),
      ),
    );
    expect(outcomes['1']).toEqual({ key: '1', status: 'ok', action: 'created' });
    expect(outcomes['4']).toEqual({ key: '4', status: 'ok', action: 'created' });
    expect(outcomes['2']).toMatchObject({
      status: 'rejected',
      field: 'code',
      reason: expect.stringMatching(/NOT NULL/),
    });
    expect(outcomes['3']).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/base64/) });
    expect(await rows('SELECT id::INT AS id, hex(blob) AS blob FROM strict_things ORDER BY id')).toEqual([
      { id: 1, blob: '0102' },
      { id: 4, blob: null },
    ]);
    expect((await destination.fields('strict_things')).find((f) => f.name === 'code')).toMatchObject({
      required: true,
      matchable: false,
    });
  });

  it('writes JSON text, a JSON null and a negative zero exactly', async () => {
    await db.run('CREATE TABLE exact (id BIGINT PRIMARY KEY, doc JSON, dbl DOUBLE, ints INTEGER[], note VARCHAR)');
    const types: Record<string, FieldType> = {
      id: 'integer',
      doc: 'json',
      dbl: 'number',
      ints: 'json',
      note: 'string',
    };
    const outcomes = await destination.write(
      batch(
        'exact',
        [
          record('1', 'upsert', { doc: EXACT_JSON, dbl: -0, ints: '[1,2,null]', note: 'a\u0000b' }, 1),
          record('2', 'upsert', { doc: 'null', dbl: 0, ints: '[]', note: 'b' }, 2),
          record('3', 'upsert', { doc: null, dbl: null, ints: null, note: null }, 3),
        ],
        types,
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok', 'ok']);
    expect(
      await rows(
        `SELECT id::INT AS id, doc::VARCHAR AS doc, doc IS NULL AS doc_null, dbl::VARCHAR AS dbl,
                ints::VARCHAR AS ints, length(note)::INT AS note_length FROM exact ORDER BY id`,
      ),
    ).toEqual([
      { id: 1, doc: EXACT_JSON, doc_null: false, dbl: '-0.0', ints: '[1, 2, NULL]', note_length: 3 },
      { id: 2, doc: 'null', doc_null: false, dbl: '0.0', ints: '[]', note_length: 1 },
      { id: 3, doc: null, doc_null: true, dbl: null, ints: null, note_length: null },
    ]);
  });

  it('refuses, per record and naming the field, values DuckDB cannot hold', async () => {
    await db.run('CREATE TABLE picky (id BIGINT PRIMARY KEY, name VARCHAR, small INTEGER, doc JSON)');
    const types: Record<string, FieldType> = { id: 'integer', name: 'string', small: 'integer', doc: 'json' };
    const fine = { name: 'fine', small: 1, doc: '{"a": 1}' };
    const outcomes = byKey(
      await destination.write(
        batch(
          'picky',
          [
            record('1', 'upsert', fine, 1),
            record('2', 'upsert', { ...fine, name: 'x\ud800y' }, 2),
            record('3', 'upsert', { ...fine, small: 99999999999 }, 3),
            record('4', 'upsert', { ...fine, doc: '{"a": "\\udc00"}' }, 4),
            record('5', 'upsert', { ...fine, doc: '{"a": 1' }, 5),
            record('6', 'upsert', fine, 6),
          ],
          types,
        ),
      ),
    );
    expect(outcomes['1']).toEqual({ key: '1', status: 'ok', action: 'created' });
    expect(outcomes['6']).toEqual({ key: '6', status: 'ok', action: 'created' });
    expect(outcomes['2']).toEqual({
      key: '2',
      status: 'rejected',
      field: 'name',
      reason:
        'text contains an unpaired UTF-16 surrogate (U+D800), which is not valid Unicode: fix the value in the model',
    });
    expect(outcomes['3']).toMatchObject({
      status: 'rejected',
      field: 'small',
      reason: expect.stringMatching(/^Conversion Error: .*99999999999.* INT32/),
    });
    expect(outcomes['4']).toMatchObject({
      status: 'rejected',
      field: 'doc',
      reason: expect.stringMatching(/^JSON contains an unpaired UTF-16 surrogate \(U\+DC00\)/),
    });
    expect(outcomes['5']).toMatchObject({
      status: 'rejected',
      field: 'doc',
      reason: expect.stringMatching(/^not valid JSON text/),
    });
    expect(await rows('SELECT id::INT AS id, name FROM picky ORDER BY id')).toEqual([
      { id: 1, name: 'fine' },
      { id: 6, name: 'fine' },
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
    expect(await rows('SELECT id::VARCHAR AS id, amount::VARCHAR AS amount FROM big')).toEqual([
      { id: '9007199254740993', amount: '9007199254740993' },
    ]);
  });

  it('adds a column the table lacks', async () => {
    await destination.write(batch('grow', [record('1', 'upsert', { a: 'x' })], { id: 'integer', a: 'string' }));
    const outcomes = await destination.write(
      batch('grow', [record('1', 'upsert', { b: 2 })], { id: 'integer', a: 'string', b: 'integer' }),
    );
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'updated' }]);
    expect(await rows('SELECT a, b::INT AS b FROM grow')).toEqual([{ a: 'x', b: 2 }]);
  });

  it('lets the last of duplicate match values win, including a delete then a re-create', async () => {
    const outcomes = await destination.write(
      batch(
        'dupes',
        [
          record('a', 'upsert', { v: 'first' }, 1),
          record('b', 'upsert', { v: 'second' }, 1),
          record('c', 'upsert', { v: 'x' }, 2),
          record('d', 'delete', {}, 2),
          record('e', 'upsert', { v: 'again' }, 2),
        ],
        { id: 'integer', v: 'string' },
      ),
    );
    expect(outcomes).toHaveLength(5);
    expect(byKey(outcomes).b).toEqual({ key: 'b', status: 'ok', action: 'updated' });
    expect(byKey(outcomes).e).toEqual({ key: 'e', status: 'ok', action: 'created' });
    expect(await rows('SELECT id::INT AS id, v FROM dupes ORDER BY id')).toEqual([
      { id: 1, v: 'second' },
      { id: 2, v: 'again' },
    ]);
  });

  it('writes to schema.table and to the configured schema, creating the schema', async () => {
    await destination.write(batch('crm.accounts', [record('1', 'upsert', { name: 'A' })], people));
    const scoped = await connect({ path: 'dest.duckdb', schema: 'crm' });
    try {
      const outcomes = await scoped.write(batch('accounts', [record('1', 'upsert', { name: 'B' })], people));
      expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'updated' }]);
    } finally {
      await scoped.close();
    }
    expect(await rows('SELECT name FROM crm.accounts')).toEqual([{ name: 'B' }]);
  });

  it('needs a unique match column to upsert, not to update', async () => {
    await db.run("CREATE TABLE loose (id BIGINT, name VARCHAR); INSERT INTO loose VALUES (1, 'a')");
    const error = await destination
      .write(batch('loose', [record('1', 'upsert', { name: 'b' })], people))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectorConfigError);
    expect((error as Error).message).toMatch(/unique/);
    const outcomes = await destination.write(batch('loose', [record('1', 'update', { name: 'c' })], people));
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'updated' }]);
    expect(await rows('SELECT name FROM loose')).toEqual([{ name: 'c' }]);
  });

  it('relearns a table dropped behind its cache', async () => {
    await destination.write(batch('volatile', [record('1', 'upsert', { name: 'A' })], people));
    await db.run('DROP TABLE volatile');
    const outcomes = await destination.write(batch('volatile', [record('1', 'upsert', { name: 'B' })], people));
    expect(outcomes).toEqual([{ key: '1', status: 'ok', action: 'created' }]);
  });

  it('serializes concurrent writes on one connection', async () => {
    const writes = ['1', '2', '3', '4'].map((key) =>
      destination.write(batch('concurrent', [record(key, 'upsert', { name: key })], people)),
    );
    const outcomes = (await Promise.all(writes)).flat();
    expect(outcomes.every((o) => o.status === 'ok' && o.action === 'created')).toBe(true);
    expect(await rows('SELECT count(*)::INT AS n FROM concurrent')).toEqual([{ n: 4 }]);
  });

  it('opens the file again after the garbage collector ran', async () => {
    // Regression: a collected DuckDBInstance wrapper made the next open of the file wait forever.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
    const again = await connect({ path: 'dest.duckdb' });
    await again.check();
    await again.close();
  });

  it('throws ConnectorConfigError for a file it cannot open', async () => {
    const error = await connect({ path: 'no/such/dir/x.duckdb' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectorConfigError);
  });
});
