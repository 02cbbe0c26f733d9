import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRuntime, SyncSummary } from '#cli/local-runtime';
import type { JsonValue, Row } from '#connectors/sdk/types';
import { LocalSecrets } from '#core/secrets';
import { TestProject } from '../e2e/project.ts';

/** What the conformance suite needs from a vendor fake. */
export interface VendorFake {
  /** What the fake holds for an object: match value (as text) → stored fields. */
  stored(object: string): ReadonlyMap<string, Readonly<Record<string, JsonValue>>>;
  /** When each write request arrived (ms), 429s included. */
  writeTimes(): number[];
  /**
   * When each request of any kind arrived (ms): writes, lookups, searches, job polls, field
   * discovery, logins — everything the vendor counts against its rate limit, 429s included.
   */
  requestTimes(): number[];
  /** Answers the next `n` write requests with the vendor's own 429 and rate-limit headers. */
  throttleNext(n: number): void;
  /** Refuses the credentials from now on (401), until restored. */
  revoke(): void;
  restore(): void;
  stop(): Promise<void>;
}

/** One destination under test, with its fake. */
export interface ConformanceTarget {
  readonly name: string;
  /** Starts the fake; returns the destination block (YAML, 4-space indent) and the secret's JSON. */
  start(): Promise<{ fake: VendorFake; destination: string; secret: Record<string, unknown> }>;
  readonly object: string;
  /**
   * `match` and `mappings` (YAML, 4-space indent) over the model columns id, email, first_name,
   * last_name, plan, ltv. `first_name` must be mapped, `plan` with `nulls: skip` and `ltv` with
   * `nulls: sync`.
   */
  readonly mapping: string;
  /** The match value of a model row, as the fake keys it. */
  matchOf(row: Row): string;
  /** What the fake should hold for a model row (a subset of its stored fields). */
  expected(row: Row): Record<string, JsonValue>;
  /** Destination field names of `plan` and `ltv`, and how the fake shows a cleared value. */
  readonly planField: string;
  readonly ltvField: string;
  isCleared(value: JsonValue | undefined): boolean;
  /** A model change the vendor refuses, with the reason it gives (a regular expression). */
  readonly refused: { readonly sql: (id: number) => string; readonly reason: RegExp };
  /** Whether mirror mode deletes (or archives) records in this destination. */
  readonly mirror: boolean;
  /** For mirror: true when a record left the model is gone from (or archived in) the fake. */
  isRemoved?(fake: VendorFake, match: string): boolean;
  /** Pace to test with: a lane override at or below the documented limit, so the test stays short. */
  readonly lane: { readonly requests_per_second: number; readonly batch_size: number };
  /**
   * The vendor's documented request limit (the lowest tier's, per the page cited in the
   * connector's limits), in its own window: at the connector's default pace, no window of the
   * fake's request log may hold more.
   */
  readonly documented: { readonly requests: number; readonly windowMs: number };
}

/** Largest number of requests in any window of `windowMs` (a rolling window, as vendors count). */
export function busiestWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let busiest = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    busiest = Math.max(busiest, i - j + 1);
  }
  return busiest;
}

/** Ids 1–50, so the seeded duplicate of id 42 makes one row invalid. */
const CUSTOMERS = 50;
/** The seed repeats key 42: both copies are invalid and never sent. */
const VALID = CUSTOMERS - 1;

/** A null mapped with `nulls: skip` leaves the destination's value as it was: compare the rest. */
const present = (fields: Record<string, JsonValue>) =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null && v !== undefined));

/** The suite every destination passes against its fake, through the local runtime end to end. */
export function conformance(target: ConformanceTarget): void {
  describe(`${target.name} conformance`, () => {
    let fake: VendorFake;
    let project: TestProject;
    let runtime: LocalRuntime;
    let secrets: LocalSecrets;
    let destination: string;

    const start = async (options: { mode?: 'upsert' | 'mirror'; defaultLane?: boolean } = {}) => {
      await runtime?.stop();
      project?.cleanup();
      project = await TestProject.create({
        customers: CUSTOMERS,
        cursor: options.mode !== 'mirror',
        mode: options.mode ?? 'upsert',
        destination,
        object: target.object,
        mapping: target.mapping,
        lane: options.defaultLane
          ? undefined
          : `requests_per_second: ${target.lane.requests_per_second}, batch_size: ${target.lane.batch_size}`,
        maxDeleteRatio: 0.5,
        retryBudgetSeconds: 2,
      });
      runtime = await project.runtime({ secrets, maxDelaySeconds: 1 });
    };
    const run = async (full = false): Promise<SyncSummary> => (await runtime.run(['customers-to-crm'], { full }))[0]!;
    const model = async () => project.sql(`select * from customers where id is not null and id <> 42 order by id`);
    const assertFakeEqualsModel = async () => {
      const stored = fake.stored(target.object);
      for (const row of await model()) {
        expect(stored.get(target.matchOf(row)), `record ${row.id}`).toMatchObject(present(target.expected(row)));
      }
    };

    beforeAll(async () => {
      const started = await target.start();
      fake = started.fake;
      destination = `${started.destination}\n    secret: conformance`;
      secrets = new LocalSecrets('/nonexistent', { BACKFLOW_SECRET_CONFORMANCE: JSON.stringify(started.secret) });
      await start();
    });
    afterAll(async () => {
      await runtime?.stop();
      project?.cleanup();
      await fake?.stop();
    });

    it('creates every record of the model', async () => {
      const summary = await run();
      expect(summary.status).toBe('succeeded');
      expect(summary.run!.counters.queued).toBe(VALID);
      await assertFakeEqualsModel();
    });

    it('updates what changed, and an unchanged rerun sends nothing', async () => {
      await project.sql(
        `update customers set plan = 'gold', updated_at = updated_at + interval 1 day where id in (3, 4, 5)`,
      );
      const summary = await run();
      expect(summary.run!.counters).toMatchObject({ queued: 3, rejected: 0 });
      await assertFakeEqualsModel();
      const before = fake.writeTimes().length;
      const rerun = await run(true);
      expect(rerun.run!.counters).toMatchObject({ queued: 0, unchanged: VALID });
      expect(fake.writeTimes().length).toBe(before);
    });

    it('keeps the old value for a null with nulls: skip, and clears it with nulls: sync', async () => {
      const [row] = await project.sql('select * from customers where id = 6');
      // The value to clear must be there first, or clearing it proves nothing.
      expect(target.isCleared(fake.stored(target.object).get(target.matchOf(row!))?.[target.ltvField])).toBe(false);
      await project.sql(
        `update customers set plan = null, ltv = null, updated_at = updated_at + interval 1 day where id = 6`,
      );
      await run();
      const stored = fake.stored(target.object).get(target.matchOf(row!))!;
      expect(stored[target.planField]).toEqual(target.expected(row!)[target.planField]);
      expect(target.isCleared(stored[target.ltvField])).toBe(true);
    });

    it('reports a refused record with its reason while the rest of the batch lands', async () => {
      await project.sql(
        `update customers set plan = 'silver', updated_at = updated_at + interval 2 day where id in (8, 9, 10)`,
      );
      await project.sql(target.refused.sql(9));
      const summary = await run();
      expect(summary.run!.counters).toMatchObject({ rejected: 1 });
      const state = await runtime.state.getRecords('customers-to-crm', ['9']);
      expect(state.get('9')?.status).toBe('rejected');
      expect(state.get('9')?.reason).toMatch(target.refused.reason);
      const stored = fake.stored(target.object);
      for (const row of await project.sql('select * from customers where id in (8, 10)')) {
        expect(stored.get(target.matchOf(row))).toMatchObject(present(target.expected(row)));
      }
    });

    it('completes a 429 storm with nothing lost, never faster than the declared pace', async () => {
      await project.sql(
        `update customers set first_name = first_name || 'x', updated_at = updated_at + interval 3 day where id <> 9`,
      );
      fake.throttleNext(5);
      const since = Date.now();
      const summary = await run();
      expect(summary.status).toBe('succeeded');
      expect(summary.run!.counters.throttled).toBeGreaterThan(0);
      expect(summary.run!.counters.deadLettered).toBe(0);
      const stored = fake.stored(target.object);
      for (const row of (await model()).filter((r) => r.id !== 9)) {
        expect(stored.get(target.matchOf(row)), `record ${row.id}`).toMatchObject(present(target.expected(row)));
      }
      // Every request counts — lookups, searches and job polls too — not only the writes.
      const times = fake.requestTimes().filter((t) => t >= since);
      expect(times.length).toBeGreaterThan(fake.writeTimes().filter((t) => t >= since).length - 1);
      expect(busiestWindow(times, 1000)).toBeLessThanOrEqual(target.lane.requests_per_second + 1);
    });

    it('ends a revoked token in a clear error, with the records kept for retry', async () => {
      fake.revoke();
      await project.sql(
        `update customers set plan = 'revoked', updated_at = updated_at + interval 4 day where id in (11, 12)`,
      );
      const failed = await run();
      expect(failed.status).toBe('failed');
      expect(failed.run!.error).toMatch(/AuthError/);
      expect(failed.deadLetteredMessages).toBeGreaterThan(0);
      fake.restore();
      // The dead-lettered batch is redriven onto the lane and delivered.
      const bodies = await runtime.deadLetters('crm');
      await runtime.enqueue(
        'crm',
        bodies.map((b) => JSON.parse(b)),
      );
      await runtime.drain();
      const stored = fake.stored(target.object);
      for (const row of await project.sql('select * from customers where id in (11, 12)')) {
        expect(stored.get(target.matchOf(row))).toMatchObject(present(target.expected(row)));
      }
    });

    it('at the default pace, stays within the vendor’s documented limit in every window of its own', async () => {
      await start({ defaultLane: true });
      const since = Date.now();
      const summary = await run();
      expect(summary.status).toBe('succeeded');
      const times = fake.requestTimes().filter((t) => t >= since);
      expect(times.length).toBeGreaterThan(0);
      expect(busiestWindow(times, target.documented.windowMs)).toBeLessThanOrEqual(target.documented.requests);
    });

    it.runIf(target.mirror)('deletes or archives what left the model in mirror mode', async () => {
      await start({ mode: 'mirror' });
      const first = await run();
      expect(first.status).toBe('succeeded');
      const [gone] = await project.sql('select * from customers where id = 20');
      await project.sql('delete from customers where id = 20');
      const summary = await run();
      expect(summary.run!.counters.deleted).toBe(1);
      expect(target.isRemoved!(fake, target.matchOf(gone!))).toBe(true);
    });
  });
}
