import { describe, expect, it } from 'vitest';
import { manifests } from '#connectors/manifests';
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
    parseConfig(text, 'backflow.yml', manifests, env);
  } catch (error) {
    if (error instanceof ConfigFileError)
      return error.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
    throw error;
  }
  return [];
}

describe('loading backflow.yml', () => {
  it('accepts the documented example and fills defaults', () => {
    const config = parseConfig(valid, 'backflow.yml', manifests, {});
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
    expect(
      parseConfig(text, 'backflow.yml', manifests, { CRM_DB: 'crm_prod' }).destinations.crm!.options,
    ).toMatchObject({
      connection: { database: 'crm_prod' },
    });
    expect(
      parseConfig(text.replace('${CRM_DB}', '${CRM_DB:-fallback}'), 'backflow.yml', manifests, {}).destinations.crm!
        .options,
    ).toMatchObject({
      connection: { database: 'fallback' },
    });
    expect(issuesOf(text)).toEqual([
      expect.stringMatching(/^13:58 destinations\.crm\.connection\.database: environment variable CRM_DB is not set/),
    ]);
  });

  describe('YAML syntax errors', () => {
    // Each broken document yields exactly the YAML problem, where it can be fixed: no schema
    // check runs on it (that cascaded into "required"/"unknown key" lines), no parser echo.
    const cases: [string, string, string][] = [
      [
        'a key indented less than its siblings',
        valid.replace('    primary_key: id', '   primary_key: id'),
        '8:4 : this key is not lined up with the keys above it: indent it with as many spaces as the other keys of its map',
      ],
      [
        'a line indented more than the key above it',
        valid.replace('    sql: select', '      sql: select'),
        '6:13 : "warehouse" is followed by line 7, which is indented more: a key takes a value on its own line or a nested block below it, not both; check the indentation of line 7',
      ],
      [
        'an unclosed quote (reported where it opens, not at the end of the file)',
        valid.replace('object: contacts', 'object: "contacts'),
        '19:13 : unclosed " quote: the value that starts here never ends; close it with " on the same line',
      ],
      [
        'an unclosed bracket (reported at the bracket, not at the next key)',
        valid.replace('match: { id: id }', 'match: { id: id'),
        '21:12 : the map opened by "{" does not end where YAML expects: close it with "}", and indent each line that continues it more than its key',
      ],
      [
        'an unclosed list in a map',
        valid.replace('match: { id: id }', 'match: { id: [a, b }'),
        '21:18 : the list opened by "[" does not end where YAML expects: close it with "]", and indent each line that continues it more than its key',
      ],
      [
        'a tab in the indentation (the parser adds 7 echoes of it)',
        valid.replace('    object: contacts', '\tobject: contacts'),
        '19:1 : a tab in the indentation: YAML indents with spaces only; replace the tab with spaces',
      ],
      [
        'a duplicate key, at the second one',
        valid.replace('    mode: upsert', '    mode: upsert\n    mode: insert'),
        '21:5 : duplicate key "mode": it is already set on line 20 of the same map; keep one of the two',
      ],
      [
        'a stray ":" in a value',
        valid.replace('object: contacts', 'object: contacts: x'),
        '19:13 : a second ": " on one line: quote a value that contains ": " (for example "contacts: x")',
      ],
      [
        'a stray ":" alone on a line (valid YAML: an empty key)',
        valid.replace('    object: contacts', '    object: contacts\n    :'),
        '20:5 : ":" without a key before it: write the key (key: value) or remove the ":"',
      ],
      [
        'a ":" without a space after it',
        valid.replace('    object: contacts', '    object:contacts'),
        '19:5 : "object:contacts" runs on into line 20 and YAML reads both as one key: a key and its ":" must be on one line, with a space after the ":" (key: value); check the indentation of line 20',
      ],
      [
        'a stray "}" (the parser adds 21 echoes of it)',
        valid.replace('match: { id: id }', 'match: { id: id }}'),
        '21:22 : "}" closes nothing: remove it, or open its "{" before',
      ],
    ];
    it.each(cases)('%s', (_name, text, issue) => {
      expect(issuesOf(text)).toEqual([issue]);
    });

    it('reports every duplicate key, in the order of the file, and nothing else', () => {
      const text = valid
        .replace('    mode: upsert', '    mode: upsert\n    mode: insert')
        .replace('    cursor: updated_at', '    cursor: updated_at\n    sql: select 1');
      expect(issuesOf(text)).toEqual([
        '10:5 : duplicate key "sql": it is already set on line 7 of the same map; keep one of the two',
        '22:5 : duplicate key "mode": it is already set on line 21 of the same map; keep one of the two',
      ]);
    });

    it('prints each problem as file:line:column and the message', () => {
      expect(() =>
        parseConfig(valid.replace('object: contacts', 'object: "contacts'), 'backflow.yml', manifests, {}),
      ).toThrow('Invalid config (1 problem):\n  backflow.yml:19:13 unclosed " quote');
    });
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
      '26:15 syncs.customers-to-crm.schedule: rate: a value of 1 takes the singular unit: rate(1 minute)',
    ]);
    const zoned = valid.replace(
      'schedule: rate(15 minutes)',
      'schedule: cron(0 6 * * ? *)\n    timezone: Europe/Paris',
    );
    expect(parseConfig(zoned, 'backflow.yml', manifests, {}).syncs['customers-to-crm']!.timezone).toBe('Europe/Paris');
    expect(issuesOf(zoned.replace('Europe/Paris', 'Europe/Pariss'))).toEqual([
      expect.stringMatching(/timezone: expected an IANA time zone/),
    ]);
    const monitored = `monitoring: { email: data@example.com }\n${valid}`;
    expect(parseConfig(monitored, 'backflow.yml', manifests, {}).monitoring.email).toBe('data@example.com');
    expect(issuesOf(monitored.replace('data@example.com', 'not-an-email'))).toHaveLength(1);
  });

  describe('schedules, field by field as EventBridge Scheduler reads them', () => {
    const at = (schedule: string) => valid.replace('rate(15 minutes)', schedule);
    const where = '26:15 syncs.customers-to-crm.schedule: ';

    it.each([
      ['cron(0 25 * * ? *)', ['hours field: 25 is out of range 0-23']],
      [
        'cron(99 99 99 99 ? 9999)',
        [
          'minutes field: 99 is out of range 0-59',
          'hours field: 99 is out of range 0-23',
          'day-of-month field: 99 is out of range 1-31',
          'month field: 99 is out of range 1-12 or JAN-DEC',
          'year field: 9999 is out of range 1970-2199',
        ],
      ],
      [
        'cron(a b c d ? f)',
        [
          'minutes field: "a" is not a minute (0-59)',
          'hours field: "b" is not an hour (0-23)',
          'day-of-month field: "c" is not a day of the month (1-31)',
          'month field: "d" is not a month (1-12 or JAN-DEC)',
          'year field: "f" is not a year (1970-2199)',
        ],
      ],
      ['cron(0 6 ? * MON-FRX *)', ['day-of-week field: "FRX" is not a day of the week (1-7 or SUN-SAT)']],
      ['cron(0 6 * * ? 1969)', ['year field: 1969 is out of range 1970-2199']],
      ['cron(0 6 * * ? 2030-2020)', ['year field: range "2030-2020" runs backwards: write the earlier year first']],
      ['cron(0/75 * * * ? *)', ['minutes field: step "75" of "0/75" is out of range 1-59']],
      ['cron(? 6 * * ? *)', ['minutes field: "?" is not allowed (the wildcards of this field are , - * /)']],
      ['cron(0 6 ? * */2 *)', ['day-of-week field: "/" is not allowed (the wildcards of this field are , - * ? L #)']],
      ['cron(0 6 * 1#2 ? *)', ['month field: "#" is not allowed (the wildcards of this field are , - * /)']],
      ['cron(0 6 * * ? L)', ['year field: "L" is not a year (1970-2199)']],
      [
        'cron(0 6 L-2 * ? *)',
        [
          'day-of-month field: "L-2" is not valid: L and W stand alone in the field, as L (last day), LW (last weekday) or nW (weekday nearest day n, e.g. 15W)',
        ],
      ],
      ['cron(0 6 32W * ? *)', ['day-of-month field: 32 is out of range 1-31']],
      [
        'cron(0 6 ? * 3#1,6#3 *)',
        [
          'day-of-week field: "3#1,6#3" is not valid: L and # stand alone in the field, as L (Saturday), nL (last day n of the month, e.g. 6L) or n#k (k-th day n of the month, e.g. 2#1)',
        ],
      ],
      ['cron(0 6 ? * 2#6 *)', ['day-of-week field: "2#6": the week after "#" is out of range 1-5']],
      ['cron(0 6 ? * 8L *)', ['day-of-week field: 8 is out of range 1-7 or SUN-SAT']],
      ['cron(0 6 1,,2 * ? *)', ['day-of-month field: empty value in "1,,2"']],
      [
        'cron(0 6 * * 1 *)',
        [
          'exactly one of day-of-month (3rd field) and day-of-week (5th field) must be "?", e.g. cron(0 6 * * ? *) or cron(0 6 ? * MON *)',
        ],
      ],
      [
        'cron(0 6 ? * ? *)',
        [
          'exactly one of day-of-month (3rd field) and day-of-week (5th field) must be "?", e.g. cron(0 6 * * ? *) or cron(0 6 ? * MON *)',
        ],
      ],
      [
        'cron(0 6 * * ?)',
        [
          'cron: expected 6 fields (minutes hours day-of-month month day-of-week year), got 5; the 6th is the year, e.g. cron(0 6 * * ? *)',
        ],
      ],
      ['rate(5 minute)', ['rate: a value above 1 takes the plural unit: rate(5 minutes)']],
      ['rate(0 minutes)', ['rate: the value must be a whole number of 1 or more, got "0"']],
      ['rate(5 mins)', ['rate: the unit must be minute(s), hour(s) or day(s), got "mins"']],
      ['rate(5 constructors)', ['rate: the unit must be minute(s), hour(s) or day(s), got "constructors"']],
      [
        'every 15 minutes',
        ['expected rate(value unit) or cron(minutes hours day-of-month month day-of-week year), e.g. rate(15 minutes)'],
      ],
    ])('rejects %s, naming the field, at the schedule value', (schedule, messages) => {
      expect(issuesOf(at(schedule))).toEqual(messages.map((m) => `${where}${m}`));
    });

    it('checks full_resync the same way', () => {
      const text = valid.replace(
        '    schedule: rate(15 minutes)',
        '    schedule: rate(15 minutes)\n    full_resync: cron(0 25 * * ? *)',
      );
      expect(issuesOf(text)).toEqual([
        '27:18 syncs.customers-to-crm.full_resync: hours field: 25 is out of range 0-23',
      ]);
    });

    // The examples of https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html
    // and eb-rate-expressions.html, and each wildcard where AWS allows it.
    it.each([
      'cron(0 10 * * ? *)',
      'cron(15 12 * * ? *)',
      'cron(0 18 ? * MON-FRI *)',
      'cron(0 8 1 * ? *)',
      'cron(0/15 * * * ? *)',
      'cron(0/10 * ? * MON-FRI *)',
      'cron(0/5 8-17 ? * MON-FRI *)',
      'cron(0/30 20-2 ? * MON-FRI *)',
      'cron(0 12 * * ? *)',
      'cron(5,35 14 * * ? *)',
      'cron(15 10 ? * 6L 2019-2022)',
      'cron(0 9 ? * 2#1 *)',
      'cron(0 0 L * ? *)',
      'cron(0 0 LW * ? *)',
      'cron(0 0 3W * ? *)',
      'cron(0 0 ? * L *)',
      'cron(0 0 ? * FRIL *)',
      'cron(30 0 1 JAN,APR,JUL,OCT ? *)',
      'cron(0 0 1 1-12/3 ? *)',
      'cron(*/5 * * * ? *)',
      'cron(0 0 1/7 * ? *)',
      'cron(0 6 ? * mon-fri 2026,2028-2030)',
      'rate(1 minute)',
      'rate(5 minutes)',
      'rate(1 hour)',
      'rate(12 hours)',
      'rate(1 day)',
      'rate(7 days)',
    ])('accepts %s', (schedule) => {
      expect(parseConfig(at(schedule), 'backflow.yml', manifests, {}).syncs['customers-to-crm']!.schedule).toBe(
        schedule,
      );
    });
  });
});

describe('segments in the config', () => {
  const withSegments = valid
    .replace(
      'destinations:\n',
      `segments:
  high_value:
    model: customers
    rules:
      all:
        - { column: ltv, op: gte, value: 1000 }
        - { column: signed_up_at, op: within_last, value: 30 days }
  churn:
    source: warehouse
    sql: select id, email from churn_scores where score > 0.8
    primary_key: id
destinations:
`,
    )
    .replace('    model: customers\n    destination: crm', '    segment: high_value\n    destination: crm');

  it('reads a segment as a model of its rows: the rules compiled to the source dialect, no cursor', () => {
    const config = parseConfig(withSegments, 'backflow.yml', manifests, {});
    const sync = config.syncs['customers-to-crm']!;
    expect(sync.segment).toBe('high_value');
    expect(sync.model).toBe('segment:high_value');
    expect(config.models['segment:high_value']).toMatchObject({
      source: 'warehouse',
      primary_key: 'id',
      sql: `select * from (select * from customers) segment_base where ("ltv" >= 1000 AND "signed_up_at" >= (now() - interval '30 day'))`,
    });
    expect(config.models['segment:high_value']!.cursor).toBeUndefined();
    expect(config.models['segment:churn']).toMatchObject({
      sql: 'select id, email from churn_scores where score > 0.8',
    });
  });

  it('points at the file, line and key of a broken rule, a missing model or segment, and a sync with both', () => {
    const broken = withSegments
      .replace('op: gte, value: 1000', 'op: gte')
      .replace('value: 30 days', 'value: last month')
      .replace('  churn:\n    source: warehouse', '  churn:\n    source: warehose')
      .replace('    segment: high_value\n', '    segment: high_valu\n    model: customers\n');
    expect(issuesOf(broken)).toEqual([
      expect.stringMatching(/^15:11 segments\.high_value\.rules\.all\.0\.value: "gte" needs a value/),
      expect.stringMatching(
        /^16:59 segments\.high_value\.rules\.all\.1\.value: "within_last" takes a period such as "30 days"/,
      ),
      expect.stringMatching(
        /^18:13 segments\.churn\.source: no source named "warehose" \(did you mean "warehouse"\?\)/,
      ),
      expect.stringMatching(/^\d+:\d+ syncs\.customers-to-crm: a sync needs exactly one of `model` or `segment`/),
      expect.stringMatching(
        /^\d+:\d+ syncs\.customers-to-crm\.segment: no segment named "high_valu" \(did you mean "high_value"\?\)/,
      ),
    ]);
  });
});
