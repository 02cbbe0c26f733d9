import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type CommandContext, positionals, UsageError } from '../context.ts';

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'John', 'Margaret', 'Ken'];
const LAST = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Allen',
  'Backus',
  'Hamilton',
  'Thompson',
  'Ritchie',
];
const PLANS = ['free', 'starter', 'pro', 'enterprise'];

/** 50 demo customers, the same on every machine. */
export function customersCsv(count = 50): string {
  const lines = ['id,email,first_name,last_name,plan,ltv,updated_at'];
  for (let i = 1; i <= count; i++) {
    const first = FIRST[i % FIRST.length]!;
    const last = LAST[i % LAST.length]!;
    const ltv = (((i * 7919) % 100_000) / 100).toFixed(2);
    const updated = new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString().replace('T', ' ').replace('.000Z', '');
    lines.push(
      `${i},${first.toLowerCase()}.${last.toLowerCase()}${i}@example.com,${first},${last},${PLANS[i % PLANS.length]},${ltv},${updated}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export const CONFIG = `# Backflow project: keeps a destination in sync with a SQL model of your warehouse.
# Every key is documented in docs/config.md of the Backflow repository.
#
# This example is runnable as is: the "warehouse" is an embedded DuckDB that reads
# data/customers.csv, the "CRM" is a DuckDB file (data/crm.duckdb). From this folder:
#
#   backflow validate --remote             # the config, the connections, the fields
#   backflow preview customers-to-crm      # a few records: row, payload, what would happen
#   backflow plan customers-to-crm         # a dry run: counts, guardrails, requests, time
#   backflow run                           # sync for real (state is kept in .backflow/)
#   backflow status                        # runs, lanes, dead letters
version: 1

sources:
  warehouse:
    type: duckdb
    path: data/warehouse.duckdb       # an embedded DuckDB file, created when missing

models:
  customers:
    source: warehouse
    # A SELECT in the source's dialect, without a trailing ";" or ORDER BY. Relative file paths
    # in the SQL are read from this folder.
    sql: select id, email, first_name, last_name, plan, ltv, updated_at from read_csv('data/customers.csv')
    primary_key: id                   # unique and non-null: rows where it is not are invalid
    cursor: updated_at                # rises when a row changes: runs read only what changed

destinations:
  crm:
    type: duckdb
    path: data/crm.duckdb             # tables are created on the first write
    # lane: { batch_size: 1000, requests_per_second: 10 }   # pace a destination with limits

syncs:
  customers-to-crm:
    model: customers
    destination: crm
    object: contacts                  # a table here; an object type in a SaaS tool
    mode: upsert                      # upsert | update | insert | mirror (also deletes)
    match: { customer_id: id }        # destination key field: model column
    mappings:                         # destination field: model column | { column, nulls } | { value }
      email: email
      first_name: first_name
      last_name: last_name
      plan: plan
      lifetime_value: { column: ltv, nulls: sync }   # a null clears the destination's value
      source: { value: backflow }     # a constant
    schedule: rate(15 minutes)        # on AWS; locally \`backflow run\` runs it on demand
    guardrails: { max_delete_ratio: 0.2 }   # a mirror run deleting more than 20% stops
`;

export const GITIGNORE = `# Backflow's local state (runs, record states, dead letters) and local secrets
.backflow/
# DuckDB files the example creates
data/*.duckdb
data/*.duckdb.wal
`;

export function readme(name: string): string {
  return `# ${name}

A Backflow project: \`backflow.yml\` syncs the model
\`customers\` (here \`data/customers.csv\`, read by an embedded DuckDB) into the table \`contacts\` of
a DuckDB "CRM" (\`data/crm.duckdb\`).

Run every command from this folder:

\`\`\`sh
backflow validate --remote              # the config, the connections and the destination fields
backflow preview customers-to-crm       # sample records: model row, payload, what would happen
backflow preview customers-to-crm --key 7 --send   # send one record, check it in the destination
backflow plan customers-to-crm          # dry run: creates, updates, deletes, guardrails, time
backflow run                            # sync (state is kept in .backflow/, git-ignored)
backflow status                         # recent runs, lanes, dead letters
backflow rejections customers-to-crm    # records the destination refused, and why
\`\`\`

Next: point \`sources\` at your warehouse and \`destinations\` at your tool, keeping credentials in
secrets (\`secret: <name>\`, locally \`BACKFLOW_SECRET_<NAME>\` or \`.backflow/secrets.json\`).
See \`backflow --help\` and the docs: config (docs/config.md) and CLI (docs/cli.md).
`;
}

/** `backflow init [dir]`: a runnable project; never overwrites a file. */
export async function init(ctx: CommandContext): Promise<number> {
  const [dir = '.'] = positionals(ctx, 0, 1, '');
  const root = path.resolve(ctx.io.cwd, dir);
  const files: [string, string][] = [
    ['backflow.yml', CONFIG],
    ['data/customers.csv', customersCsv()],
    ['.gitignore', GITIGNORE],
    ['README.md', readme(path.basename(root))],
  ];
  const existing = files.map(([file]) => file).filter((file) => existsSync(path.join(root, file)));
  if (existing.length > 0) {
    throw new UsageError(
      `${existing.map((f) => path.join(dir, f)).join(', ')} already exist${existing.length === 1 ? 's' : ''}: nothing was written (init never overwrites; choose an empty directory)`,
    );
  }
  for (const [file, text] of files) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text, { flag: 'wx' });
  }
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ dir: root, created: files.map(([f]) => f) }, null, 2));
    return 0;
  }
  const { style } = ctx;
  const where = path.relative(ctx.io.cwd, root) || '.';
  ctx.io.out(`${style.green('✔')} created a Backflow project in ${where}`);
  for (const [file] of files) ctx.io.out(style.dim(`  ${path.join(where, file)}`));
  ctx.io.out('');
  ctx.io.out('Next:');
  if (where !== '.') ctx.io.out(`  cd ${where}`);
  ctx.io.out('  backflow validate --remote');
  ctx.io.out('  backflow plan customers-to-crm');
  ctx.io.out('  backflow run');
  return 0;
}
