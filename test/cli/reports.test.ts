import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backflow, editFile, initProject } from './helpers.ts';

/** What the real `backflow` process prints about a broken config and about invalid rows. */
describe('backflow reports, through the CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await initProject();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('validate and run print a YAML error once, at its line and column, and nothing else (exit 2)', async () => {
    const file = path.join(dir, 'backflow.yml');
    const original = readFileSync(file, 'utf8');
    const lines = original.split('\n');
    const line = lines.findIndex((l) => l.trimStart().startsWith('object: contacts')) + 1;
    editFile(file, (text) => text.replace('    object: contacts', '\tobject: contacts'));
    try {
      for (const command of ['validate', 'run']) {
        const result = await backflow([command], dir);
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        expect(result.stderr).toBe(
          `Invalid config (1 problem):\n  backflow.yml:${line}:1 a tab in the indentation: YAML indents with spaces only; replace the tab with spaces\n`,
        );
      }
    } finally {
      editFile(file, () => original);
    }
  });

  it('plan and run list exactly the invalid rows their heading announces', async () => {
    // 12 rows without a primary key: each one is invalid.
    appendFileSync(
      path.join(dir, 'data', 'customers.csv'),
      Array.from({ length: 12 }, (_, i) => `,nobody${i}@example.com,No,Body,free,1.00,2026-01-02 00:00:00\n`).join(''),
    );
    const invalidRows = (stdout: string) => {
      const lines = stdout.split('\n');
      const heading = lines.findIndex((l) => l.includes('invalid rows'));
      return lines.slice(heading, heading + 7);
    };
    const expected = [
      '  invalid rows: 12 (showing the first 5)',
      ...Array.from({ length: 5 }, () => '    (null): primary key "id" is null'),
    ];
    const plan = await backflow(['plan', 'customers-to-crm'], dir);
    expect(plan.code).toBe(0);
    expect(invalidRows(plan.stdout)).toEqual([...expected, '']);
    const run = await backflow(['run'], dir);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/extracted 62 · invalid 12 · unchanged 0 · queued 50/);
    // The summary of the sync ends with its invalid rows.
    expect(invalidRows(run.stdout)).toEqual([...expected, '']);
  });
});
