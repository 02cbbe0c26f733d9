/**
 * EventBridge Scheduler schedule expressions, `rate(value unit)` and `cron(fields)`: one parser
 * for the config check (every error names its field) and for the infrastructure (the interval of
 * the staleness alarm, infra/schedule-interval.ts). The rules are AWS's:
 * - https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html (rate and cron
 *   schedules of EventBridge Scheduler, which Backflow deploys);
 * - https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html (the six
 *   fields, their values and the wildcards each one allows: `L` and `W` in day-of-month, `L` and
 *   `#` in day-of-week, `?` in one of the two, no `/` in day-of-week; a range such as `20-2` in
 *   hours wraps around, as AWS's own example "every 30 minutes from 10:00 pm to 2:00 am" does);
 * - https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html (the value
 *   is a positive whole number; a value of 1 takes the singular unit, any other the plural).
 * What AWS leaves to its Quartz-style parser is taken from it: names are case-insensitive, a step
 * is at most the field's largest value, `L`, `LW`, `nW`, `nL` and `n#k` stand alone in their field.
 */

export type Schedule = RateSchedule | CronSchedule;

export interface RateSchedule {
  readonly kind: 'rate';
  readonly seconds: number;
}

export interface CronSchedule {
  readonly kind: 'cron';
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly years: ReadonlySet<number>;
  /** Whether the day field that is not `?` (day-of-month or day-of-week) selects this day. */
  readonly matchesDay: (day: CalendarDay) => boolean;
}

export interface CalendarDay {
  readonly year: number;
  readonly month: number;
  readonly date: number;
  /** EventBridge numbering: 1 = Sunday … 7 = Saturday. */
  readonly weekday: number;
  readonly daysInMonth: number;
}

export type ParsedSchedule =
  | { readonly ok: true; readonly schedule: Schedule }
  | { readonly ok: false; readonly errors: readonly string[] };

const UNIT_SECONDS = new Map([
  ['minute', 60],
  ['hour', 3600],
  ['day', 86_400],
]);
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface Field {
  readonly name: string;
  /** What one value is, for "is not a …". */
  readonly noun: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
  /** The wildcards AWS allows in the field, as its reference table lists them. */
  readonly wildcards: string;
}

const MINUTES: Field = { name: 'minutes', noun: 'a minute', min: 0, max: 59, wildcards: ', - * /' };
const HOURS: Field = { name: 'hours', noun: 'an hour', min: 0, max: 23, wildcards: ', - * /' };
const DAY_OF_MONTH: Field = {
  name: 'day-of-month',
  noun: 'a day of the month',
  min: 1,
  max: 31,
  wildcards: ', - * ? / L W',
};
const MONTH: Field = { name: 'month', noun: 'a month', min: 1, max: 12, names: MONTHS, wildcards: ', - * /' };
const DAY_OF_WEEK: Field = {
  name: 'day-of-week',
  noun: 'a day of the week',
  min: 1,
  max: 7,
  names: WEEKDAYS,
  wildcards: ', - * ? L #',
};
const YEAR: Field = { name: 'year', noun: 'a year', min: 1970, max: 2199, wildcards: ', - * /' };

const FORMAT =
  'expected rate(value unit) or cron(minutes hours day-of-month month day-of-week year), e.g. rate(15 minutes)';

/** Parses a schedule expression; on failure, every problem found, each naming its field. */
export function parseSchedule(expression: string): ParsedSchedule {
  const rate = /^rate\((.*)\)$/.exec(expression);
  if (rate) return parseRate(rate[1]!);
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (cron) return parseCron(cron[1]!);
  return { ok: false, errors: [FORMAT] };
}

function parseRate(body: string): ParsedSchedule {
  const parts = /^(\S+) (\S+)$/.exec(body);
  if (!parts)
    return { ok: false, errors: [`rate: expected rate(value unit), e.g. rate(15 minutes), got rate(${body})`] };
  const [, valueText, unit] = parts as unknown as [string, string, string];
  const errors: string[] = [];
  const value = Number(valueText);
  if (!/^\d+$/.test(valueText) || value < 1) {
    errors.push(`rate: the value must be a whole number of 1 or more, got "${valueText}"`);
  }
  const singular = unit.replace(/s$/, '');
  if (!UNIT_SECONDS.has(singular)) {
    errors.push(`rate: the unit must be minute(s), hour(s) or day(s), got "${unit}"`);
  } else if (errors.length === 0 && value === 1 && unit !== singular) {
    errors.push(`rate: a value of 1 takes the singular unit: rate(1 ${singular})`);
  } else if (errors.length === 0 && value > 1 && unit === singular) {
    errors.push(`rate: a value above 1 takes the plural unit: rate(${value} ${singular}s)`);
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, schedule: { kind: 'rate', seconds: value * UNIT_SECONDS.get(singular)! } };
}

function parseCron(body: string): ParsedSchedule {
  const fields = body.trim().split(/\s+/);
  if (fields.length !== 6) {
    return {
      ok: false,
      errors: [
        `cron: expected 6 fields (minutes hours day-of-month month day-of-week year), got ${body.trim() === '' ? 0 : fields.length}${fields.length === 5 ? '; the 6th is the year, e.g. cron(0 6 * * ? *)' : ''}`,
      ],
    };
  }
  const [minutesText, hoursText, dayOfMonthText, monthText, dayOfWeekText, yearText] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const errors: string[] = [];
  const check = <T>(field: Field, text: string, parse: (field: Field, text: string) => T | string): T | undefined => {
    const illegal = [...text].find((c) => !/[0-9A-Za-z]/.test(c) && !field.wildcards.split(' ').includes(c));
    const result = illegal
      ? `"${illegal}" is not allowed (the wildcards of this field are ${field.wildcards})`
      : parse(field, text);
    if (typeof result === 'string') {
      errors.push(`${field.name} field: ${result}`);
      return undefined;
    }
    return result;
  };
  const minutes = check(MINUTES, minutesText, values);
  const hours = check(HOURS, hoursText, values);
  const dayOfMonth = check(DAY_OF_MONTH, dayOfMonthText, monthDayTest);
  const months = check(MONTH, monthText, values);
  const dayOfWeek = check(DAY_OF_WEEK, dayOfWeekText, weekdayTest);
  const years = check(YEAR, yearText, values);
  if ((dayOfMonthText === '?') === (dayOfWeekText === '?')) {
    errors.push(
      'exactly one of day-of-month (3rd field) and day-of-week (5th field) must be "?", e.g. cron(0 6 * * ? *) or cron(0 6 ? * MON *)',
    );
  }
  if (errors.length > 0 || !minutes || !hours || !months || !years) return { ok: false, errors };
  const matchesDay = (dayOfMonthText === '?' ? dayOfWeek : dayOfMonth)!;
  return { ok: true, schedule: { kind: 'cron', minutes, hours, months, years, matchesDay } };
}

/**
 * The values of a field made of `*`, `a`, `a-b` (wrapping past the end when a > b, except for
 * years), `*` or `a` or `a-b` followed by `/step`, and comma lists of those; names where the
 * field has them. Returns what is wrong otherwise.
 */
function values(field: Field, text: string): Set<number> | string {
  const out = new Set<number>();
  for (const item of text.split(',')) {
    if (item === '') return `empty value in "${text}"`;
    const [range, stepText, extra] = item.split('/') as [string, string | undefined, string | undefined];
    if (extra !== undefined) return `"${item}" has more than one "/"`;
    let step = 1;
    if (stepText !== undefined) {
      step = Number(stepText);
      if (!/^\d+$/.test(stepText) || step < 1 || step > field.max) {
        return `step "${stepText}" of "${item}" is out of range 1-${field.max}`;
      }
    }
    let from: number;
    let to: number;
    if (range === '*') [from, to] = [field.min, field.max];
    else {
      const bounds = range.split('-');
      if (bounds.length > 2 || bounds.includes('')) return `"${item}" is not a value or a range a-b`;
      const numbers: number[] = [];
      for (const bound of bounds) {
        const value = fieldValue(field, bound);
        if (typeof value === 'string') return value;
        numbers.push(value);
      }
      from = numbers[0]!;
      to = numbers[1] ?? (stepText === undefined ? from : field.max);
      if (field === YEAR && from > to) return `range "${range}" runs backwards: write the earlier year first`;
    }
    // A range that wraps (hours 20-2) runs to the field's end and on from its start.
    const count = from <= to ? to - from + 1 : field.max - from + 1 + to - field.min + 1;
    for (let i = 0; i < count; i += step) {
      const value = from + i;
      out.add(value > field.max ? value - (field.max - field.min + 1) : value);
    }
  }
  return out;
}

/** One value of a field: a number in its range, or a name where the field has names. */
function fieldValue(field: Field, text: string): number | string {
  const named = field.names?.indexOf(text.toUpperCase()) ?? -1;
  if (named >= 0) return named + field.min;
  const range = `${field.min}-${field.max}${field.names ? ` or ${field.names[0]}-${field.names.at(-1)}` : ''}`;
  if (!/^\d+$/.test(text)) return `"${text}" is not ${field.noun} (${range})`;
  const value = Number(text);
  return value < field.min || value > field.max ? `${value} is out of range ${range}` : value;
}

type DayTest = (day: CalendarDay) => boolean;

/** Day-of-month: `?`, values as in `values`, or alone: `L` (last day), `LW` (last weekday), `nW` (weekday nearest n). */
function monthDayTest(field: Field, text: string): DayTest | string {
  const upper = text.toUpperCase();
  if (upper === '?') return () => true;
  if (upper === 'L') return (d) => d.date === d.daysInMonth;
  if (upper === 'LW') return (d) => d.date === nearestWeekday(d, d.daysInMonth);
  if (/[LW]/.test(upper)) {
    const nearest = /^(\d+)W$/.exec(upper);
    if (!nearest) {
      return `"${text}" is not valid: L and W stand alone in the field, as L (last day), LW (last weekday) or nW (weekday nearest day n, e.g. 15W)`;
    }
    const target = fieldValue(field, nearest[1]!);
    if (typeof target === 'string') return target;
    return (d) => d.date === nearestWeekday(d, Math.min(target, d.daysInMonth));
  }
  const dates = values(field, text);
  return typeof dates === 'string' ? dates : (d) => dates.has(d.date);
}

/** Day-of-week: `?`, values as in `values`, or alone: `L` (Saturday), `nL` (last n of the month), `n#k` (k-th n). */
function weekdayTest(field: Field, text: string): DayTest | string {
  const upper = text.toUpperCase();
  if (upper === '?') return () => true;
  if (upper === 'L') return (d) => d.weekday === 7;
  if (/[L#]/.test(upper)) {
    const last = /^(\w+)L$/.exec(upper);
    const nth = /^(\w+)#(\w+)$/.exec(upper);
    if (!last && !nth) {
      return `"${text}" is not valid: L and # stand alone in the field, as L (Saturday), nL (last day n of the month, e.g. 6L) or n#k (k-th day n of the month, e.g. 2#1)`;
    }
    const weekday = fieldValue(field, (last ?? nth)![1]!);
    if (typeof weekday === 'string') return weekday;
    if (last) return (d) => d.weekday === weekday && d.date + 7 > d.daysInMonth;
    const k = Number(nth![2]);
    if (!/^[1-5]$/.test(nth![2]!)) return `"${text}": the week after "#" is out of range 1-5`;
    return (d) => d.weekday === weekday && Math.ceil(d.date / 7) === k;
  }
  const weekdays = values(field, text);
  return typeof weekdays === 'string' ? weekdays : (d) => weekdays.has(d.weekday);
}

/** The date of the weekday (Mon–Fri) nearest to `target` within the same month. */
function nearestWeekday(day: CalendarDay, target: number): number {
  const weekday = (((day.weekday - 1 + (target - day.date)) % 7) + 7) % 7; // 0 = Sunday
  if (weekday === 6) return target === 1 ? target + 2 : target - 1;
  if (weekday === 0) return target === day.daysInMonth ? target - 2 : target + 1;
  return target;
}
