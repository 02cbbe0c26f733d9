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
import { ABSENT, Model, SYNC_OF } from './model.ts';
import { type Change, type Faults, LANES, type Lane, type Schedule, type Step } from './schedule.ts';
import {
  type Canonical,
  canonicalDecimal,
  canonicalDouble,
  canonicalFields,
  canonicalJsonText,
  canonicalRow,
  parseLossless,
  type RowValues,
  showCanonical,
} from './values.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };
/** A step that takes longer than this is a hang: the schedule fails. */
const STEP_TIMEOUT_MS = 120_000;
const BOTH = [SYNC_OF.pg, SYNC_OF.hook];

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
  readonly notes: string[] = [];

  private constructor(
    private readonly db: CheckerDatabase,
    private readonly schedule: Schedule,
    private readonly dir: string,
    private readonly tables: { readonly source: string; readonly destination: string },
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
    const tables = { source: `src_${suffix}`, destination: `dst_${suffix}` };
    await db.pool.query(
      `CREATE TABLE ${tables.source} (rid bigint PRIMARY KEY, id bigint, email text, txt text, amount numeric,
         doc jsonb, dbl double precision, updated_at timestamptz)`,
    );
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
    await this.db.pool.query(`DROP TABLE IF EXISTS ${this.tables.source}, ${this.tables.destination}`).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs step `index`; throws a Violation when a guarantee broke. */
  async run(step: Step, index: number): Promise<void> {
    this.step = index;
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
        const syncs = step.syncs === 'both' ? BOTH : [SYNC_OF[step.syncs]];
        this.model.planned(lanesOf(syncs), this.mode === 'mirror');
        await this.withFaults(step.faults, async () => {
          await this.runtime!.run(syncs, { full: step.full });
        });
        await this.afterStep();
        return;
      }
      case 'redrive':
        await this.withFaults(step.faults, async () => {
          for (const lane of LANES) await this.runtime!.redrive(lane);
        });
        await this.afterStep();
        return;
      case 'mode':
        this.mode = step.mode;
        await this.stopRuntime();
        this.writeConfig();
        await this.startRuntime();
        return;
      case 'crash':
        await this.crash(step);
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
    sql: select id, email, txt, amount, doc, dbl, updated_at from ${tables.source}
    primary_key: id
    cursor: updated_at
    page_size: ${schedule.pageSize}
destinations:
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
`;
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
    const refuse = this.faults.refuse?.lane === lane ? new Set(this.faults.refuse.ids.map(String)) : undefined;
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

  /** The step in a child process that kills itself at the named point; the runtime is stopped meanwhile. */
  private async crash(step: Step & { t: 'crash' }): Promise<void> {
    this.tally.crashes++;
    if (step.at !== 'redrive') this.model.planned(LANES, this.mode === 'mirror');
    await this.stopRuntime();
    const args: DriverArgs = {
      projectDir: this.dir,
      at: step.at,
      nth: step.nth,
      full: step.full,
      concurrency: this.schedule.concurrency,
      syncs: BOTH,
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
    this.model.planned(LANES, this.mode === 'mirror');
    let fullRuns: SyncSummary[] = [];
    await healthy('healthy full run', async () => {
      // Forced: a plan killed by a crash step leaves its lock until its 10 s lease lapses.
      fullRuns = await this.runtime!.run(BOTH, { full: true, force: true });
      return fullRuns;
    });
    differences.push(...(await this.observe()));
    await healthy('redrive of both lanes', async () => {
      for (const lane of LANES) await this.runtime!.redrive(lane);
      return undefined;
    });
    differences.push(...(await this.observe()));
    this.model.planned(LANES, this.mode === 'mirror');
    await healthy('healthy run after the redrive', () => this.runtime!.run(BOTH));
    differences.push(...(await this.observe()));

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
    for (const sync of BOTH) {
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
    const repeated = this.model.keys().filter((id) => this.model.key(id).kind === 'repeated');
    const rows = repeated.reduce((n, id) => n + this.model.copies(id).length, 0);
    for (const summary of fullRuns) {
      const run = summary.run;
      if (!run) continue;
      if (run.counters.invalid !== rows) {
        out.push({
          what: `the full run of ${summary.syncId} counted ${run.counters.invalid} invalid row(s); the source holds ${rows} row(s) of repeated ids (${repeated.join(', ') || 'none'}), each one invalid`,
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
      `SELECT rid::text, id::text, email, txt, amount::text AS amount, doc::text AS doc, dbl::text AS dbl
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
