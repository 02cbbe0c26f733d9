import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '#cli/app';
import { COMMANDS } from '#cli/commands';
import { DryRunQueue, DryRunStateStore } from '#cli/dry-run';
import { colorEnabled, createStyle, memoryIo, visibleLength } from '#cli/io';
import { formatInvalidRows } from '#cli/output';
import { Progress } from '#cli/progress';
import { renderTable } from '#cli/table';
import type { LaneMessage } from '#core/lane-message';
import { emptyCounters, type RecordState, type RunRecord, type StateStore } from '#core/ports';
import { backflow, initProject } from './helpers.ts';

/** The CLI in-process: parsing, help, exit codes, output helpers, the dry-run ports. */
describe('the backflow command line', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('prints help with an example for every command, through the real process too', async () => {
    for (const command of COMMANDS) {
      const io = memoryIo();
      expect(await runCli([command.name, '--help'], { io })).toBe(0);
      expect(io.stdout).toMatch(new RegExp(`^Usage: backflow ${command.name}`));
      expect(io.stdout).toMatch(/\nExamples:\n {2}backflow /);
      expect(io.stdout).toMatch(/Exit codes: 0 ok, 1 .*, 2 config or usage error/);
      expect(io.stdout).toContain('--json');
    }
    const main = await backflow(['--help'], os.tmpdir());
    expect(main.code).toBe(0);
    for (const command of COMMANDS) expect(main.stdout).toMatch(new RegExp(`^ {2}${command.name} `, 'm'));
    const plan = await backflow(['plan', '--help'], os.tmpdir());
    expect(plan.stdout).toMatch(/^Usage: backflow plan <sync> \[options\]/);
  });

  it('exits 2 on usage errors: unknown command or option, missing argument, no config', async () => {
    const cases: [string[], RegExp][] = [
      [['plna'], /unknown command "plna" \(did you mean "plan"\?\)/],
      [['plan', 'x', '--limt', '3'], /Unknown option '--limt'/],
      [['plan'], /missing the sync to plan/],
      [['status', '-p', '/nonexistent'], /no config at .*backflow\.yml \(use --project DIR/],
      [[], /Usage: backflow <command>/],
    ];
    for (const [argv, message] of cases) {
      const io = memoryIo();
      expect(await runCli(argv, { io }), argv.join(' ')).toBe(2);
      expect(`${io.stdout}${io.stderr}`).toMatch(message);
    }
  });

  it('validate lists every config problem at once with file:line, as text or JSON (exit 2)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-cli-'));
    dirs.push(dir);
    writeFileSync(
      path.join(dir, 'backflow.yml'),
      `version: 1
sources:
  warehouse: { type: duckdb }
models:
  customers: { source: warehouse, sql: select 1 as id, primary_key: id }
destinations:
  crm: { type: duckdb, path: crm.duckdb }
syncs:
  a: { model: custmers, destination: crm, object: t, match: { id: id }, mode: upsrt }
`,
    );
    const io = memoryIo({ cwd: dir });
    expect(await runCli(['validate'], { io })).toBe(2);
    expect(io.stderr).toMatch(/Invalid config \(2 problems\)/);
    expect(io.stderr).toMatch(
      /backflow\.yml:9:\d+ syncs\.a\.model: no model named "custmers" \(did you mean "customers"\?\)/,
    );
    expect(io.stderr).toMatch(/backflow\.yml:9:\d+ syncs\.a\.mode: expected one of .* \(did you mean "upsert"\?\)/);
    const jsonIo = memoryIo({ cwd: dir });
    expect(await runCli(['validate', '--json'], { io: jsonIo })).toBe(2);
    expect(JSON.parse(jsonIo.stdout)).toMatchObject({ ok: false, issues: [{ line: 9 }, { line: 9 }] });
  });

  it('init refuses a directory that has one of its files, and writes nothing there', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-cli-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'README.md'), 'mine');
    const io = memoryIo({ cwd: dir });
    expect(await runCli(['init', '.'], { io })).toBe(2);
    expect(io.stderr).toMatch(/README\.md already exists: nothing was written/);
    const fresh = await initProject();
    dirs.push(fresh);
    const json = memoryIo({ cwd: fresh });
    expect(await runCli(['init', 'nested', '--json'], { io: json })).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      dir: path.join(fresh, 'nested'),
      created: ['backflow.yml', 'data/customers.csv', '.gitignore', 'README.md'],
    });
  });

  it('colours only on a terminal, and never with NO_COLOR', () => {
    expect(colorEnabled(true, {})).toBe(true);
    expect(colorEnabled(false, {})).toBe(false);
    expect(colorEnabled(true, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled(false, { FORCE_COLOR: '1' })).toBe(true);
    expect(createStyle(true).red('x')).toBe('\u001b[31mx\u001b[39m');
    expect(createStyle(false).red('x')).toBe('x');
  });

  it('draws progress on stderr only on a terminal', () => {
    const pipe = memoryIo();
    const piped = new Progress(pipe);
    piped.update('redriving crm', 5, 10);
    piped.done();
    expect(pipe.stderr).toBe('');
    const tty = memoryIo({ stderrIsTTY: true });
    const progress = new Progress(tty);
    progress.update('redriving crm', 10, 10);
    progress.done();
    expect(tty.stderr).toBe(`\r\u001b[Kredriving crm [${'█'.repeat(24)}] 10/10\r\u001b[K`);
    expect(tty.stdout).toBe('');
  });

  it('aligns tables by visible width, numbers to the right', () => {
    const style = createStyle(true);
    const table = renderTable(
      ['name', 'count'],
      [
        [style.green('ok'), 1200],
        ['rejected', 3],
      ],
    );
    const plain = table.split('\n').map((line) => line.replaceAll(style.green('ok'), 'ok'));
    expect(visibleLength(style.green('ok'))).toBe(2);
    expect(plain).toEqual(['name      count', 'ok        1,200', 'rejected      3']);
  });

  it('lists exactly the invalid rows its heading announces, whatever the run kept', () => {
    const samples = (count: number) =>
      Array.from({ length: count }, (_, i) => ({ key: String(i + 1), reason: 'primary key "id" is null' }));
    const listed = (count: number) => samples(count).map((s) => `    ${s.key}: ${s.reason}`);
    // The reported defect: 12 invalid, 12 samples kept, "(first 12 of 12)" over 5 lines.
    expect(formatInvalidRows(12, samples(12))).toEqual(['  invalid rows: 12 (showing the first 5)', ...listed(5)]);
    // More invalid rows than the run keeps samples of (the planner keeps 20).
    expect(formatInvalidRows(1234, samples(20))).toEqual(['  invalid rows: 1,234 (showing the first 5)', ...listed(5)]);
    // Fewer than a listing, and exactly a listing.
    expect(formatInvalidRows(3, samples(3))).toEqual(['  invalid rows: 3 (all shown)', ...listed(3)]);
    expect(formatInvalidRows(5, samples(5))).toEqual(['  invalid rows: 5 (all shown)', ...listed(5)]);
    // Fewer samples than rows (the first 2 were kept): the heading says 2 of 12 are listed.
    expect(formatInvalidRows(12, samples(2))).toEqual(['  invalid rows: 12 (showing the first 2)', ...listed(2)]);
    // Never more lines than invalid rows, nor a heading over nothing.
    expect(formatInvalidRows(2, samples(3))).toEqual(['  invalid rows: 2 (all shown)', ...listed(2)]);
    expect(formatInvalidRows(0, [])).toEqual([]);
    expect(formatInvalidRows(4, [])).toEqual([]);
  });

  it('dry-run ports read through and keep every write to themselves', async () => {
    const calls: string[] = [];
    const run: RunRecord = {
      syncId: 's',
      runId: '0000000004',
      sequence: 4,
      status: 'succeeded',
      full: false,
      startedAt: '2026-01-01T00:00:00Z',
      invalidSamples: [],
      counters: emptyCounters(),
    };
    const record: RecordState = { key: '1', version: 4, status: 'ok', hash: 'h', updatedAt: '2026-01-01T00:00:00Z' };
    const real = new Proxy({} as StateStore, {
      get: (_, name: string) => {
        if (name === 'then') return undefined;
        return (...args: unknown[]) => {
          calls.push(name);
          if (name === 'listRuns') return Promise.resolve([run]);
          if (name === 'getRecords') return Promise.resolve(new Map([['1', record]]));
          if (name === 'listRecords')
            return (async function* () {
              yield record;
            })();
          if (name === 'getRun' || name === 'getCursor' || name === 'getModelSchema') return Promise.resolve(undefined);
          throw new Error(`dry run wrote through: ${name}(${JSON.stringify(args)})`);
        };
      },
    });
    const dry = new DryRunStateStore(real);
    expect(await dry.nextSequence('s')).toBe(5);
    expect(await dry.acquireLock()).toEqual({ acquired: true });
    await dry.putCursor();
    await dry.putModelSchema();
    await dry.putProgress();
    await dry.putRecords('s', [record]);
    await dry.putRun({ ...run, runId: '0000000005', sequence: 5, status: 'planning' });
    await dry.addToRun('s', '0000000005', { extracted: 3, queued: 2 });
    await dry.updateRun('s', '0000000005', { status: 'exporting' });
    expect(await dry.getRun('s', '0000000005')).toMatchObject({
      status: 'exporting',
      counters: { extracted: 3, queued: 2 },
    });
    expect((await dry.getRecords('s', ['1'])).get('1')).toEqual(record);
    for await (const _ of dry.listRecords('s')) {
      // counts the synced records
    }
    expect(dry.synced).toBe(1);
    expect(calls.sort()).toEqual(['getRecords', 'listRecords', 'listRuns']);

    const queue = new DryRunQueue();
    const message = (records: LaneMessage['records']): LaneMessage => ({
      v: 1,
      syncId: 's',
      runId: 'r',
      version: 1,
      object: 'o',
      matchField: 'id',
      fieldTypes: {},
      attempt: 0,
      records,
    });
    await queue.send('lane', [
      message([
        { key: 'a', op: 'upsert', match: 1, fields: {}, isNew: true },
        { key: 'b', op: 'upsert', match: 2, fields: {} },
      ]),
      message([{ key: 'c', op: 'delete', match: 3, fields: {} }]),
    ]);
    expect(queue.tally).toEqual({
      messages: 2,
      creates: 1,
      updates: 1,
      deletes: 1,
      samples: { create: ['a'], update: ['b'], delete: ['c'] },
    });
  });
});
