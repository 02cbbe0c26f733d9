/**
 * Child process of the memory scenario: plans a prepared project end to end (first run, every row
 * new) and reports its own peak RSS to the parent. Its state is an in-memory StateStore (the plan
 * never writes record states, so it stays small) and its queue counts messages and keeps none.
 * Mode `read` only pages through the model with the source, to tell the source's memory from the
 * engine's.
 */

import { performance } from 'node:perf_hooks';
import { manifests } from '#connectors/manifests';
import { duckdbSource } from '#connectors/sources/duckdb/index';
import { loadConfig } from '#core/config/load';
import { batchSizeOf } from '#core/connect';
import { planSync } from '#core/planner';
import { noMetrics, systemClock } from '#core/ports';
import { MemoryStateStore } from '#test/fakes/memory-ports';
import { CountingLaneQueue } from '../lib/counting.ts';
import { MB, RssSampler, round } from '../lib/measure.ts';
import { SYNC_ID } from '../lib/project.ts';

export interface MemoryChildReport {
  readonly mode: 'plan' | 'read';
  readonly pageSize: number;
  readonly rows: number;
  readonly extracted: number;
  readonly queued: number;
  readonly messages: number;
  readonly queuedMb: number;
  readonly wallMs: number;
  /** RSS once the modules are loaded and the source is connected, before planning. */
  readonly baselineRssMb: number;
  /** Peak RSS of this process over its whole life (getrusage ru_maxrss). */
  readonly peakRssMb: number;
  /** Highest RSS sampled while planning. */
  readonly sampledPeakRssMb: number;
  readonly heapUsedBeforeMb: number;
  readonly heapUsedAfterMb: number;
  readonly heapPeakMb: number;
}

async function main(): Promise<MemoryChildReport> {
  const [configFile, rowsText, modeText, pageText] = process.argv.slice(2);
  if (!configFile) throw new Error('usage: memory-child.ts <backflow.yml> <rows> <plan|read> <page size>');
  const mode = modeText === 'read' ? 'read' : 'plan';
  const config = loadConfig(configFile, manifests);
  const sync = config.syncs[SYNC_ID]!;
  const configured = config.models[sync.model]!;
  const model = { ...configured, page_size: Number(pageText ?? configured.page_size) };
  const sourceConfig = config.sources[model.source]!;
  const source = await duckdbSource.connect(duckdbSource.optionsSchema.parse(sourceConfig.options), {
    projectDir: config.projectDir,
  });
  const queue = new CountingLaneQueue();
  global.gc?.();
  const baseline = process.memoryUsage();
  let heapPeak = baseline.heapUsed;
  const heapTimer = setInterval(() => {
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  }, 20);
  const rss = new RssSampler();
  const started = performance.now();
  let counters = { extracted: 0, queued: 0, messages: 0 };
  if (mode === 'plan') {
    const outcome = await planSync(
      { sync, model, lane: sync.destination, batchSize: batchSizeOf(manifests, config, sync.destination) },
      { state: new MemoryStateStore(), queue, clock: systemClock, metrics: noMetrics, source },
    );
    if (outcome.status !== 'planned') throw new Error(`the plan did not finish: ${outcome.status}`);
    counters = outcome.run.counters;
  } else {
    for await (const page of source.read({
      sql: model.sql,
      primaryKey: model.primary_key,
      pageSize: model.page_size,
    })) {
      counters.extracted += page.rows.length;
    }
  }
  const wallMs = performance.now() - started;
  const sampled = rss.stop();
  clearInterval(heapTimer);
  const after = process.memoryUsage();
  await source.close();
  const report: MemoryChildReport = {
    mode,
    pageSize: model.page_size,
    rows: Number(rowsText),
    extracted: counters.extracted,
    queued: counters.queued,
    messages: counters.messages,
    queuedMb: round(queue.bytes / MB, 1),
    wallMs: round(wallMs),
    baselineRssMb: round(baseline.rss / MB, 1),
    // ru_maxrss is in kilobytes on Linux.
    peakRssMb: round((process.resourceUsage().maxRSS * 1024) / MB, 1),
    sampledPeakRssMb: sampled.peakMb,
    heapUsedBeforeMb: round(baseline.heapUsed / MB, 1),
    heapUsedAfterMb: round(after.heapUsed / MB, 1),
    heapPeakMb: round(Math.max(heapPeak, after.heapUsed) / MB, 1),
  };
  return report;
}

main().then(
  (report) => {
    if (process.send) process.send(report, () => process.exit(0));
    else {
      console.log(JSON.stringify(report, null, 2));
      process.exit(0);
    }
  },
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
