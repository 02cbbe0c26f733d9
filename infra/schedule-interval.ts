/**
 * How often an EventBridge Scheduler expression fires, for the staleness alarm ("no successful
 * run in 3 × the schedule interval"). A cron's interval is its longest gap between two firings,
 * measured in UTC over the years 2024–2027 (a leap year included), so a schedule that skips the
 * weekend is judged by its weekend gap. Expressions: rate(...) and cron(...) as documented in
 * https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
 */

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const CRON = /^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$/;
const UNIT_SECONDS: Record<string, number> = { minute: 60, hour: 3600, day: 86_400 };
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const FIRST_DAY = Date.UTC(2024, 0, 1);
const DAYS = 4 * 365 + 1;

/** The longest time between two firings, in seconds; undefined when it cannot be told. */
export function scheduleIntervalSeconds(expression: string): number | undefined {
  const rate = RATE.exec(expression);
  if (rate) return Number(rate[1]) * UNIT_SECONDS[rate[2]!.replace(/s$/, '')]!;
  const cron = CRON.exec(expression);
  return cron ? cronInterval(cron.slice(1) as CronFields) : undefined;
}

type CronFields = [string, string, string, string, string, string];
type DayTest = (day: Day) => boolean;

interface Day {
  readonly year: number;
  readonly month: number;
  readonly date: number;
  /** EventBridge numbering: 1 = Sunday … 7 = Saturday. */
  readonly weekday: number;
  readonly daysInMonth: number;
}

function cronInterval([minutes, hours, dayOfMonth, month, dayOfWeek, year]: CronFields): number | undefined {
  const minuteSet = values(minutes, 0, 59);
  const hourSet = values(hours, 0, 23);
  const monthSet = values(month, 1, 12, MONTHS);
  const yearSet = values(year, 1970, 2199);
  const dayMatches = dayOfMonth === '?' ? weekdayTest(dayOfWeek) : monthDayTest(dayOfMonth);
  if (!minuteSet || !hourSet || !monthSet || !yearSet || !dayMatches) return undefined;

  const times = [...hourSet].flatMap((h) => [...minuteSet].map((m) => h * 3600 + m * 60)).sort((a, b) => a - b);
  if (times.length === 0) return undefined;
  let longest = 0;
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
  const first = times[0]!;
  const last = times[times.length - 1]!;

  let previous: number | undefined;
  let firings = 0;
  for (let n = 0; n < DAYS; n++) {
    const at = new Date(FIRST_DAY + n * 86_400_000);
    const day: Day = {
      year: at.getUTCFullYear(),
      month: at.getUTCMonth() + 1,
      date: at.getUTCDate(),
      weekday: at.getUTCDay() + 1,
      daysInMonth: new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 0)).getUTCDate(),
    };
    if (!yearSet.has(day.year) || !monthSet.has(day.month) || !dayMatches(day)) continue;
    if (previous !== undefined) longest = Math.max(longest, (n - previous) * 86_400 + first - last);
    previous = n;
    firings += times.length;
  }
  return firings >= 2 ? longest : undefined;
}

/** The values of a field made of `*`, `a`, `a-b`, `a/step`, `a-b/step`, lists of those, and names. */
function values(field: string, min: number, max: number, names?: readonly string[]): Set<number> | undefined {
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/') as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) return undefined;
    let from: number | undefined;
    let to: number | undefined;
    if (range === '*') [from, to] = [min, max];
    else {
      const [a, b] = range.split('-');
      from = number(a, names, min);
      to = b === undefined ? (stepText === undefined ? from : max) : number(b, names, min);
    }
    if (from === undefined || to === undefined || from < min || to > max || from > to) return undefined;
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

function number(text: string | undefined, names: readonly string[] | undefined, min: number): number | undefined {
  if (text === undefined || text === '') return undefined;
  const named = names?.indexOf(text.toUpperCase()) ?? -1;
  if (named >= 0) return named + min;
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/** Day-of-month: numbers and ranges, `L` (last day), `LW` (last weekday), `nW` (weekday nearest n). */
function monthDayTest(field: string): DayTest | undefined {
  if (field === '*') return () => true;
  if (field === 'L') return (d) => d.date === d.daysInMonth;
  if (field === 'LW') return (d) => d.date === nearestWeekday(d, d.daysInMonth);
  const nearest = /^(\d+)W$/.exec(field);
  if (nearest) {
    const target = Number(nearest[1]);
    return target >= 1 && target <= 31
      ? (d) => d.date === nearestWeekday(d, Math.min(target, d.daysInMonth))
      : undefined;
  }
  const dates = values(field, 1, 31);
  return dates === undefined ? undefined : (d) => dates.has(d.date);
}

/** Day-of-week: numbers (1 = SUN) or names and ranges, `L` (Saturday), `nL` (last n of the month), `n#k`. */
function weekdayTest(field: string): DayTest | undefined {
  if (field === 'L') return (d) => d.weekday === 7;
  const last = /^(\w+)L$/.exec(field);
  if (last) {
    const weekday = number(last[1], WEEKDAYS, 1);
    return weekday === undefined ? undefined : (d) => d.weekday === weekday && d.date + 7 > d.daysInMonth;
  }
  const nth = /^(\w+)#([1-5])$/.exec(field);
  if (nth) {
    const weekday = number(nth[1], WEEKDAYS, 1);
    const k = Number(nth[2]);
    return weekday === undefined ? undefined : (d) => d.weekday === weekday && Math.ceil(d.date / 7) === k;
  }
  const weekdays = values(field, 1, 7, WEEKDAYS);
  return weekdays === undefined ? undefined : (d) => weekdays.has(d.weekday);
}

/** The date of the weekday (Mon–Fri) nearest to `target` within the same month. */
function nearestWeekday(day: Day, target: number): number {
  const weekday = (((day.weekday - 1 + (target - day.date)) % 7) + 7) % 7; // 0 = Sunday
  if (weekday === 6) return target === 1 ? target + 2 : target - 1;
  if (weekday === 0) return target === day.daysInMonth ? target - 2 : target + 1;
  return target;
}

/** The evaluation window of a staleness alarm. */
export interface StalenessWindow {
  readonly periodSeconds: number;
  readonly periods: number;
  /** True when CloudWatch's longest evaluation range made the window shorter than asked. */
  readonly capped: boolean;
}

/**
 * The window of "no successful run in `intervals` × the schedule interval": consecutive periods
 * of one interval each (at most a day), every one without a RunsPlanned datapoint. CloudWatch
 * evaluates at most one day for periods under an hour and seven days otherwise
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
 */
export function stalenessWindow(intervalSeconds: number, intervals: number): StalenessWindow {
  const periodSeconds = Math.min(86_400, Math.max(60, Math.ceil(intervalSeconds / 60) * 60));
  const longest = periodSeconds < 3600 ? 86_400 : 604_800;
  const wanted = Math.ceil((intervals * intervalSeconds) / periodSeconds);
  const periods = Math.max(1, Math.min(wanted, Math.floor(longest / periodSeconds)));
  return { periodSeconds, periods, capped: periods < wanted };
}
