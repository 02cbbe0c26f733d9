import { describe, expect, it } from 'vitest';
import { parseConfig } from '#core/config/load';
import { ConfigFileError } from '#core/errors';

const valid = `version: 1
sources:
  warehouse: { type: duckdb, path: data/warehouse.duckdb }
models:
  customers:
    source: warehouse
    sql: select * from customers
    primary_key: id
    cursor: updated_at
destinations:
  crm:
    type: postgres
    connection: { host: 127.0.0.1, port: 5432, database: crm, user: postgres }
    secret: crm-postgres
syncs:
  customers-to-crm:
    model: customers
    destination: crm
    object: contacts
    mode: upsert
    match: { id: id }
    mappings:
      email: email
      first_name: first_name
      lifetime_value: ltv
    schedule: rate(15 minutes)
    guardrails: { max_delete_ratio: 0.2 }
`;

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'backflow.yml', env);
  } catch (error) {
    if (error instanceof ConfigFileError)
      return error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
    throw error;
  }
  return [];
}

describe('loading backflow.yml', () => {
  it('accepts the documented example and fills defaults', () => {
    const config = parseConfig(valid, 'backflow.yml', {});
    const sync = config.syncs['customers-to-crm']!;
    expect(sync.mode).toBe('upsert');
    expect(sync.enabled).toBe(true);
    expect(config.models.customers!.page_size).toBe(10_000);
    expect(config.destinations.crm!.lane.max_receives).toBe(5);
  });

  it('names the line, column and key path of a wrong enum value, with a suggestion', () => {
    const issues = issuesOf(valid.replace('mode: upsert', 'mode: upsrt'));
    expect(issues).toEqual([
      expect.stringMatching(
        /^20:11 syncs\.customers-to-crm\.mode: expected one of upsert \| update \| insert \| mirror, got string "upsrt" \(did you mean "upsert"\?\)/,
      ),
    ]);
  });

  it('says "did you mean" for an unknown key and points at the key', () => {
    const issues = issuesOf(valid.replace('primary_key: id', 'primary_kye: id'));
    expect(issues).toHaveLength(2);
    expect(issues).toContainEqual(
      expect.stringMatching(/^6:5 models\.customers\.primary_key: required: expected string/),
    );
    expect(issues).toContainEqual(
      expect.stringMatching(
        /^8:5 models\.customers\.primary_kye: unknown key "primary_kye" \(did you mean "primary_key"\?\)/,
      ),
    );
  });

  it('reports every problem at once, sorted by line', () => {
    const broken = valid
      .replace('source: warehouse', 'source: warehous')
      .replace('destination: crm', 'destination: cmr')
      .replace('rate(15 minutes)', 'every 15 minutes');
    const issues = issuesOf(broken);
    expect(issues.map((i) => i.split(' ')[1])).toEqual([
      'models.customers.source:',
      'syncs.customers-to-crm.destination:',
      'syncs.customers-to-crm.schedule:',
    ]);
    const refs = issuesOf(
      valid.replace('source: warehouse', 'source: warehous').replace('destination: crm', 'destination: cmr'),
    );
    expect(refs).toEqual([
      expect.stringMatching(
        /^6:13 models\.customers\.source: no source named "warehous" \(did you mean "warehouse"\?\)/,
      ),
      expect.stringMatching(
        /^18:18 syncs\.customers-to-crm\.destination: no destination named "cmr" \(did you mean "crm"\?\)/,
      ),
    ]);
  });

  it('validates connector options with the connector schema', () => {
    const issues = issuesOf(valid.replace('type: postgres', 'type: postgress'));
    expect(issues).toEqual([
      expect.stringMatching(
        /^12:11 destinations\.crm\.type: unknown destination type "postgress" \(did you mean "postgres"\?\)/,
      ),
    ]);
  });

  it('refuses a secret written in the config file', () => {
    const issues = issuesOf(valid.replace('user: postgres }', 'user: postgres, password: hunter2 }'));
    expect(issues).toEqual([
      expect.stringMatching(/destinations\.crm\.connection\.password: "connection\.password" is a secret/),
    ]);
    expect(issues.join()).not.toContain('hunter2');
  });

  it('substitutes ${ENV} in values and reports a missing variable where it is used', () => {
    const text = valid.replace('database: crm', 'database: "${CRM_DB}"');
    expect(parseConfig(text, 'backflow.yml', { CRM_DB: 'crm_prod' }).destinations.crm!.options).toMatchObject({
      connection: { database: 'crm_prod' },
    });
    expect(
      parseConfig(text.replace('${CRM_DB}', '${CRM_DB:-fallback}'), 'backflow.yml', {}).destinations.crm!.options,
    ).toMatchObject({
      connection: { database: 'fallback' },
    });
    expect(issuesOf(text)).toEqual([
      expect.stringMatching(/^13:58 destinations\.crm\.connection\.database: environment variable CRM_DB is not set/),
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf('version: 1\nsources:\n  a: [unclosed\n');
    expect(issues[0]).toMatch(/^\d+:\d+ /);
  });

  it('rejects a mode the destination does not support and more than one match key', () => {
    const issues = issuesOf(valid.replace('match: { id: id }', 'match: { id: id, email: email }'));
    expect(issues).toEqual([expect.stringMatching(/syncs\.customers-to-crm\.match: expected exactly one/)]);
  });

  it('checks schedules, time zones and the monitoring email as EventBridge and SNS would', () => {
    expect(issuesOf(valid.replace('rate(15 minutes)', 'cron(0 6 * * 1 *)'))).toEqual([
      expect.stringMatching(
        /schedule: exactly one of day-of-month \(3rd field\) and day-of-week \(5th field\) must be "\?"/,
      ),
    ]);
    expect(issuesOf(valid.replace('rate(15 minutes)', 'rate(1 minutes)'))).toEqual([
      expect.stringMatching(/schedule: expected rate/),
    ]);
    const zoned = valid.replace(
      'schedule: rate(15 minutes)',
      'schedule: cron(0 6 * * ? *)\n    timezone: Europe/Paris',
    );
    expect(parseConfig(zoned, 'backflow.yml', {}).syncs['customers-to-crm']!.timezone).toBe('Europe/Paris');
    expect(issuesOf(zoned.replace('Europe/Paris', 'Europe/Pariss'))).toEqual([
      expect.stringMatching(/timezone: expected an IANA time zone/),
    ]);
    const monitored = `monitoring: { email: data@example.com }\n${valid}`;
    expect(parseConfig(monitored, 'backflow.yml', {}).monitoring.email).toBe('data@example.com');
    expect(issuesOf(monitored.replace('data@example.com', 'not-an-email'))).toHaveLength(1);
  });
});
