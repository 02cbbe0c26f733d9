import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { openDuckDb, streamRows } from '#connectors/duckdb/database';
import { seedWarehouse } from './lib/project.ts';

const file = '/tmp/readonce-exp/warehouse.duckdb';
const [mode, setting] = process.argv.slice(2);
if (mode === 'seed') {
  if (!existsSync(file)) await seedWarehouse(file, 1_000_000);
  process.exit(0);
}
const c = await openDuckDb(file, { projectDir: '/tmp/readonce-exp' });
if (setting) for (const s of setting.split(';')) await c.run(s);
const sql = process.argv[4] ?? 'select * from (select * from customers) as model order by "id" nulls first';
const t = performance.now();
let n = 0;
for await (const rows of streamRows(c, sql, Number(process.env.PAGE ?? 10000))) n += rows.length;
console.log(JSON.stringify({ mode, setting, n, s: ((performance.now() - t) / 1000).toFixed(1), peakMb: Math.round((process.resourceUsage().maxRSS) / 1024) }));
process.exit(0);
