import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LocalRuntime, type SyncSummary } from '#cli/local-runtime';
import { manifests } from '#connectors/manifests';
import type { DestinationConnection, RecordOutcome, WriteBatch } from '#connectors/sdk/destination';
import { loadConfig } from '#core/config/load';
import { TransientError } from '#core/errors';
import type { RecordState } from '#core/ports';
import { type ResultEntry, startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.ts';
import type { DriverArgs } from './driver.ts';
import { ABSENT, MEMBER_MAX_DELETE_RATIO, MEMBER_SYNC, type Member, Model, memberKey, SYNC_OF } from './model.ts';
import {
  type Change,
  type Faults,
  LANES,
  type Lane,
  type Schedule,
  type Step,
  type Syncs,
  type Tier,
} from './schedule.ts';
import {
  type Canonical,
  canonicalDecimal,
  canonicalDouble,
  canonicalFields,
  canonicalJsonText,
  canonicalRow,
  parseLossless,
  type RowValues,
  show,
  showCanonical,
} from './values.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };
/** A step that takes longer than this is a hang: the schedule fails. */
const STEP_TIMEOUT_MS = 120_000;
const BOTH = [SYNC_OF.pg, SYNC_OF.hook];
/** The segment of the checker's project (see Model.segment for its rules). */
const SEGMENT = 'tiered';

/** The first difference found, with what the checker expected and what the destination held. */
export interface Difference {
  readonly what: string;
  readonly key?: number;
  readonly lane?: Lane;
  readonly expected?: string;
  readonly actual?: string;
  readonly state?: string;
}

/** A broken guarantee: the step where it showed, and every difference found there. */
export class Violation extends Error {
  constructor(
    readonly step: number,
    readonly differences: readonly Difference[],
  ) {
    super(
      `step ${step + 1}: ${differences[0]!.what}${differences.length > 1 ? ` (and ${differences.length - 1} more)` : ''}`,
    );
    this.name = 'Violation';
  }
}

/** One database per checker run, so parallel runs never meet; dropped at the end. */
export class CheckerDatabase {
  private constructor(
    readonly name: string,
    readonly pool: pg.Pool,
  ) {}

  static async create(): Promise<CheckerDatabase> {
    const name = `backflow_faults_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ ...PG, database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    const pool = new pg.Pool({ ...PG, database: name, max: 2 });
    pool.on('error', () => {});
    return new CheckerDatabase(name, pool);
  }

  async drop(): Promise<void> {
    await this.pool.end();
    const admin = new pg.Client({ ...PG, database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
}

/** Counts of what a schedule exercised, for the report. */
export interface Tally {
  steps: number;
  heals: number;
  crashes: number;
  childErrors: number;
  stepErrors: number;
  /** Runs of the membership sync checked right after they ended (succeeded, or stopped by the guardrail). */
  memberChecks?: number;
  /** Of those, runs the guardrail stopped. */
  guardrailStops?: number;
}

/**
 * One schedule's world: a source table and a destination table in the checker's database, a
 * webhook receiver, a project directory with its backflow.yml and local state, and the local
 * runtime on it (restarted around mode switches and crash steps). Steps act on the real source and
 * the real runtime; heals compare the real destinations with the reference model.
 */
/** The lanes' retry budget, and how far the engine's clock moves with each failed write. */
const RETRY_BUDGET_SECONDS = 300;
const FAILURE_SECONDS = 60;

/** The engine's clock in a schedule: it moves only when a failure spends time. */
class FaultClock {
  private ms = Date.UTC(2030, 0, 1);
  now(): Date {
    return new Date(this.ms);
  }
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

export class World {
  private readonly clock = new FaultClock();
  readonly model = new Model();
  private runtime: LocalRuntime | undefined;
  private mode: 'upsert' | 'mirror';
  private tick = 0;
  private step = 0;
  /** Faults of the current step. */
  private faults: { pgDown: number; hookDown: number; refuse?: Faults['refuse'] } = { pgDown: 0, hookDown: 0 };
  /** Every batch the receiver applied, with its per-record results, in arrival order. */
  private readonly hookLog: { step: number; rawBody: string; results: ResultEntry[] }[] = [];
  private hookChecked = 0;
  /**
   * No message of a crashed child can still be on a lane: false after a crash step, true again
   * once a run or a redrive in this process drained the lanes. Right-after-a-run membership checks
   * need it (a crashed run's last messages are delivered while the next run plans).
   */
  private settled = true;
  readonly notes: string[] = [];
  /**
   * The membership table as checked after the last membership run that succeeded (or the last
   * heal), while no later membership run failed or crashed: a redrive must leave it so.
   */
  private lastVerified: { readonly table: Map<number, Member>; readonly after: string } | undefined;
  /** What the last step's membership run did, for the verbose log. */
  detail: string | undefined;

  private constructor(
    private readonly db: CheckerDatabase,
    private readonly schedule: Schedule,
    private readonly dir: string,
    private readonly tables: { readonly source: string; readonly destination: string; readonly members: string },
    private readonly receiver: WebhookReceiver,
    readonly tally: Tally,
  ) {
    this.mode = schedule.mode;
    receiver.respondWith = (results, batch) => {
      this.hookLog.push({ step: this.step, rawBody: batch.rawBody, results });
      return { results };
    };
  }

  static async create(db: CheckerDatabase, schedule: Schedule, tally: Tally): Promise<World> {
    const suffix = randomBytes(4).toString('hex');
    const tables = { source: `src_${suffix}`, destination: `dst_${suffix}`, members: `mem_${suffix}` };
    await db.pool.query(
      `CREATE TABLE ${tables.source} (rid bigint PRIMARY KEY, id bigint, email text, txt text, amount numeric,
         doc jsonb, dbl double precision, tier text, updated_at timestamptz)`,
    );
    // The membership "list": one row per member, kept equal to the segment by the mirror sync.
    if (schedule.membership) {
      await db.pool.query(`CREATE TABLE ${tables.members} (id bigint PRIMARY KEY, email text, tier text)`);
    }
    // Created by the checker rather than the connector: a double column keeps -0 apart from 0, and
    // the CHECK makes PostgreSQL itself refuse what the webhook receiver refuses (a bad email).
    await db.pool.query(
      `CREATE TABLE ${tables.destination} (id bigint PRIMARY KEY,
         email text CHECK (email ~ '^[^[:space:]@]+@[^[:space:]@]+\\.[^[:space:]@]+$'),
         txt text, amount numeric, doc jsonb, dbl double precision)`,
    );
    // Idempotency off: every batch the receiver gets is applied, so its log is what it holds.
    const receiver = await startWebhookReceiver({ idempotency: false });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'backflow-faults-'));
    const world = new World(db, schedule, dir, tables, receiver, tally);
    world.writeConfig();
    await world.startRuntime();
    return world;
  }

  async close(): Promise<void> {
    await this.runtime?.stop().catch(() => {});
    this.runtime = undefined;
    await this.receiver.stop();
    await this.db.pool
      .query(`DROP TABLE IF EXISTS ${this.tables.source}, ${this.tables.destination}, ${this.tables.members}`)
      .catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs step `index`; throws a Violation when a guarantee broke. */
  async run(step: Step, index: number): Promise<void> {
    this.step = index;
    this.detail = undefined;
    this.tally.steps++;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Violation(index, [{ what: `the step did not finish within ${STEP_TIMEOUT_MS / 1000} s` }])),
        STEP_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.execute(step, index), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async execute(step: Step, index: number): Promise<void> {
    switch (step.t) {
      case 'edit':
        await this.edit(step.changes);
        return;
      case 'run': {
        const syncs = this.syncsOf(step.syncs);
        if (syncs.length === 0) return;
        this.model.planned(lanesOf(syncs), this.mode === 'mirror');
        const members = syncs.includes(MEMBER_SYNC) ? await this.beforeMemberRun(step.force === true) : undefined;
        let summaries: SyncSummary[] | undefined;
        await this.withFaults(step.faults, async () => {
          summaries = await this.runtime!.run(syncs, { full: step.full, ...(step.force ? { force: true } : {}) });
        });
        this.settled = true;
        const differences = await this.observe();
        if (members) {
          const summary = summaries?.find((s) => s.syncId === MEMBER_SYNC);
          differences.push(...(await this.afterMemberRun(members, summary, step.force === true)));
        }
        if (differences.length > 0) throw new Violation(this.step, differences);
        return;
      }
      case 'redrive': {
        const verified = this.settled ? this.lastVerified : undefined;
        await this.withFaults(step.faults, async () => {
          for (const lane of LANES) await this.runtime!.redrive(lane);
        });
        this.settled = true;
        const differences = await this.observe();
        if (verified) differences.push(...(await this.afterMemberRedrive(verified)));
        if (differences.length > 0) throw new Violation(this.step, differences);
        return;
      }
      case 'tier':
        await this.setTier(step.ids, step.tier);
        return;
      case 'mode':
        this.mode = step.mode;
        await this.stopRuntime();
        this.writeConfig();
        await this.startRuntime();
        return;
      case 'crash':
        await this.crash(step);
        this.settled = false;
        this.lastVerified = undefined;
        await this.afterStep();
        return;
      case 'heal':
        await this.heal(index);
        return;
    }
  }

  private writeConfig(): void {
    const { schedule, db, tables } = this;
    const mappings = `    match: { id: id }
    mappings:
      email: email
      txt: { column: txt, nulls: sync }
      amount: { column: amount, nulls: sync }
      doc: { column: doc, nulls: sync }
      dbl: { column: dbl, nulls: sync }
    guardrails: { max_delete_ratio: 1 }`;
    const yml = `version: 1
sources:
  warehouse:
    type: postgres
    connection: { host: ${PG.host}, port: ${PG.port}, database: ${db.name}, user: ${PG.user} }
models:
  people:
    source: warehouse
    sql: select id, email, txt, amount, doc, dbl, tier, updated_at from ${tables.source}
    primary_key: id
    cursor: updated_at
    page_size: ${schedule.pageSize}
${
  schedule.membership
    ? `segments:
  ${SEGMENT}:
    model: people
    rules:
      all:
        - { column: tier, op: in, value: [gold, platinum] }
        - { column: email, op: contains, value: "@" }
`
    : ''
}destinations:
  pg:
    type: postgres
    connection: { host: ${PG.host}, port: ${PG.port}, database: ${db.name}, user: ${PG.user} }
    lane: { max_receives: ${schedule.maxReceives}, batch_size: ${schedule.batchSize}, retry_budget_seconds: ${RETRY_BUDGET_SECONDS} }
  hook:
    type: webhook
    url: "${this.receiver.url}"
    max_attempts: 1
    timeout_ms: 10000
    lane: { max_receives: ${schedule.maxReceives}, batch_size: ${schedule.batchSize}, requests_per_second: 1000, retry_budget_seconds: ${RETRY_BUDGET_SECONDS} }
syncs:
  ${SYNC_OF.pg}:
    model: people
    destination: pg
    object: ${tables.destination}
    mode: ${this.mode}
    lock_lease_seconds: 10
${mappings}
  ${SYNC_OF.hook}:
    model: people
    destination: hook
    object: people
    mode: upsert
    lock_lease_seconds: 10
${mappings}
${
  schedule.membership
    ? `  ${MEMBER_SYNC}:
    segment: ${SEGMENT}
    destination: pg
    object: ${tables.members}
    mode: mirror
    lock_lease_seconds: 10
    match: { id: id }
    mappings:
      email: email
      tier: { column: tier, nulls: sync }
    guardrails: { max_delete_ratio: ${MEMBER_MAX_DELETE_RATIO} }
`
    : ''
}`;
    writeFileSync(path.join(this.dir, 'backflow.yml'), yml);
  }

  private async startRuntime(): Promise<void> {
    this.runtime = await LocalRuntime.start({
      config: loadConfig(path.join(this.dir, 'backflow.yml'), manifests),
      stateDir: path.join(this.dir, '.backflow'),
      // Retries come back at once, and the engine's clock moves on by FAILURE_SECONDS with each
      // failed write: a short outage is retried until it heals, a long one outlasts the lanes'
      // retry budget and is dead-lettered by the exporter (then a redrive heals it).
      maxDelaySeconds: 0,
      clock: this.clock,
      exportConcurrency: this.schedule.concurrency,
      wrapDestination: (lane, connection) => this.wrap(lane as Lane, connection),
    });
  }

  private async stopRuntime(): Promise<void> {
    await this.runtime?.stop();
    this.runtime = undefined;
  }

  /** The lane's real connection, behind the checker's faults: outages and per-key refusals. */
  private wrap(lane: Lane, connection: DestinationConnection): DestinationConnection {
    return {
      ...connection,
      write: async (batch) => {
        try {
          return await this.faultyWrite(lane, connection, batch);
        } catch (error) {
          this.clock.advance(FAILURE_SECONDS);
          throw error;
        }
      },
    };
  }

  private async faultyWrite(
    lane: Lane,
    connection: DestinationConnection,
    batch: WriteBatch,
  ): Promise<RecordOutcome[]> {
    const down = lane === 'pg' ? 'pgDown' : 'hookDown';
    if (this.faults[down] > 0) {
      this.faults[down]--;
      const where =
        lane === 'pg'
          ? `PostgreSQL ${PG.host}:${PG.port}/${this.db.name}`
          : `webhook ${new URL(this.receiver.url).origin}`;
      throw new TransientError(`${where}: connect ECONNREFUSED (fault injected by the checker)`);
    }
    // Refusals are the record syncs' (their model tracks them); the membership sync's writes on the
    // same lane go through, outages and crashes included.
    const refuse =
      this.faults.refuse?.lane === lane && batch.object !== this.tables.members
        ? new Set(this.faults.refuse.ids.map(String))
        : undefined;
    if (!refuse || !batch.records.some((r) => refuse.has(r.key))) return connection.write(batch);
    const outcomes: RecordOutcome[] = [];
    for (const record of batch.records) {
      if (!refuse.has(record.key)) continue;
      this.model.refusedNow(lane, Number(record.key));
      outcomes.push({ key: record.key, status: 'rejected', reason: 'refused by the fault checker' });
    }
    const rest = batch.records.filter((r) => !refuse.has(r.key));
    if (rest.length > 0) outcomes.push(...(await connection.write({ ...batch, records: rest })));
    return outcomes;
  }

  /** Runs `work` with the step's faults on, then clears what is left of them. */
  private async withFaults(faults: Faults | undefined, work: () => Promise<void>): Promise<void> {
    this.faults = { pgDown: faults?.pgDown ?? 0, hookDown: faults?.hookDown ?? 0, refuse: faults?.refuse };
    if (faults?.http5xx) this.receiver.failNext(faults.http5xx, 503, {}, 'injected 503');
    if (faults?.http429) this.receiver.failNext(faults.http429, 429, { 'Retry-After': '0' }, 'injected 429');
    try {
      await work();
    } catch (error) {
      // A step under faults may fail; whether anything was lost is for the next heal to say.
      this.tally.stepErrors++;
      this.notes.push(`step ${this.step + 1} threw: ${(error as Error).message}`);
    } finally {
      this.faults = { pgDown: 0, hookDown: 0 };
      await this.drainReceiverFailures();
    }
  }

  /** Answers left over from failNext are used up by GETs (answered 405 once none is left). */
  private async drainReceiverFailures(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const response = await fetch(this.receiver.url, { method: 'GET' });
      await response.text();
      if (response.status === 405) return;
    }
  }

  private async edit(changes: readonly Change[]): Promise<void> {
    this.tick++;
    // One updated_at for the whole edit, as a bulk update stamps many rows with one time.
    const at = new Date(Date.UTC(2030, 0, 1) + this.tick * 1000).toISOString();
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN');
      for (const change of changes) {
        const target = this.model.resolve(change);
        if (!target) continue;
        const t = this.tables.source;
        if (target.kind === 'insert') {
          const row = this.model.insert(target.id, target.values);
          await client.query(
            `INSERT INTO ${t} (rid, id, email, txt, amount, doc, dbl, updated_at)
             VALUES ($1, $2, $3, $4, $5::numeric, $6::jsonb, $7::float8, $8)`,
            [row.rid, row.id, ...values(target.values), at],
          );
        } else if (target.kind === 'update') {
          this.model.update(target.rid, target.values!);
          await client.query(
            `UPDATE ${t} SET email = $2, txt = $3, amount = $4::numeric, doc = $5::jsonb, dbl = $6::float8, updated_at = $7
             WHERE rid = $1`,
            [target.rid, ...values(target.values!), at],
          );
        } else {
          this.model.delete(target.rid);
          await client.query(`DELETE FROM ${t} WHERE rid = $1`, [target.rid]);
        }
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /** The syncs a run step names (the membership ones only when the schedule has the membership sync). */
  private syncsOf(syncs: Syncs): string[] {
    const members = this.schedule.membership ? [MEMBER_SYNC] : [];
    switch (syncs) {
      case 'both':
        return BOTH;
      case 'all':
        return [...BOTH, ...members];
      case 'members':
        return members;
      default:
        return [SYNC_OF[syncs]];
    }
  }

  private allSyncs(): string[] {
    return this.syncsOf('all');
  }

  /** Members enter or leave: the tier of every row of the keys, one shared `updated_at`, as an edit. */
  private async setTier(ids: readonly number[] | 'all', tier: Tier): Promise<void> {
    this.tick++;
    const at = new Date(Date.UTC(2030, 0, 1) + this.tick * 1000).toISOString();
    const { updated, inserted } = this.model.setTier(ids, tier);
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN');
      if (updated.length > 0) {
        await client.query(`UPDATE ${this.tables.source} SET tier = $1, updated_at = $2 WHERE rid = ANY($3)`, [
          tier,
          at,
          updated,
        ]);
      }
      for (const row of inserted) {
        await client.query(
          `INSERT INTO ${this.tables.source} (rid, id, email, txt, amount, doc, dbl, tier, updated_at)
           VALUES ($1, $2, $3, $4, $5::numeric, $6::jsonb, $7::float8, $8, $9)`,
          [row.rid, row.id, ...values(row.values), row.tier, at],
        );
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * Before a run of the membership sync: what the table holds, and — when no crashed run's message
   * can still be delivered meanwhile — whether the guardrail must stop it (docs/segments.md: "A run
   * that would remove more than that share of the members it delivered stops before sending
   * anything"; the members it delivered are the sync's records in state `ok`, those who would be
   * removed the ones among them with no row in the segment).
   */
  private async beforeMemberRun(force: boolean): Promise<MemberRunContext> {
    this.model.membersPlanned();
    const held = await this.membersHeld();
    if (!this.settled) return { held };
    const present = this.model.segmentKeys();
    let synced = 0;
    let gone = 0;
    for await (const record of this.runtime!.state.listRecords(MEMBER_SYNC)) {
      if (record.status !== 'ok') continue;
      synced++;
      if (!present.has(Number(record.key))) gone++;
    }
    const stops = !force && gone > 0 && gone / synced > MEMBER_MAX_DELETE_RATIO;
    return { held, guardrail: { synced, gone, stops } };
  }

  /**
   * After a run of the membership sync, when no crashed run's message could interfere (`settled`
   * before it): a run the guardrail stopped sent nothing, and only when it had to stop; a run that
   * succeeded left the table equal to the segment.
   */
  private async afterMemberRun(
    before: MemberRunContext,
    summary: SyncSummary | undefined,
    force: boolean,
  ): Promise<Difference[]> {
    const out: Difference[] = [];
    const { guardrail } = before;
    // A run that threw (a fault reached the planner) or did not finish says nothing yet: the heal will.
    this.detail = `${MEMBER_SYNC}: ${summary ? `${summary.status}${summary.reason ? ` (${summary.reason})` : ''}` : 'threw'}${guardrail ? '' : ', not checked: a crashed run may still deliver'}`;
    // A run that sent nothing leaves what the last one verified; any other run that is not checked
    // here leaves the table unknown until the next check.
    if (summary?.status !== 'stopped') this.lastVerified = undefined;
    if (!summary || !guardrail) return out;
    const verdict = `would remove ${guardrail.gone} of ${guardrail.synced} member(s) delivered, limit ${MEMBER_MAX_DELETE_RATIO}${force ? ', forced' : ''}`;
    if (summary.status === 'stopped') {
      // Stopped for a lock a crashed plan left: documented, the heal takes it.
      if (!/^guardrail/.test(summary.reason ?? '')) return out;
      this.tally.guardrailStops = (this.tally.guardrailStops ?? 0) + 1;
      this.tally.memberChecks = (this.tally.memberChecks ?? 0) + 1;
      if (!guardrail.stops) {
        out.push({
          what: `the guardrail stopped a run of ${MEMBER_SYNC} it should have let through`,
          expected: `run (${verdict})`,
          actual: `stopped: ${summary.reason}`,
        });
      }
      const held = await this.membersHeld();
      if (showMembers(held) !== showMembers(before.held)) {
        out.push({
          what: `a run of ${MEMBER_SYNC} stopped by the guardrail changed the membership table (a stopped run sends nothing)`,
          expected: showMembers(before.held),
          actual: showMembers(held),
        });
      }
      return out;
    }
    if (summary.status !== 'succeeded') return out;
    this.tally.memberChecks = (this.tally.memberChecks ?? 0) + 1;
    if (guardrail.stops) {
      out.push({
        what: `the guardrail let through a run of ${MEMBER_SYNC} that removes more than max_delete_ratio of the members it delivered`,
        expected: `stopped (${verdict})`,
        actual: `succeeded: ${JSON.stringify(summary.run?.counters ?? {})}`,
      });
    }
    const held = await this.checkMembership(
      `after run ${summary.run?.sequence ?? '?'} of ${MEMBER_SYNC} succeeded`,
      out,
    );
    if (out.length === 0) {
      for (const id of this.model.keys()) this.model.memberVerified(id, memberKey(held.get(id)));
      this.lastVerified = { table: held, after: `run ${summary.run?.sequence ?? '?'} of ${MEMBER_SYNC} succeeded` };
    }
    return out;
  }

  /**
   * A redrive after a membership run that succeeded changes nothing in the membership table: that
   * run re-sent whatever the state said was not delivered, so every dead letter is older than what
   * it delivered (docs/segments.md: the record guarantees hold; cli/local-runtime.ts redrive:
   * "newer versions already delivered are not overwritten") — above all, it never re-adds a member
   * who left.
   */
  private async afterMemberRedrive(verified: NonNullable<World['lastVerified']>): Promise<Difference[]> {
    const out: Difference[] = [];
    const held = await this.membersHeld();
    for (const id of this.model.keys()) {
      const before = verified.table.get(id);
      const after = held.get(id);
      if (memberKey(before) === memberKey(after)) continue;
      const now = this.model.segment(id);
      const what =
        before === undefined
          ? `a redrive added id ${id} to the membership table after ${verified.after} without it (${now.kind === 'one' ? 'it is a member again now, but that run had it out' : 'a member who left'})`
          : after === undefined
            ? `a redrive removed id ${id} from the membership table after ${verified.after} with it`
            : `a redrive changed id ${id} in the membership table after ${verified.after} (an older value over a newer one)`;
      out.push({ what, key: id, lane: 'pg', expected: showMember(before), actual: showMember(after) });
    }
    return out;
  }

  /**
   * The membership table equals the segment's members as the warehouse computes them (checked
   * against the model first): every member present with its row's email and tier, nobody else; a
   * key repeated in the segment is invalid and never sent, so the table keeps what it had.
   */
  private async checkMembership(when: string, out: Difference[]): Promise<Map<number, Member>> {
    const held = await this.membersHeld();
    const warehouse = await this.warehouseMembers();
    for (const id of this.model.keys()) {
      const state = this.model.segment(id);
      const computed = warehouse.get(id);
      const modelSays = state.kind === 'one' ? state.key : state.kind;
      const sqlSays = computed === undefined ? 'absent' : computed === 'repeated' ? 'repeated' : memberKey(computed);
      if (modelSays !== sqlSays) {
        throw new Violation(this.step, [
          {
            what: `checker bug: the warehouse computes the segment differently than the model for id ${id}`,
            key: id,
            expected: modelSays,
            actual: sqlSays,
          },
        ]);
      }
      const actual = held.get(id);
      const actualKey = memberKey(actual);
      const fail = (what: string, expected: string) =>
        out.push({ what: `${what} (${when})`, key: id, lane: 'pg', expected, actual: showMember(actual) });
      if (state.kind === 'one' && actualKey !== state.key) {
        fail(
          actual === undefined
            ? `the membership table misses id ${id}, a member of the segment`
            : `the membership table holds id ${id} with other values than its row in the segment`,
          showMember(state.member),
        );
      } else if (state.kind === 'absent' && actual !== undefined) {
        fail(
          `the membership table holds id ${id}, which is not in the segment (a member who left, or never entered)`,
          'absent',
        );
      } else if (state.kind === 'repeated' && !this.model.memberCandidatesOf(id).has(actualKey)) {
        const earlier = [...this.model.memberCandidatesOf(id)].map((c) => (c === ABSENT ? 'absent' : c)).join(' or ');
        fail(
          `the membership table holds a value for id ${id}, repeated in the segment (${state.copies} rows), that it never held nor was sent while the key was a member`,
          earlier,
        );
      }
    }
    return held;
  }

  /** The membership table, read back with SQL. */
  private async membersHeld(): Promise<Map<number, Member>> {
    const { rows } = await this.db.pool.query<{ id: string; email: string; tier: string | null }>(
      `SELECT id::text, email, tier FROM ${this.tables.members}`,
    );
    return new Map(rows.map((r) => [Number(r.id), { email: r.email, tier: r.tier }]));
  }

  /** The segment's members as the warehouse computes them: one row of the key in the segment, or repeated. */
  private async warehouseMembers(): Promise<Map<number, Member | 'repeated'>> {
    const { rows } = await this.db.pool.query<{ id: string; email: string; tier: string | null; n: number }>(
      `SELECT id::text, email, tier, count(*) OVER (PARTITION BY id)::int AS n
         FROM ${this.tables.source}
        WHERE tier IN ('gold', 'platinum') AND strpos(email, '@') > 0`,
    );
    return new Map(rows.map((r) => [Number(r.id), r.n > 1 ? 'repeated' : { email: r.email, tier: r.tier }]));
  }

  /** The step in a child process that kills itself at the named point; the runtime is stopped meanwhile. */
  private async crash(step: Step & { t: 'crash' }): Promise<void> {
    this.tally.crashes++;
    if (step.at !== 'redrive') {
      this.model.planned(LANES, this.mode === 'mirror');
      if (this.schedule.membership) this.model.membersPlanned();
    }
    await this.stopRuntime();
    const args: DriverArgs = {
      projectDir: this.dir,
      at: step.at,
      nth: step.nth,
      full: step.full,
      concurrency: this.schedule.concurrency,
      syncs: this.allSyncs(),
      lanes: LANES,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'driver.ts'), JSON.stringify(args)], {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (c, s) => resolve({ code: c, signal: s })),
    );
    if (signal !== 'SIGKILL' && code !== 0) {
      this.tally.childErrors++;
      this.notes.push(
        `step ${this.step + 1}: the child process exited ${code ?? signal}: ${stderr.trim().slice(-500)}`,
      );
    }
    await this.startRuntime();
  }

  /** After a step: runs it created are pinned to what the source holds now; webhook writes of repeated keys fail. */
  private async afterStep(): Promise<void> {
    const differences = await this.observe();
    if (differences.length > 0) throw new Violation(this.step, differences);
  }

  /** Pins new runs to what the source holds now; resolves the webhook writes of repeated keys since the last call. */
  private async observe(): Promise<Difference[]> {
    for (const lane of LANES) {
      const sync = SYNC_OF[lane];
      const known = this.model.knownRuns(sync);
      const fresh = (await this.runtime!.state.listRuns(sync, 1000)).filter((r) => !known.has(r.sequence));
      if (fresh.length > 0)
        this.model.runsSeen(
          sync,
          fresh.map((r) => r.sequence),
        );
    }
    const differences: Difference[] = [];
    for (const entry of this.hookLog.slice(this.hookChecked)) {
      for (const received of receivedRecords(entry)) {
        if (!received.applied || received.value === undefined) continue;
        const state = this.model.key(received.id);
        if (state.kind !== 'repeated') continue;
        const key = JSON.stringify(received.value);
        if (this.model.uniqueValuesOf(received.id).has(key)) continue;
        differences.push({
          what: `the webhook received id ${received.id} while the source holds ${state.copies} rows with that id (every copy of a repeated key must be invalid, never sent)`,
          key: received.id,
          lane: 'hook',
          expected: 'nothing sent',
          actual: showCanonical(received.value),
        });
      }
    }
    this.hookChecked = this.hookLog.length;
    return differences;
  }

  /** A healthy full run, a redrive of both lanes, one more healthy run; then every invariant. */
  private async heal(index: number): Promise<void> {
    this.tally.heals++;
    const differences: Difference[] = [];
    const healthy = async (what: string, work: () => Promise<SyncSummary[] | undefined>) => {
      try {
        for (const summary of (await work()) ?? []) {
          if (summary.status !== 'succeeded' && summary.status !== 'nothing to do') {
            differences.push({
              what: `${what}: ${summary.syncId} ended ${summary.status}: ${summary.reason ?? summary.run?.error ?? ''}`,
            });
          }
        }
      } catch (error) {
        differences.push({ what: `${what} threw: ${(error as Error).message}` });
      }
    };
    const all = this.allSyncs();
    const membership = this.schedule.membership === true;
    this.model.planned(LANES, this.mode === 'mirror');
    if (membership) this.model.membersPlanned();
    let fullRuns: SyncSummary[] = [];
    await healthy('healthy full run', async () => {
      // Forced: a plan killed by a crash step leaves its lock until its 10 s lease lapses (and
      // the membership sync's guardrail lets the run through, as `backflow run --force` does).
      fullRuns = await this.runtime!.run(all, { full: true, force: true });
      return fullRuns;
    });
    differences.push(...(await this.observe()));
    await healthy('redrive of both lanes', async () => {
      for (const lane of LANES) await this.runtime!.redrive(lane);
      return undefined;
    });
    differences.push(...(await this.observe()));
    this.model.planned(LANES, this.mode === 'mirror');
    if (membership) this.model.membersPlanned();
    await healthy('healthy run after the redrive', async () => [
      ...(await this.runtime!.run(BOTH)),
      // Forced: the redrive may have re-added members who left since, whose removal the
      // guardrail could stop.
      ...(membership ? await this.runtime!.run([MEMBER_SYNC], { force: true }) : []),
    ]);
    this.settled = true;
    differences.push(...(await this.observe()));
    const members = membership ? await this.checkMembership('after the heal', differences) : undefined;

    this.checkInvalidReported(fullRuns, differences);
    await this.checkSourceMatchesModel(index);
    const held = { pg: await this.postgresHolds(), hook: this.webhookHolds() };
    const states = new Map<Lane, Map<string, RecordState>>();
    for (const lane of LANES) {
      const records = new Map<string, RecordState>();
      for await (const record of this.runtime!.state.listRecords(SYNC_OF[lane])) records.set(record.key, record);
      states.set(lane, records);
    }
    const stateOf = (lane: Lane, id: number) => describeState(SYNC_OF[lane], states.get(lane)!.get(String(id)));

    for (const lane of LANES) {
      for (const id of this.model.keys()) {
        const actual = held[lane].get(id);
        const actualKey = actual === undefined ? ABSENT : JSON.stringify(actual);
        const state = this.model.key(id);
        const deliverable = this.model.deliverable(id);
        const candidates = this.model.candidatesOf(lane, id);
        const refused = this.model.isRefused(lane, id);
        const fail = (what: string, expected: string) =>
          differences.push({ what, key: id, lane, expected, actual: showCanonical(actual), state: stateOf(lane, id) });
        const earlier = () =>
          [...candidates].map((c) => (c === ABSENT ? 'absent' : showCanonical(JSON.parse(c)))).join(' or ');
        if (deliverable && !refused) {
          if (actualKey !== deliverable.key) {
            fail(
              `${lane} holds a different value for id ${id} than the source's only row`,
              showCanonical(deliverable.canonical),
            );
          }
        } else if (deliverable) {
          if (actualKey !== deliverable.key && !candidates.has(actualKey)) {
            fail(
              `${lane} refused id ${id} and then holds a value it was never sent`,
              `${showCanonical(deliverable.canonical)} or ${earlier()}`,
            );
          }
          const record = states.get(lane)!.get(String(id));
          if (actualKey !== deliverable.key && record?.status !== 'rejected') {
            fail(
              `${lane} refused id ${id} and does not hold its value, but the state of ${SYNC_OF[lane]} does not list it as rejected (backflow rejections)`,
              `status rejected, or ${showCanonical(deliverable.canonical)} delivered`,
            );
          }
        } else if (state.kind === 'absent' && lane === 'pg' && this.mode === 'mirror' && !refused) {
          if (actual !== undefined) fail(`${lane} (mirror) still holds id ${id}, which left the source`, 'absent');
        } else if (!candidates.has(actualKey)) {
          const why =
            state.kind === 'repeated'
              ? `is repeated in the source (${state.copies} rows)`
              : state.kind === 'absent'
                ? 'left the source (upsert keeps the last delivered values)'
                : `has an email the destination refuses`;
          fail(
            `${lane} holds a value for id ${id} that was never delivered while it was deliverable; id ${id} ${why}`,
            earlier(),
          );
        }
        if (state.kind === 'one' && !deliverable) {
          const record = states.get(lane)!.get(String(id));
          if (record?.status !== 'rejected') {
            differences.push({
              what: `${lane} refuses id ${id} (its email), but the state of ${SYNC_OF[lane]} does not list it as rejected (backflow rejections)`,
              key: id,
              lane,
              expected: 'status rejected',
              actual: showCanonical(actual),
              state: stateOf(lane, id),
            });
          }
        }
      }
      this.checkState(lane, states.get(lane)!, held[lane], differences);
    }
    for (const sync of all) {
      for (const run of await this.runtime!.state.listRuns(sync, 1000)) {
        if (run.status === 'planning' || run.status === 'exporting') {
          differences.push({ what: `run ${run.runId} of ${sync} is left ${run.status} (no run may stay open)` });
        }
      }
    }
    for (const lane of LANES) {
      const depth = { total: await this.runtime!.deadLetterDepth(lane) };
      if (depth.total > 0)
        differences.push({
          what: `${depth.total} dead letter(s) left on lane ${lane} after a redrive and healthy runs`,
        });
    }
    if (differences.length > 0) throw new Violation(index, differences);
    for (const lane of LANES) {
      for (const id of this.model.keys()) {
        const actual = held[lane].get(id);
        this.model.verified(lane, id, actual === undefined ? ABSENT : JSON.stringify(actual));
      }
    }
    if (members) {
      for (const id of this.model.keys()) this.model.memberVerified(id, memberKey(members.get(id)));
      this.lastVerified = { table: members, after: `the heal of step ${index + 1}` };
    }
  }

  /**
   * The state never claims a delivery the destination does not hold: a key stored `ok` by run N
   * is in the destination, with the value run N planned or one planned later; run N did not see
   * the key repeated.
   */
  private checkState(
    lane: Lane,
    records: Map<string, RecordState>,
    held: Map<number, Canonical>,
    out: Difference[],
  ): void {
    const sync = SYNC_OF[lane];
    for (const record of records.values()) {
      const id = Number(record.key);
      const actual = held.get(id);
      const actualKey = actual === undefined ? ABSENT : JSON.stringify(actual);
      const fail = (what: string, expected: string) =>
        out.push({ what, key: id, lane, expected, actual: showCanonical(actual), state: describeState(sync, record) });
      if (record.status === 'deleted') {
        if (actual !== undefined && !this.model.plannedSince(sync, record.version + 1, id).has(actualKey)) {
          fail(
            `the state of ${sync} says id ${id} was deleted by run ${record.version}, but ${lane} holds it`,
            'absent',
          );
        }
        continue;
      }
      if (record.status !== 'ok') continue;
      const planned = this.model.plannedValue(sync, record.version, id);
      if (planned === 'repeated') {
        fail(
          `the state of ${sync} says run ${record.version} delivered id ${id}, but id ${id} was repeated when that run planned`,
          'never sent',
        );
      } else if (actual === undefined) {
        fail(
          `the state of ${sync} says id ${id} was delivered (run ${record.version}), but ${lane} does not hold it`,
          'present',
        );
      } else if (planned !== undefined && !this.model.plannedSince(sync, record.version, id).has(actualKey)) {
        fail(
          `${lane} holds neither the value of id ${id} the state of ${sync} calls delivered (run ${record.version}) nor a later one`,
          planned === ABSENT || planned === 'repeated' ? planned : showCanonical(JSON.parse(planned)),
        );
      }
    }
  }

  /** Every copy of a repeated key is invalid and reported, in the heal's full run of each sync. */
  private checkInvalidReported(fullRuns: readonly SyncSummary[], out: Difference[]): void {
    const inModel = this.model.keys().filter((id) => this.model.key(id).kind === 'repeated');
    const inSegment = this.model.keys().filter((id) => this.model.segment(id).kind === 'repeated');
    for (const summary of fullRuns) {
      // The membership sync reads the segment: a key is repeated there when several of its rows are in it.
      const segment = summary.syncId === MEMBER_SYNC;
      const repeated = segment ? inSegment : inModel;
      const rows = repeated.reduce((n, id) => {
        const state = segment ? this.model.segment(id) : this.model.key(id);
        return n + (state.kind === 'repeated' ? state.copies : 0);
      }, 0);
      const run = summary.run;
      if (!run) continue;
      if (run.counters.invalid !== rows) {
        out.push({
          what: `the full run of ${summary.syncId} counted ${run.counters.invalid} invalid row(s); the ${segment ? 'segment' : 'source'} holds ${rows} row(s) of repeated ids (${repeated.join(', ') || 'none'}), each one invalid`,
          expected: `invalid ${rows}`,
          actual: `invalid ${run.counters.invalid}`,
        });
      }
      if (run.counters.invalid <= 20) {
        for (const id of repeated) {
          if (!run.invalidSamples.some((s) => s.key === String(id) && /duplicate/.test(s.reason))) {
            out.push({
              what: `the full run of ${summary.syncId} does not report repeated id ${id} as invalid`,
              key: id,
              expected: `invalidSamples has ${id}: duplicate primary key`,
              actual: JSON.stringify(run.invalidSamples),
            });
          }
        }
      }
    }
  }

  /** Sanity check of the checker itself: the source table holds what the model says. */
  private async checkSourceMatchesModel(index: number): Promise<void> {
    const { rows } = await this.db.pool.query<Record<string, string | null>>(
      `SELECT rid::text, id::text, email, txt, amount::text AS amount, doc::text AS doc, dbl::text AS dbl, tier
         FROM ${this.tables.source}`,
    );
    rows.sort((a, b) => Number(a.rid) - Number(b.rid));
    const model = [...this.model.rows.values()].sort((a, b) => a.rid - b.rid);
    const problem =
      rows.length !== model.length
        ? `${rows.length} rows, the model has ${model.length}`
        : rows
            .map((r, i) => {
              const m = model[i]!;
              const same =
                String(m.rid) === r.rid &&
                String(m.id) === r.id &&
                (r.tier ?? null) === m.tier &&
                JSON.stringify(fromSql(r)) === JSON.stringify(canonicalRow(m.values));
              return same ? undefined : `row ${r.rid}: ${JSON.stringify(r)}`;
            })
            .find(Boolean);
    if (problem)
      throw new Violation(index, [{ what: `checker bug: the source table differs from the model: ${problem}` }]);
  }

  /** The PostgreSQL destination table, read back with SQL, canonical. */
  private async postgresHolds(): Promise<Map<number, Canonical>> {
    const { rows } = await this.db.pool.query<Record<string, string | null>>(
      `SELECT id::text, email, txt, amount::text AS amount, doc::text AS doc, dbl::text AS dbl FROM ${this.tables.destination}`,
    );
    return new Map(rows.map((r) => [Number(r.id), fromSql(r)]));
  }

  /** The webhook receiver's log: the last value applied per key, in receive order. */
  private webhookHolds(): Map<number, Canonical> {
    const held = new Map<number, Canonical>();
    for (const entry of this.hookLog) {
      for (const received of receivedRecords(entry)) {
        if (!received.applied) continue;
        if (received.value === undefined) held.delete(received.id);
        else held.set(received.id, received.value);
      }
    }
    return held;
  }
}

interface MemberRunContext {
  /** The membership table before the run. */
  readonly held: Map<number, Member>;
  /** What the guardrail must say; absent when a crashed run's messages may still be delivered. */
  readonly guardrail?: { readonly synced: number; readonly gone: number; readonly stops: boolean };
}

function showMember(member: Member | undefined): string {
  return member === undefined ? 'absent' : `{ email: ${show(member.email)}, tier: ${member.tier ?? 'null'} }`;
}

function showMembers(members: Map<number, Member>): string {
  const ids = [...members.keys()].sort((a, b) => a - b);
  return ids.length === 0 ? 'no member' : ids.map((id) => `id ${id} ${showMember(members.get(id))}`).join(', ');
}

function lanesOf(syncs: readonly string[]): Lane[] {
  return LANES.filter((lane) => syncs.includes(SYNC_OF[lane]));
}

function values(row: RowValues): (string | null)[] {
  return [row.email, row.txt, row.amount, row.doc, row.dbl];
}

function fromSql(row: Record<string, string | null>): Canonical {
  return {
    email: row.email ?? null,
    txt: row.txt ?? null,
    amount: row.amount == null ? null : canonicalDecimal(row.amount),
    doc: row.doc == null ? null : canonicalJsonText(row.doc),
    dbl: row.dbl == null ? null : canonicalDouble(row.dbl),
  };
}

/** The records of one logged webhook batch, as the receiver applied them (its raw body, parsed exactly). */
function receivedRecords(entry: {
  rawBody: string;
  results: ResultEntry[];
}): { id: number; applied: boolean; value?: Canonical }[] {
  const body = parseLossless(entry.rawBody);
  const records =
    body !== null && typeof body === 'object' && 'object' in body ? body.object.get('records') : undefined;
  if (!Array.isArray(records)) return [];
  return (records as ReturnType<typeof parseLossless>[]).map((record, i) => {
    const fields = record !== null && typeof record === 'object' && 'object' in record ? record.object : new Map();
    const id = Number(fields.get('key'));
    const applied = entry.results[i]?.status === 'ok';
    if (fields.get('op') === 'delete') return { id, applied };
    return { id, applied, value: canonicalFields(fields.get('fields') ?? null) };
  });
}

function describeState(sync: string, record: RecordState | undefined): string {
  if (!record) return `${sync}: no state`;
  const parts = [`status ${record.status}`, `version (run) ${record.version}`];
  if (record.hash) parts.push(`hash ${record.hash}`);
  if (record.reason) parts.push(`reason ${JSON.stringify(record.reason)}`);
  if (record.dirty) parts.push('dirty');
  return `${sync}: ${parts.join(', ')}`;
}
