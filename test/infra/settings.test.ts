import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DestinationLimits } from '#connectors/sdk/destination';
import { chooseConfigFile, EXAMPLE_CONFIG } from '../../infra/config-path.ts';
import { DEFAULT_LANE_CONCURRENCY, laneEventSource } from '../../infra/lane-settings.ts';
import { scheduleIntervalSeconds, stalenessWindow } from '../../infra/schedule-interval.ts';

const DOC = 'https://example.com/limits';
const lane = { max_receives: 5, retry_budget_seconds: 1800 };

describe('laneEventSource', () => {
  it('takes up to 10 messages, no window and the default concurrency when the destination documents no rate', () => {
    const limits: DestinationLimits = { batchSize: { value: 500, doc: DOC } };
    expect(laneEventSource(limits, lane)).toEqual({
      batchSize: 10,
      maxBatchingWindowSeconds: 0,
      maxConcurrency: DEFAULT_LANE_CONCURRENCY,
    });
  });

  it('takes no more messages than the destination accepts in a second, with a 1 s window', () => {
    const limits: DestinationLimits = {
      batchSize: { value: 10, doc: DOC },
      requestsPerSecond: { value: 5, doc: DOC },
      concurrency: { value: 3, doc: DOC },
    };
    expect(laneEventSource(limits, lane)).toEqual({ batchSize: 5, maxBatchingWindowSeconds: 1, maxConcurrency: 3 });
  });

  it('runs a paced lane with no more invocations than its requests per second (Salesforce: 5 req/s, 25 concurrent)', () => {
    const limits: DestinationLimits = {
      batchSize: { value: 200, doc: DOC },
      requestsPerSecond: { value: 5, doc: DOC },
      concurrency: { value: 25, doc: DOC },
    };
    expect(laneEventSource(limits, lane)).toEqual({ batchSize: 5, maxBatchingWindowSeconds: 1, maxConcurrency: 5 });
  });

  it('gives a destination slower than one request a second one message per invocation', () => {
    const limits: DestinationLimits = {
      batchSize: { value: 10, doc: DOC },
      requestsPerSecond: { value: 0.5, doc: DOC },
    };
    expect(laneEventSource(limits, lane)).toMatchObject({ batchSize: 1, maxBatchingWindowSeconds: 0 });
  });

  it('lets the lane override the documented rate and concurrency', () => {
    const limits: DestinationLimits = {
      batchSize: { value: 100, doc: DOC },
      requestsPerSecond: { value: 100, doc: DOC },
      concurrency: { value: 50, doc: DOC },
    };
    expect(laneEventSource(limits, { ...lane, requests_per_second: 2, concurrency: 7 })).toEqual({
      batchSize: 2,
      maxBatchingWindowSeconds: 1,
      maxConcurrency: 7,
    });
  });

  it('keeps maximum concurrency within what SQS accepts and says so', () => {
    const limits: DestinationLimits = { batchSize: { value: 1, doc: DOC }, concurrency: { value: 1, doc: DOC } };
    const settings = laneEventSource(limits, lane);
    expect(settings.maxConcurrency).toBe(2);
    expect(settings.note).toMatch(/concurrency 1 .* using 2/);
  });
});

describe('scheduleIntervalSeconds', () => {
  it.each([
    ['rate(1 minute)', 60],
    ['rate(15 minutes)', 900],
    ['rate(2 hours)', 7200],
    ['rate(1 day)', 86_400],
    ['cron(0/15 * * * ? *)', 900],
    ['cron(0 6 * * ? *)', 86_400],
    ['cron(30 8,20 * * ? *)', 12 * 3600],
    // Friday 09:00 to Monday 09:00.
    ['cron(0 9 ? * MON-FRI *)', 3 * 86_400],
    ['cron(0 3 ? * SUN *)', 7 * 86_400],
    // January 31 to March 1 (leap year 2024 counted): the longest month-end gap is 31 days.
    ['cron(0 0 L * ? *)', 31 * 86_400],
    // AWS's example of a wrapping range (10:00 pm to 2:00 am): Friday 23:30 to Monday 00:00.
    ['cron(0/30 20-2 ? * MON-FRI *)', 2 * 86_400 + 1800],
  ])('%s fires at least every %i s', (expression, seconds) => {
    expect(scheduleIntervalSeconds(expression)).toBe(seconds);
  });

  it('cannot tell the interval of a one-off or out-of-range schedule', () => {
    expect(scheduleIntervalSeconds('cron(0 0 1 1 ? 2030)')).toBeUndefined();
    expect(scheduleIntervalSeconds('cron(75 * * * ? *)')).toBeUndefined();
  });
});

describe('stalenessWindow', () => {
  it('uses one period per interval, three of them', () => {
    expect(stalenessWindow(900, 3)).toEqual({ periodSeconds: 900, periods: 3, capped: false });
    expect(stalenessWindow(86_400, 3)).toEqual({ periodSeconds: 86_400, periods: 3, capped: false });
  });

  it('stays within the seven days CloudWatch evaluates, and says it was capped', () => {
    expect(stalenessWindow(7 * 86_400, 3)).toEqual({ periodSeconds: 86_400, periods: 7, capped: true });
  });
});

describe('chooseConfigFile', () => {
  const project = (files: string[]) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-choose-'));
    for (const file of files) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), 'version: 1\n');
    }
    return dir;
  };

  it('takes -c config=… first, relative to the working directory', () => {
    const dir = project(['backflow.yml']);
    expect(chooseConfigFile('deploy/prod.yml', dir)).toEqual({ file: path.join(dir, 'deploy/prod.yml') });
  });

  it('then ./backflow.yml, even when the example exists', () => {
    const dir = project(['backflow.yml', EXAMPLE_CONFIG]);
    expect(chooseConfigFile(undefined, dir)).toEqual({ file: path.join(dir, 'backflow.yml') });
  });

  it('falls back to the quickstart example in this repository, with a note', () => {
    const dir = project([EXAMPLE_CONFIG]);
    const chosen = chooseConfigFile(undefined, dir);
    expect(chosen.file).toBe(path.join(dir, EXAMPLE_CONFIG));
    expect(chosen.note).toContain(EXAMPLE_CONFIG);
  });
});
