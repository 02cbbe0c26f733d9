import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRuntime, SyncSummary } from '#cli/local-runtime';
import { manifests } from '#connectors/manifests';
import type { Row } from '#connectors/sdk/types';
import { loadConfig } from '#core/config/load';
import { LocalSecrets } from '#core/secrets';
import { TestProject } from '../e2e/project.ts';
import { busiestWindow } from './suite.ts';

/**
 * The membership conformance suite: every destination with a membership object (a list, a tag, a
 * campaign, a subscription group, an audience) keeps it equal to a segment of the quickstart's
 * customers, end to end through the local runtime, against its fake. The ground truth is the
 * fake's `members(object)` — who is in the list now, keyed as the vendor keys them — compared with
 * the warehouse's own answer to the segment's predicate, mapped to that key.
 */

/** What the membership suite needs from a vendor fake. */
export interface MembershipFake {
  /** Who is in the membership object now, keyed as the vendor keys them (email lower-cased, an id, or a hash). */
  members(object: string): ReadonlySet<string>;
  /** When each request of any kind arrived (ms), 429s included. */
  requestTimes(): number[];
  /** Answers the next `n` write requests with the vendor's own rate-limit refusal. */
  throttleNext(n: number): void;
  /** Refuses the credentials from now on, until restored. */
  revoke(): void;
  restore(): void;
  stop(): Promise<void>;
}

/** One destination's membership object under test, with its fake. */
export interface MembershipTarget {
  readonly name: string;
  /**
   * Starts the fake with the membership object created, and every customer the vendor must know
   * already (contacts, users, audience members) seeded from `customers` (all valid model rows,
   * members of the segment or not). Returns the destination block (YAML lines indented by four
   * spaces, without `secret:` and `lane:`), the secret's JSON, and the object (`list:123`, …).
   */
  start(customers: readonly Row[]): Promise<{
    fake: MembershipFake;
    destination: string;
    secret: Record<string, unknown>;
    object: string;
  }>;
  /** The sync's `match` (and `mappings`, if any): YAML lines indented by four spaces, over the model's columns. */
  readonly mapping: string;
  /** A model row's key in `fake.members(object)`: its email lower-cased, its id, or its hash. */
  keyOf(row: Row): string;
  /** A lane at or below the object's documented limit, small so the batches are several. */
  readonly lane: { readonly requests_per_second: number; readonly batch_size: number };
}

/** Customers 1–50 (the seed repeats key 42, and adds two rows without a key). */
const CUSTOMERS = 50;
/** The segment: customers with a lifetime value of at least this (about half of them). */
const THRESHOLD = 500;
const MAX_DELETE_RATIO = 0.3;
const SYNC = 'high-value-members';
const LANE = 'crm';

function config(target: MembershipTarget, destination: string, object: string): string {
  return `version: 1
sources:
  warehouse: { type: duckdb, path: warehouse.duckdb }
models:
  customers:
    source: warehouse
    sql: select id, email, first_name, last_name, plan, ltv, updated_at from customers
    primary_key: id
    cursor: updated_at
segments:
  high_value:
    description: customers worth a call
    model: customers
    rules:
      all:
        - { column: ltv, op: gte, value: ${THRESHOLD} }
destinations:
  ${LANE}:
${destination}
    secret: membership
    lane: { max_receives: 5, retry_budget_seconds: 2, requests_per_second: ${target.lane.requests_per_second}, batch_size: ${target.lane.batch_size} }
syncs:
  ${SYNC}:
    segment: high_value
    destination: ${LANE}
    object: ${object}
    mode: mirror
${target.mapping}
    guardrails: { max_delete_ratio: ${MAX_DELETE_RATIO} }
`;
}

/** The suite every membership destination passes against its fake, through the local runtime end to end. */
export function membershipConformance(target: MembershipTarget): void {
  describe(`${target.name} membership conformance`, () => {
    let fake: MembershipFake;
    let project: TestProject;
    let runtime: LocalRuntime;
    let object: string;

    const run = async (options: { force?: boolean } = {}): Promise<SyncSummary> =>
      (await runtime.run([SYNC], options))[0]!;
    /** The warehouse's own answer to the segment's predicate: the valid rows (a repeated key is never sent). */
    const segment = async (): Promise<Row[]> =>
      project.sql(`
        select * from customers where id is not null and ltv >= ${THRESHOLD}
        qualify count(*) over (partition by id) = 1 order by id`);
    const nonMembers = async (): Promise<Row[]> =>
      project.sql(`
        select * from customers where id is not null and id <> 42 and ltv < ${THRESHOLD} order by id`);
    const expectedMembers = async () => new Set((await segment()).map((row) => target.keyOf(row)));
    const setLtv = async (ids: readonly unknown[], ltv: number) => {
      if (ids.length === 0) throw new Error('no rows to change');
      await project.sql(
        `update customers set ltv = ${ltv}, updated_at = updated_at + interval 1 day where id in (${ids.join(', ')})`,
      );
    };
    const assertListEqualsSegment = async () => {
      expect(new Set(fake.members(object))).toEqual(await expectedMembers());
    };

    beforeAll(async () => {
      project = await TestProject.create({ customers: CUSTOMERS });
      const customers = await project.sql(
        'select * from customers where id is not null qualify count(*) over (partition by id) = 1 order by id',
      );
      const started = await target.start(customers);
      fake = started.fake;
      object = started.object;
      const file = path.join(project.dir, 'backflow.yml');
      writeFileSync(file, config(target, started.destination, object));
      project.config = loadConfig(file, manifests);
      const secrets = new LocalSecrets('/nonexistent', {
        BACKFLOW_SECRET_MEMBERSHIP: JSON.stringify(started.secret),
      });
      runtime = await project.runtime({ secrets, maxDelaySeconds: 1 });
    });
    afterAll(async () => {
      await runtime?.stop();
      project?.cleanup();
      await fake?.stop();
    });

    it('adds exactly the segment’s members on the first run', async () => {
      expect(fake.members(object).size).toBe(0);
      const summary = await run();
      expect(summary.status, summary.run?.error ?? summary.reason).toBe('succeeded');
      const members = await segment();
      expect(members.length).toBeGreaterThan(10);
      expect(members.length).toBeLessThan(CUSTOMERS - 10);
      expect(summary.run!.counters).toMatchObject({ queued: members.length, rejected: 0, deadLettered: 0 });
      await assertListEqualsSegment();
    });

    it('removes who left and adds who entered; an unchanged rerun sends no request', async () => {
      const leaving = (await segment()).slice(0, 3);
      const entering = (await nonMembers()).slice(0, 3);
      await setLtv(
        leaving.map((r) => r.id),
        10,
      );
      await setLtv(
        entering.map((r) => r.id),
        950,
      );
      const summary = await run();
      expect(summary.status, summary.run?.error ?? summary.reason).toBe('succeeded');
      expect(summary.run!.counters).toMatchObject({ queued: 3, deletesQueued: 3, rejected: 0 });
      await assertListEqualsSegment();
      for (const row of leaving) expect(fake.members(object).has(target.keyOf(row)), `left: ${row.id}`).toBe(false);
      for (const row of entering) expect(fake.members(object).has(target.keyOf(row)), `entered: ${row.id}`).toBe(true);

      const before = fake.requestTimes().length;
      const rerun = await run();
      expect(rerun.run?.counters ?? { queued: 0, deletesQueued: 0 }).toMatchObject({ queued: 0, deletesQueued: 0 });
      expect(fake.requestTimes().length).toBe(before);
      await assertListEqualsSegment();
    });

    it('adds a member who re-enters', async () => {
      const [back] = await project.sql(
        `select * from customers where id is not null and id <> 42 and ltv = 10 order by id limit 1`,
      );
      expect(fake.members(object).has(target.keyOf(back!))).toBe(false);
      await setLtv([back!.id], 999);
      const summary = await run();
      expect(summary.status, summary.run?.error ?? summary.reason).toBe('succeeded');
      expect(summary.run!.counters).toMatchObject({ queued: 1, deletesQueued: 0 });
      expect(fake.members(object).has(target.keyOf(back!))).toBe(true);
      await assertListEqualsSegment();
    });

    it('stops a run that would remove more than max_delete_ratio before any request; --force lets it through', async () => {
      const members = await segment();
      const leaving = members.slice(0, Math.ceil(members.length * 0.6));
      await setLtv(
        leaving.map((r) => r.id),
        20,
      );
      const before = fake.requestTimes().length;
      const listBefore = new Set(fake.members(object));
      const stopped = await run();
      expect(stopped.status).toBe('stopped');
      expect(stopped.reason).toMatch(new RegExp(`guardrail: sync ${SYNC} would delete ${leaving.length} of \\d+`));
      expect(fake.requestTimes().length).toBe(before);
      expect(new Set(fake.members(object))).toEqual(listBefore);

      const forced = await run({ force: true });
      expect(forced.status, forced.run?.error ?? forced.reason).toBe('succeeded');
      expect(forced.run!.counters).toMatchObject({ deletesQueued: leaving.length, rejected: 0 });
      await assertListEqualsSegment();
      for (const row of leaving) expect(fake.members(object).has(target.keyOf(row))).toBe(false);
    });

    it('completes a 429 storm with nothing lost, never faster than the lane’s pace', async () => {
      const leaving = (await segment()).slice(0, 2);
      const entering = (await nonMembers()).slice(0, 2 * target.lane.batch_size);
      await setLtv(
        leaving.map((r) => r.id),
        30,
      );
      await setLtv(
        entering.map((r) => r.id),
        900,
      );
      fake.throttleNext(3);
      const since = Date.now();
      const summary = await run();
      expect(summary.status, summary.run?.error ?? summary.reason).toBe('succeeded');
      expect(summary.run!.counters.throttled).toBeGreaterThan(0);
      expect(summary.run!.counters).toMatchObject({ deadLettered: 0, rejected: 0 });
      await assertListEqualsSegment();
      // Every request counts — lookups, read-backs and job polls too — not only the writes.
      const times = fake.requestTimes().filter((t) => t >= since);
      expect(times.length).toBeGreaterThan(3);
      expect(busiestWindow(times, 1000)).toBeLessThanOrEqual(target.lane.requests_per_second + 1);
    });

    it('ends a revoked token in an AuthError with the records dead-lettered; a redrive after restore delivers them', async () => {
      const leaving = (await segment()).slice(0, 1);
      const entering = (await nonMembers()).slice(0, 2);
      await setLtv(
        leaving.map((r) => r.id),
        40,
      );
      await setLtv(
        entering.map((r) => r.id),
        990,
      );
      const listBefore = new Set(fake.members(object));
      fake.revoke();
      const failed = await run();
      expect(failed.status).toBe('failed');
      expect(failed.run!.error).toMatch(/AuthError/);
      expect(failed.deadLetteredMessages).toBeGreaterThan(0);
      expect(new Set(fake.members(object))).toEqual(listBefore);

      fake.restore();
      const redriven = await runtime.redrive(LANE);
      expect(redriven.moved).toBe(failed.deadLetteredMessages);
      expect(redriven.deadLettered).toBe(0);
      await assertListEqualsSegment();
      for (const row of entering) expect(fake.members(object).has(target.keyOf(row))).toBe(true);
      for (const row of leaving) expect(fake.members(object).has(target.keyOf(row))).toBe(false);

      // What the redrive delivered is recorded: the next run has nothing left to send.
      const before = fake.requestTimes().length;
      const rerun = await run();
      expect(rerun.run?.counters ?? { queued: 0, deletesQueued: 0 }).toMatchObject({ queued: 0, deletesQueued: 0 });
      expect(fake.requestTimes().length).toBe(before);
    });
  });
}
