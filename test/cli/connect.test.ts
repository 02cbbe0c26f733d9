import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backflow, duckdb, editFile, initProject, json } from './helpers.ts';

/** validate --remote, check and fields: the commands that connect, through the real process. */
describe('backflow validate --remote, check and fields', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await initProject();
    // The CRM table exists already, with a key the sync can match on.
    await duckdb(
      path.join(dir, 'data', 'crm.duckdb'),
      `create table contacts (customer_id bigint primary key, email varchar, first_name varchar,
         last_name varchar not null, plan varchar, lifetime_value double, source varchar, phone varchar not null,
         last_seen date)`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('validate --remote finds mistyped fields and columns, at file:line, with a "did you mean"', async () => {
    const ok = await backflow(['validate', '--remote'], dir);
    expect(ok.stdout).toMatch(/✔ source warehouse \(duckdb\) +ok/);
    expect(ok.stdout).toMatch(/✔ destination crm \(duckdb\) +ok/);
    expect(ok.stdout).toMatch(/contacts requires "phone", which no mapping sets: creates will be rejected/);
    expect(ok.code).toBe(0);

    editFile(path.join(dir, 'backflow.yml'), (text) =>
      text.replace('      email: email', '      emial: email').replace('plan: plan', 'plan: plna'),
    );
    try {
      const result = await backflow(['validate', '--remote'], dir);
      expect(result.code).toBe(2);
      expect(result.stdout).toMatch(/Invalid config \(2 problems\)/);
      expect(result.stdout).toMatch(
        /backflow\.yml:\d+:7 syncs\.customers-to-crm\.mappings\.emial: contacts has no field "emial" \(did you mean "email"\?\)/,
      );
      expect(result.stdout).toMatch(
        /backflow\.yml:\d+:13 syncs\.customers-to-crm\.mappings\.plan: column "plna" is not in model customers \(did you mean "plan"\?\)/,
      );
    } finally {
      editFile(path.join(dir, 'backflow.yml'), (text) =>
        text.replace('      emial: email', '      email: email').replace('plan: plna', 'plan: plan'),
      );
    }
  });

  it('validate --remote warns about a column whose type the field cannot hold whole', async () => {
    editFile(path.join(dir, 'backflow.yml'), (text) =>
      text.replace('      email: email', '      email: email\n      last_seen: updated_at'),
    );
    try {
      const result = await backflow(['validate', '--remote'], dir);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(
        /backflow\.yml:\d+:\d+ syncs\.customers-to-crm\.mappings\.last_seen: column "updated_at" is a timestamp and contacts\.last_seen is a date field: the time of day is dropped/,
      );
    } finally {
      editFile(path.join(dir, 'backflow.yml'), (text) => text.replace('\n      last_seen: updated_at', ''));
    }
  });

  it('check prints one line per connector and exits 1 when one fails', async () => {
    writeFileSync(
      path.join(dir, 'broken-crm.yml'),
      `version: 1
sources:
  warehouse: { type: duckdb, path: data/warehouse.duckdb }
models:
  customers: { source: warehouse, sql: "select 1 as id", primary_key: id }
destinations:
  crm: { type: duckdb, path: no-such-dir/crm.duckdb }
syncs:
  s: { model: customers, destination: crm, object: t, match: { id: id } }
`,
    );
    // One after the other: DuckDB lets one process at a time open a file.
    const ok = await backflow(['check', '--json'], dir);
    const broken = await backflow(['check', '-c', 'broken-crm.yml'], dir);
    expect(ok.code).toBe(0);
    expect(json(ok)).toMatchObject({
      ok: true,
      checks: [
        { kind: 'source', name: 'warehouse', type: 'duckdb', ok: true },
        { kind: 'destination', name: 'crm', type: 'duckdb', ok: true },
      ],
    });
    expect(broken.code).toBe(1);
    const lines = broken.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^✔ source warehouse \(duckdb\) +ok/);
    expect(lines[1]).toMatch(/^✘ destination crm \(duckdb\) +DuckDB no-such-dir\/crm\.duckdb: .+/);
    expect(lines[2]).toBe('1 of 2 connection(s) failed');
  });

  it('fields prints the destination object as an aligned table; --help shows an example', async () => {
    const [result, help] = await Promise.all([backflow(['fields', 'crm'], dir), backflow(['fields', '--help'], dir)]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('cannot list its objects: showing the ones its syncs write to (contacts)');
    const table = result.stdout.split('\n').filter((l) => l.startsWith('  '));
    expect(table[0]).toMatch(/^ {2}field +type +required +kind +matchable +mapped by$/);
    expect(table).toContain(`  customer_id     integer  required  known  matchable  customers-to-crm`);
    expect(table).toContain(`  phone           string   required  known`);
    const column = table[0]!.indexOf('type');
    expect(table.every((line) => line.length <= column || line[column - 1] === ' ')).toBe(true);

    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: backflow fields <destination> \[object\] \[options\]/);
    expect(help.stdout).toMatch(/Examples:\n {2}backflow fields crm contacts/);
  });
});
