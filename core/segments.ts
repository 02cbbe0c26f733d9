import * as z from 'zod';

/**
 * Segments: named groups of a model's rows. A segment is a SQL predicate over the model's columns
 * (`where`), rules compiled to SQL in the source's dialect (`rules`), or a query of its own that
 * returns the members (`source` + `sql` + `primary_key`). A sync that takes a segment reads the
 * segment's rows instead of the whole model; in `mirror` mode onto a membership object (a list, a
 * tag, an audience) it keeps the destination's membership equal to the segment.
 */

export type Dialect = 'postgres' | 'mysql' | 'duckdb' | 'snowflake';

/** The dialect of a source type; connectors of other types are compiled as standard SQL (postgres). */
export function dialectOf(sourceType: string): Dialect {
  return sourceType === 'mysql' || sourceType === 'duckdb' || sourceType === 'snowflake' ? sourceType : 'postgres';
}

export const OPERATORS = [
  'eq',
  'ne',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'not_in',
  'is_null',
  'not_null',
  'contains',
  'starts_with',
  'within_last',
  'not_within_last',
] as const;
export type Operator = (typeof OPERATORS)[number];

/** `30 days`, `12 hours`, `2 weeks`, `6 months`, `1 year`. */
const PERIOD = /^\s*(\d{1,6})\s*(minute|hour|day|week|month|year)s?\s*$/i;

const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const conditionSchema = z
  .strictObject({
    column: z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'expected a column name (letters, digits, "_")'),
    op: z.enum(OPERATORS),
    value: z.union([scalar, z.array(scalar).min(1)]).optional(),
  })
  .superRefine((c, ctx) => {
    const issue = (message: string) => ctx.addIssue({ code: 'custom', message, path: ['value'] });
    if (c.op === 'is_null' || c.op === 'not_null') {
      if (c.value !== undefined) issue(`"${c.op}" takes no value`);
    } else if (c.value === undefined) issue(`"${c.op}" needs a value`);
    else if (c.op === 'in' || c.op === 'not_in') {
      if (!Array.isArray(c.value)) issue(`"${c.op}" takes a list of values`);
    } else if (Array.isArray(c.value)) issue(`"${c.op}" takes one value, not a list (use "in")`);
    else if (c.op === 'within_last' || c.op === 'not_within_last') {
      if (typeof c.value !== 'string' || !PERIOD.test(c.value))
        issue(`"${c.op}" takes a period such as "30 days", "12 hours", "2 weeks", "6 months"`);
    } else if ((c.op === 'contains' || c.op === 'starts_with') && typeof c.value !== 'string')
      issue(`"${c.op}" takes text`);
  });

export type Condition = z.infer<typeof conditionSchema>;
export type RuleGroup = { readonly all: readonly Rule[] } | { readonly any: readonly Rule[] };
export type Rule = Condition | RuleGroup;

export const ruleSchema: z.ZodType<Rule> = z.lazy(() =>
  z.union([
    z.strictObject({ all: z.array(ruleSchema).min(1) }),
    z.strictObject({ any: z.array(ruleSchema).min(1) }),
    conditionSchema,
  ]),
);

export const segmentSchema = z
  .strictObject({
    description: z.string().optional(),
    /** A segment of a model: its rows where `where` (SQL) or `rules` hold. */
    model: z.string().optional(),
    where: z.string().min(1).optional(),
    rules: z
      .union([z.strictObject({ all: z.array(ruleSchema).min(1) }), z.strictObject({ any: z.array(ruleSchema).min(1) })])
      .optional(),
    /** A segment that is a query of its own: the SQL returns the members, one row each. */
    source: z.string().optional(),
    sql: z.string().min(1).optional(),
    primary_key: z.string().min(1).optional(),
    page_size: z.number().int().min(1).max(1_000_000).optional(),
    /** Alarm when the segment's size moves more than this share between two runs (default 50%). */
    alarm_swing_percent: z.number().positive().max(10_000).default(50),
  })
  .superRefine((s, ctx) => {
    const issue = (message: string, path: string[] = []) => ctx.addIssue({ code: 'custom', message, path });
    if (s.model !== undefined) {
      if (s.source !== undefined || s.sql !== undefined || s.primary_key !== undefined)
        issue(
          'a segment is either `model` with `where` or `rules`, or `source` with `sql` and `primary_key`, not both',
        );
      if ((s.where === undefined) === (s.rules === undefined))
        issue('a segment of a model needs exactly one of `where` (SQL) or `rules`');
    } else if (s.sql !== undefined || s.source !== undefined) {
      if (s.where !== undefined || s.rules !== undefined)
        issue('`where` and `rules` filter a `model`: a segment with its own `sql` filters in it');
      if (s.source === undefined) issue('a segment with its own `sql` needs `source`', ['source']);
      if (s.sql === undefined) issue('a segment with `source` needs `sql` returning its members', ['sql']);
      if (s.primary_key === undefined) issue('a segment with its own `sql` needs `primary_key`', ['primary_key']);
    } else issue('a segment needs `model` (with `where` or `rules`) or `source` with `sql` and `primary_key`');
  });

export type SegmentConfig = z.infer<typeof segmentSchema>;

/** The name of the model a segment becomes (internal: segments are read as models). */
export function segmentModelName(segment: string): string {
  return `segment:${segment}`;
}

export function segmentOfModel(model: string): string | undefined {
  return model.startsWith('segment:') ? model.slice('segment:'.length) : undefined;
}

function quoteIdentifier(name: string, dialect: Dialect): string {
  if (dialect === 'mysql') return `\`${name.replace(/`/g, '``')}\``;
  // Snowflake resolves unquoted names case-insensitively (stored upper case); a quoted name must
  // match exactly, so simple names stay unquoted there.
  if (dialect === 'snowflake' && /^[A-Za-z_][A-Za-z0-9_$]*$/.test(name)) return name;
  return `"${name.replace(/"/g, '""')}"`;
}

function literal(value: string | number | boolean, dialect: Dialect): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return String(value);
  }
  if (typeof value === 'boolean') {
    // MySQL has no boolean type: TRUE/FALSE are 1/0 there, which compare right with tinyint(1).
    return value ? 'TRUE' : 'FALSE';
  }
  let text = value.replace(/'/g, "''");
  // MySQL and MariaDB treat backslash as an escape in string literals by default.
  if (dialect === 'mysql') text = text.replace(/\\/g, '\\\\');
  return `'${text}'`;
}

/** A LIKE pattern matching `text` literally, with `\` as the escape character. */
function likeLiteral(text: string, dialect: Dialect, prefix: boolean): string {
  const escaped = text.replace(/[\\%_]/g, (c) => `\\${c}`);
  const pattern = prefix ? `${escaped}%` : `%${escaped}%`;
  return `${literal(pattern, dialect)} ESCAPE ${literal('\\', dialect)}`;
}

/** `now() - <period>` in the dialect. */
function periodAgo(period: string, dialect: Dialect): string {
  const [, amount, unitRaw] = PERIOD.exec(period)!;
  const unit = unitRaw!.toLowerCase();
  switch (dialect) {
    case 'snowflake':
      return `dateadd(${unit}, -${amount}, current_timestamp())`;
    case 'mysql':
      return `(now() - interval ${amount} ${unit})`;
    case 'duckdb':
      return `(now() - interval '${amount} ${unit}')`;
    default:
      return `(now() - interval '${amount} ${unit}s')`;
  }
}

/** Compiles rules to a SQL predicate in the dialect. Values are literals, quoted for the dialect. */
export function compileRules(rule: Rule, dialect: Dialect): string {
  if ('all' in rule) return `(${rule.all.map((r) => compileRules(r, dialect)).join(' AND ')})`;
  if ('any' in rule) return `(${rule.any.map((r) => compileRules(r, dialect)).join(' OR ')})`;
  const column = quoteIdentifier(rule.column, dialect);
  const value = rule.value;
  const one = () => literal(value as string | number | boolean, dialect);
  const list = () => (value as (string | number | boolean)[]).map((v) => literal(v, dialect)).join(', ');
  switch (rule.op) {
    case 'eq':
      return `${column} = ${one()}`;
    case 'ne':
      // "Not equal" keeps rows where the column is null: they are not equal to the value.
      return `(${column} <> ${one()} OR ${column} IS NULL)`;
    case 'gt':
      return `${column} > ${one()}`;
    case 'gte':
      return `${column} >= ${one()}`;
    case 'lt':
      return `${column} < ${one()}`;
    case 'lte':
      return `${column} <= ${one()}`;
    case 'in':
      return `${column} IN (${list()})`;
    case 'not_in':
      return `(${column} NOT IN (${list()}) OR ${column} IS NULL)`;
    case 'is_null':
      return `${column} IS NULL`;
    case 'not_null':
      return `${column} IS NOT NULL`;
    case 'contains':
      return `${column} LIKE ${likeLiteral(String(value), dialect, false)}`;
    case 'starts_with':
      return `${column} LIKE ${likeLiteral(String(value), dialect, true)}`;
    case 'within_last':
      return `${column} >= ${periodAgo(String(value), dialect)}`;
    case 'not_within_last':
      return `(${column} < ${periodAgo(String(value), dialect)} OR ${column} IS NULL)`;
  }
}

/** The columns the rules read, in order of first use. */
export function ruleColumns(rule: Rule, into: string[] = []): string[] {
  if ('all' in rule) for (const r of rule.all) ruleColumns(r, into);
  else if ('any' in rule) for (const r of rule.any) ruleColumns(r, into);
  else if (!into.includes(rule.column)) into.push(rule.column);
  return into;
}

/** The conditions of the rules with their paths under `rules` (for validate's file:line). */
export function ruleConditions(
  rule: Rule,
  path: (string | number)[] = [],
): { condition: Condition; path: (string | number)[] }[] {
  if ('all' in rule) return rule.all.flatMap((r, i) => ruleConditions(r, [...path, 'all', i]));
  if ('any' in rule) return rule.any.flatMap((r, i) => ruleConditions(r, [...path, 'any', i]));
  return [{ condition: rule, path }];
}

/** Column types an operator can compare (validate --remote checks them). */
export function operatorAccepts(op: Operator, type: string): boolean {
  if (op === 'within_last' || op === 'not_within_last') return type === 'date' || type === 'timestamp';
  if (op === 'contains' || op === 'starts_with') return type === 'string';
  return true;
}

/** The SQL of a segment over a model: the model's rows where the predicate holds. */
export function segmentSql(modelSql: string, predicate: string): string {
  return `select * from (${modelSql}) segment_base where ${predicate}`;
}
