import { type CalendarDay, type CronSchedule, parseSchedule } from '#core/config/schedule';

/**
 * How often an EventBridge Scheduler expression fires, for the staleness alarm ("no successful
 * run in 3 × the schedule interval"). A cron's interval is its longest gap between two firings,
 * measured in UTC over the years 2024–2027 (a leap year included), so a schedule that skips the
 * weekend is judged by its weekend gap. The expression is read by the parser that validates the
 * config (core/config/schedule.ts, with AWS's rules).
 */

const FIRST_DAY = Date.UTC(2024, 0, 1);
const DAYS = 4 * 365 + 1;

/** The longest time between two firings, in seconds; undefined when it cannot be told. */
export function scheduleIntervalSeconds(expression: string): number | undefined {
  const parsed = parseSchedule(expression);
  if (!parsed.ok) return undefined;
  return parsed.schedule.kind === 'rate' ? parsed.schedule.seconds : cronInterval(parsed.schedule);
}

function cronInterval(cron: CronSchedule): number | undefined {
  const times = [...cron.hours].flatMap((h) => [...cron.minutes].map((m) => h * 3600 + m * 60)).sort((a, b) => a - b);
  if (times.length === 0) return undefined;
  let longest = 0;
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
  const first = times[0]!;
  const last = times[times.length - 1]!;

  let previous: number | undefined;
  let firings = 0;
  for (let n = 0; n < DAYS; n++) {
    const at = new Date(FIRST_DAY + n * 86_400_000);
    const day: CalendarDay = {
      year: at.getUTCFullYear(),
      month: at.getUTCMonth() + 1,
      date: at.getUTCDate(),
      weekday: at.getUTCDay() + 1,
      daysInMonth: new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 0)).getUTCDate(),
    };
    if (!cron.years.has(day.year) || !cron.months.has(day.month) || !cron.matchesDay(day)) continue;
    if (previous !== undefined) longest = Math.max(longest, (n - previous) * 86_400 + first - last);
    previous = n;
    firings += times.length;
  }
  return firings >= 2 ? longest : undefined;
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
