import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll } from 'vitest';
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
