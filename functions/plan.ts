import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { ConnectorCatalogue } from '#connectors/sdk/catalogue';
import type { SourceConnection } from '#connectors/sdk/source';
import { batchSizeOf, connectSource } from '#core/connect';
import { ConnectorConfigError, RunStoppedError } from '#core/errors';
import { METRICS } from '#core/metrics';
import { planSync } from '#core/planner';
import type { RunCounters } from '#core/ports';
import { recordFailedStart } from '#core/runs';
import { awsEnvironment, logger } from './shared/aws-environment.ts';
import { continueInFreshInvocation } from './shared/continue-plan.ts';
import type { Environment, PlanEvent } from './shared/environment.ts';

export interface PlanResult {
  readonly syncId: string;
  readonly runId?: string;
  readonly status: 'planned' | 'continued' | 'stopped';
  readonly reason?: string;
  readonly counters?: RunCounters;
  /** What the plan did beyond the ordinary, for a person to read (a lock taken over). */
  readonly notices?: readonly string[];
}

/** Leave this much of the Lambda's time to hand over to a fresh invocation. */
const RESERVE_MS = 90_000;

/**
 * The plan function: reads what changed in a sync's model and queues it on the destination's
 * lane. A run that would outlive the invocation continues in a fresh one. A run stopped by a
 * guardrail, schema drift or a held lock returns `stopped` with the reason (not an error: a
 * retry would stop again); anything else throws, so the invocation counts as failed.
 */
export function createPlanHandler(environment: () => Environment) {
  return async (event: PlanEvent, context: Pick<Context, 'getRemainingTimeInMillis'>): Promise<PlanResult> => {
    const env = environment();
    const sync = env.config.syncs[event.syncId];
    if (!sync) {
      env.metrics.count(METRICS.planFailures, 1, { sync: event.syncId });
      throw new ConnectorConfigError(`no sync named ${event.syncId} in the deployed config`);
    }
    const model = env.config.models[sync.model]!;
    let source: SourceConnection | undefined;
    try {
      // Inside the try: a missing secret or a refused login is a plan failure like any other,
      // counted (PlanFailures, alarmed) and shown on the sync's runs.
      try {
        source = await connectSource(env.connectors, env.config, model.source, env.secrets, `backflow:${sync.id}`);
      } catch (error) {
        await recordFailedStart(
          env.state,
          sync.id,
          env.clock,
          `cannot connect to source ${model.source}: ${(error as Error).message}`,
        ).catch(() => {});
        throw error;
      }
      const outcome = await planSync(
        {
          sync,
          model,
          lane: sync.destination,
          batchSize: batchSizeOf(env.connectors, env.config, sync.destination),
          full: event.full,
          force: event.force,
          remainingMs: () => context.getRemainingTimeInMillis(),
          reserveMs: RESERVE_MS,
        },
        { state: env.state, queue: env.queue, clock: env.clock, metrics: env.metrics, source },
      );
      if (outcome.status === 'continue') {
        for (const notice of outcome.notices) env.logger.warn(notice, { syncId: sync.id });
        env.logger.info('plan continues in a fresh invocation', { syncId: sync.id, runId: outcome.runId });
        await env.continuePlan({ syncId: sync.id });
        return {
          syncId: sync.id,
          runId: outcome.runId,
          status: 'continued',
          counters: outcome.counters,
          notices: outcome.notices,
        };
      }
      for (const notice of outcome.notices) env.logger.warn(notice, { syncId: sync.id });
      env.logger.info('plan done', { syncId: sync.id, runId: outcome.run.runId, counters: outcome.run.counters });
      // RunsPlanned feeds the "no successful run in 3 × the schedule interval" alarm.
      env.metrics.count(METRICS.runsPlanned, 1, { sync: sync.id });
      if (sync.segment !== undefined) await emitSegmentMetrics(env, sync.id, sync.segment, outcome.run.counters);
      env.metrics.milliseconds(
        METRICS.runDuration,
        Date.parse(outcome.run.plannedAt ?? '') - Date.parse(outcome.run.startedAt),
        { sync: sync.id },
      );
      return {
        syncId: sync.id,
        runId: outcome.run.runId,
        status: 'planned',
        counters: outcome.run.counters,
        notices: outcome.notices,
      };
    } catch (error) {
      if (error instanceof RunStoppedError) {
        env.logger.warn('run stopped', { syncId: sync.id, reason: error.reason, message: error.message });
        env.metrics.count(METRICS.runsStopped, 1, { sync: sync.id });
        return { syncId: sync.id, status: 'stopped', reason: error.message };
      }
      env.logger.error('plan failed', {
        syncId: sync.id,
        error: (error as Error).message,
        errorName: (error as Error).name,
      });
      env.metrics.count(METRICS.planFailures, 1, { sync: sync.id });
      throw error;
    } finally {
      await source?.close();
    }
  };
}

/**
 * The plan function's Lambda handler over `connectors`. Each deployment's bundle entry, generated
 * by infra/bundles.ts, calls it with the runtimes of the sources its syncs read, and exports it
 * as `handler`.
 */
export function planLambdaHandler(connectors: ConnectorCatalogue) {
  return middy(createPlanHandler(() => awsEnvironment(connectors, continueInFreshInvocation))).use(
    injectLambdaContext(logger),
  );
}

/**
 * The segment's size when its sync was planned, and how far it moved since the sync's previous
 * planned run (percent of the previous size): the alarm on a sudden swing watches the latter.
 */
async function emitSegmentMetrics(
  env: Environment,
  syncId: string,
  segment: string,
  counters: { extracted: number; invalid: number },
): Promise<void> {
  const size = counters.extracted - counters.invalid;
  env.metrics.count(METRICS.segmentSize, size, { segment });
  // Newest first: the first is this run; the one before it is the last run that got as far.
  const [, ...earlier] = await env.state.listRuns(syncId, 10);
  const before = earlier.find((run) => run.plannedAt !== undefined && run.status !== 'stopped');
  if (!before) return;
  const was = before.counters.extracted - before.counters.invalid;
  const swing = was === 0 ? (size === 0 ? 0 : 100) : (Math.abs(size - was) / was) * 100;
  env.metrics.count(METRICS.segmentSwing, Math.round(swing), { segment });
}
