import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDuckDb } from '#connectors/duckdb/database';
import type { SourceConnection } from '#connectors/sdk/source';
import { duckdbSource } from '#connectors/sources/duckdb/index';
import { describeKeysetReads, KEYSET_ROWS } from './keyset-reads.ts';

const projectDir = mkdtempSync(path.join(os.tmpdir(), 'backflow-duckdb-source-'));
const context = { projectDir };
let db: DuckDBConnection;
let source: SourceConnection;

beforeAll(async () => {
  db = await openDuckDb('warehouse.duckdb', context);
  await db.run('create table keyset_rows (scenario integer, id integer, updated_at timestamp, note varchar)');
  const appender = await db.createAppender('keyset_rows');
  for (const row of KEYSET_ROWS) {
    appender.appendInteger(row.scenario);
    if (row.id === null) appender.appendNull();
    else appender.appendInteger(row.id);
    if (row.updated_at === null) appender.appendNull();
    else appender.appendVarchar(row.updated_at);
    appender.appendVarchar(row.note);
    appender.endRow();
  }
  appender.closeSync();
  source = await duckdbSource.connect(duckdbSource.optionsSchema.parse({ path: 'warehouse.duckdb' }), context);
});

afterAll(async () => {
  await source?.close();
  db?.closeSync();
  rmSync(projectDir, { recursive: true, force: true });
});

describeKeysetReads(
  () => source,
  (n) => `select id, updated_at, note from keyset_rows where scenario = ${n}`,
  'random()',
);

it('reads 10,002 rows whose repeated keys fall on page boundaries as 10,002 rows, at every page size', async () => {
  // 1..10,000 plus a second 1000 and a second 5000: the last key of a full page at 1,000 and 5,000.
  const sql = 'select id, id * 2 as twice from range(1, 10001) r(id) union all select 1000, 0 union all select 5000, 0';
  for (const pageSize of [1000, 5000, 10_000]) {
    let rows = 0;
    const pageOf = new Map<unknown, number>();
    let page = 0;
    for await (const { rows: read } of source.read({ sql, primaryKey: 'id', pageSize })) {
      rows += read.length;
      for (const row of read) {
        expect(pageOf.get(row.id) ?? page, `key ${row.id} split across pages`).toBe(page);
        pageOf.set(row.id, page);
      }
      page++;
    }
    expect(rows).toBe(10_002);
    expect(pageOf.size).toBe(10_000);
  }
  expect(await source.duplicateKeys(sql, 'id', 10)).toEqual([1000, 5000]);
});
