import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDuckDb } from '#connectors/duckdb/database';
import type { SourceConnection } from '#connectors/sdk/source';
import type { Row } from '#connectors/sdk/types';
import { duckdbSource } from '#connectors/sources/duckdb/index';

const projectDir = mkdtempSync(path.join(os.tmpdir(), 'backflow-duckdb-src-'));
let source: SourceConnection;
let db: DuckDBConnection;

/** JSON a double cannot hold: an integer beyond 2^53, a decimal beyond 17 digits, a JSON null, -0. */
const EXACT_JSON =
  '{"big": 12345678901234567890, "prec": 0.1000000000000000055511151231257827, "n": null, "arr": [1, 2.50, -0]}';

async function rowsOf(sql: string): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const page of source.read({ sql, primaryKey: 'id', pageSize: 100 })) rows.push(...page.rows);
  return rows;
}

beforeAll(async () => {
  db = await openDuckDb('warehouse.duckdb', { projectDir });
  await db.run(`
    CREATE TABLE exact (
      id INTEGER PRIMARY KEY, doc JSON, dbl DOUBLE,
      rec STRUCT(big HUGEINT, price DECIMAL(10, 2), neg DOUBLE, inner_doc JSON, tags VARCHAR[]),
      ids UBIGINT[], scores MAP(VARCHAR, DOUBLE)
    )`);
  await db.run(
    `INSERT INTO exact VALUES
       (1, $1, '-0'::DOUBLE,
        {'big': 123456789012345678901234567890, 'price': 2.50, 'neg': '-0'::DOUBLE, 'inner_doc': $1, 'tags': ['a"b', NULL]},
        [18446744073709551615], MAP {'x': '-0'::DOUBLE, 'y': 1.5}),
       (2, 'null', 0, NULL, [], MAP {}),
       (3, NULL, NULL, NULL, NULL, NULL)`,
    [EXACT_JSON],
  );
  source = await duckdbSource.connect(duckdbSource.optionsSchema.parse({ path: 'warehouse.duckdb' }), { projectDir });
});

afterAll(async () => {
  await source?.close();
  db?.closeSync();
  rmSync(projectDir, { recursive: true, force: true });
});

describe('duckdb source values', () => {
  it('types JSON, STRUCT, LIST and MAP columns as json', async () => {
    const columns = await source.describe('select * from exact');
    expect(columns.map((c) => [c.name, c.type])).toEqual([
      ['id', 'integer'],
      ['doc', 'json'],
      ['dbl', 'number'],
      ['rec', 'json'],
      ['ids', 'json'],
      ['scores', 'json'],
    ]);
  });

  it('reads JSON text exactly, nested numbers exactly, a JSON null apart from SQL NULL, and a negative zero', async () => {
    const rows = await rowsOf('select * from exact');
    expect(rows).toEqual([
      {
        id: 1,
        doc: EXACT_JSON,
        dbl: -0,
        rec: `{"big":123456789012345678901234567890,"price":2.50,"neg":-0,"inner_doc":${EXACT_JSON},"tags":["a\\"b",null]}`,
        ids: '[18446744073709551615]',
        scores: '[{"key":"x","value":-0},{"key":"y","value":1.5}]',
      },
      { id: 2, doc: 'null', dbl: 0, rec: null, ids: '[]', scores: '[]' },
      { id: 3, doc: null, dbl: null, rec: null, ids: null, scores: null },
    ]);
    expect(Object.is(rows[0]?.dbl, -0)).toBe(true);
    expect(Object.is(rows[1]?.dbl, 0)).toBe(true);
    // Each is JSON text a reader can parse.
    for (const row of rows)
      for (const k of ['doc', 'rec', 'ids', 'scores']) if (row[k] !== null) JSON.parse(String(row[k]));
  });
});
