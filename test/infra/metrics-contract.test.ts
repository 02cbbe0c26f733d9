import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { manifests } from '#connectors/manifests';
import { loadConfig } from '#core/config/load';
import { METRIC_DIMENSION, METRICS, type MetricName } from '#core/metrics';
import { LocalSecrets } from '#core/secrets';
import { laneDimensions, METRICS_NAMESPACE, syncDimensions } from '../../infra/constructs/BackflowMonitoring.ts';
import { TestProject } from '../e2e/project.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.ts';
import { resources, synthStack } from './stacks.ts';

interface Emf {
  readonly _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  readonly [key: string]: unknown;
}

/**
 * The real plan and export handlers (through the local runtime, which invokes them as Lambda
 * would) with the Powertools EMF metrics the functions use on AWS: every EMF line they print.
 */
async function emittedBy(scenario: () => Promise<void>): Promise<Emf[]> {
  const lines: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  });
  try {
    await scenario();
  } finally {
    write.mockRestore();
    log.mockRestore();
  }
  return lines
    .flatMap((chunk) => chunk.split('\n'))
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Emf);
}

const CONFIG = `
version: 1
sources:
  warehouse: { type: duckdb, path: ':memory:' }
models:
  people: { source: warehouse, sql: select 1 as id, primary_key: id }
destinations:
  crm: { type: webhook, url: https://hooks.example.com/in }
syncs:
  people-to-crm:
    model: people
    destination: crm
    object: contacts
    match: { id: id }
    schedule: rate(1 hour)
`;

describe('metrics contract between the functions and the alarms', () => {
  let receiver: WebhookReceiver;
  const projects: TestProject[] = [];
  let emf: Emf[] = [];
  beforeAll(async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const { metrics, powertoolsMetrics } = await import('#functions/shared/aws-environment');
    receiver = await startWebhookReceiver({ signingSecret: 'contract-secret' });
    const secrets = new LocalSecrets('/nonexistent', {
      BACKFLOW_SECRET_HOOK: JSON.stringify({ signing_secret: 'contract-secret' }),
    });
    const destination = `    type: webhook\n    url: ${receiver.url}/hooks/crm\n    secret: hook`;
    emf = await emittedBy(async () => {
      // Created, rejected, throttled, a failed batch retried; then updated; then dead-lettered.
      const project = await TestProject.create({ customers: 30, destination });
      projects.push(project);
      await project.sql("update customers set email = 'not-an-email' where id = 7");
      const runtime = await project.runtime({ secrets, metrics: powertoolsMetrics(metrics), maxDelaySeconds: 0 });
      receiver.failNext(1, 429, { 'Retry-After': '1' });
      receiver.failNext(4, 503);
      await runtime.run(['customers-to-crm']);
      await project.sql("update customers set plan = 'changed', updated_at = updated_at + interval 1 day where id < 5");
      await runtime.run(['customers-to-crm']);
      await runtime.stop();
      const failing = await TestProject.create({ customers: 5, destination, retryBudgetSeconds: 0 });
      projects.push(failing);
      const failingRuntime = await failing.runtime({
        secrets,
        metrics: powertoolsMetrics(metrics),
        maxDelaySeconds: 0,
      });
      receiver.failNext(100, 503);
      await failingRuntime.run(['customers-to-crm']);
      // A plan that fails (its destination's secret is fine, the source's model is broken) and one stopped.
      failing.writeConfig({ destination, sql: 'select * from no_such_table' });
      await failingRuntime.stop();
      const broken = await failing.runtime({ secrets, metrics: powertoolsMetrics(metrics) });
      await broken.run(['customers-to-crm']).catch(() => {});
      await broken.stop();
      failing.writeConfig({ destination, sql: 'select id, email, updated_at from customers' });
      const stopped = await failing.runtime({ secrets, metrics: powertoolsMetrics(metrics) });
      await stopped.run(['customers-to-crm']);
      await stopped.stop();
      // A membership sync of a segment, twice: its size, then how far it swung (10 → 15 members: 50%).
      const segmented = await TestProject.create({ customers: 30, destination });
      projects.push(segmented);
      const file = path.join(segmented.dir, 'backflow.yml');
      writeFileSync(
        file,
        readFileSync(file, 'utf8')
          .replace('destinations:', 'segments:\n  top:\n    model: customers\n    where: id <= 10\ndestinations:')
          .replace('    model: customers\n    destination: crm', '    segment: top\n    destination: crm'),
      );
      segmented.config = loadConfig(file, manifests);
      const seg = await segmented.runtime({ secrets, metrics: powertoolsMetrics(metrics), maxDelaySeconds: 0 });
      await seg.run(['customers-to-crm']);
      writeFileSync(file, readFileSync(file, 'utf8').replace('where: id <= 10', 'where: id <= 15'));
      await seg.stop();
      segmented.config = loadConfig(file, manifests);
      const seg2 = await segmented.runtime({ secrets, metrics: powertoolsMetrics(metrics), maxDelaySeconds: 0 });
      await seg2.run(['customers-to-crm']);
      await seg2.stop();
    });
  }, 180_000);
  afterAll(async () => {
    vi.unstubAllEnvs();
    await receiver?.stop();
    for (const project of projects) project.cleanup();
  });

  const watched: MetricName[] = [
    METRICS.runsPlanned,
    METRICS.runsStopped,
    METRICS.planFailures,
    METRICS.recordsCreated,
    METRICS.recordsUpdated,
    METRICS.recordsRejected,
    METRICS.recordsRetried,
    METRICS.recordsDeadLettered,
    METRICS.exportErrors,
    METRICS.destinationThrottles,
    METRICS.recordAge,
  ];
  it.each(watched)('%s is emitted in the namespace and with exactly the dimensions the alarms watch', (name) => {
    const line = emf.find((e) => e._aws.CloudWatchMetrics[0]?.Metrics.some((m) => m.Name === name));
    expect(line, `no EMF line for ${name}`).toBeDefined();
    const [directive] = line!._aws.CloudWatchMetrics;
    const expected = METRIC_DIMENSION[name] === 'sync' ? syncDimensions('customers-to-crm') : laneDimensions('crm');
    expect(directive?.Namespace).toBe(METRICS_NAMESPACE);
    expect(directive?.Dimensions.map((set) => [...set].sort())).toEqual([Object.keys(expected).sort()]);
    for (const [key, value] of Object.entries(expected)) expect(line![key], key).toBe(value);
  });

  it('the plan of a segment sync emits the segment’s size and its swing since the last run, by segment', () => {
    const values = (name: string) =>
      emf
        .filter((e) => e._aws.CloudWatchMetrics[0]?.Metrics.some((m) => m.Name === name))
        .map((e) => {
          const [directive] = e._aws.CloudWatchMetrics;
          expect(directive?.Dimensions.map((set) => [...set].sort())).toEqual([['segment', 'service']]);
          expect(e.segment).toBe('top');
          return e[name];
        });
    expect(values(METRICS.segmentSize)).toEqual([10, 15]);
    expect(values(METRICS.segmentSwing)).toEqual([50]);
  });

  it('every alarm and dashboard metric of the Backflow namespace is one the functions emit (one list)', () => {
    const { template } = synthStack(CONFIG);
    const body = JSON.stringify(template.toJSON());
    const names = new Set([...body.matchAll(/"MetricName":"([A-Za-z]+)","Namespace":"Backflow"/g)].map((m) => m[1]!));
    for (const alarm of Object.values(resources(template, 'AWS::CloudWatch::Alarm'))) {
      for (const metric of (alarm.Properties.Metrics ?? []) as {
        MetricStat?: { Metric: { MetricName: string; Namespace: string } };
      }[]) {
        if (metric.MetricStat?.Metric.Namespace === METRICS_NAMESPACE) names.add(metric.MetricStat.Metric.MetricName);
      }
    }
    expect(names.size).toBeGreaterThan(5);
    for (const name of names) expect(Object.values(METRICS), name).toContain(name);
  });
});
