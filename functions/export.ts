import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { ConnectorCatalogue } from '#connectors/sdk/catalogue';
import { ConnectorConfigError } from '#core/errors';
import { deadLetterUnfinished, exportMessage } from '#core/exporter';
import { decodeMessage } from '#core/lane-message';
import { METRICS } from '#core/metrics';
import { awsEnvironment, logger } from './shared/aws-environment.ts';
import type { Environment, PlanEvent } from './shared/environment.ts';

/**
 * The export function of one lane (`lane` = destination name). The engine handles every failure a
 * destination causes (retries within the budget, then the dead-letter queue, counted on the run),
 * so a message ends in `batchItemFailures` only when the state store or the queue itself failed:
 * then SQS redelivers it after the visibility timeout, and dead-letters it after the lane's max
 * receives.
 */
export function createExportHandler(environment: () => Environment, lane: () => string) {
  return async (event: SQSEvent, context?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<SQSBatchResponse> => {
    const env = environment();
    const laneName = lane();
    const destination = env.config.destinations[laneName];
    const retryBudgetMs = (destination?.lane.retry_budget_seconds ?? 1800) * 1000;
    // Claims last as long as this invocation can: when it is gone, another may deliver the keys.
    const claimLeaseMs = context ? context.getRemainingTimeInMillis() + CLAIM_MARGIN_MS : undefined;
    const processor = new BatchProcessor(EventType.SQS);
    const handleRecord = async (record: SQSRecord) => {
      const message = decodeMessage(record.body);
      const receives = Number(record.attributes.ApproximateReceiveCount ?? '1');
      const maxReceives = destination?.lane.max_receives ?? 5;
      if (maxReceives > 1 && receives >= maxReceives) {
        // Every earlier receive ended without completing the message (the invocation died, timed
        // out, or the state store failed). Rather than let SQS move it on this last receive where
        // nothing counts it, dead-letter it here, counted on its run.
        await deadLetterUnfinished(
          message,
          `its export did not complete in ${receives - 1} receive(s) (the function crashed, timed out, or the state table failed): see the export function's logs`,
          { lane: laneName },
          env,
        );
        return;
      }
      try {
        const connection = await env.destination(laneName);
        await exportMessage(
          message,
          { lane: laneName, retryBudgetMs, claimLeaseMs },
          { ...env, destination: connection },
        );
      } catch (error) {
        env.logger.warn('message failed; SQS will redeliver it', {
          lane: laneName,
          syncId: message.syncId,
          runId: message.runId,
          records: message.records.length,
          receives,
          error: (error as Error).message,
          errorName: (error as Error).name,
        });
        env.metrics.count(METRICS.exportErrors, 1, { lane: laneName });
        // Back off as receives add up, so a state store outage is not hammered.
        await env.queue
          .retryLater(laneName, record.receiptHandle, Math.min(900, 2 ** (receives - 1)))
          .catch((e: unknown) => env.logger.warn('could not delay the retry', { error: (e as Error).message }));
        throw error;
      }
    };
    return processPartialResponse(event, handleRecord, processor, { throwOnFullBatchFailure: false });
  };
}

/**
 * The continuePlan of an export function's Environment. An export function never plans: only the
 * plan function continues a run, and it alone bundles the Lambda client to do so.
 */
async function refuseToPlan(event: PlanEvent): Promise<void> {
  throw new Error(
    `an export function was asked to continue the plan of sync ${event.syncId}: only the plan function does`,
  );
}

/** Added to the invocation's remaining time: a claim outlives its holder by this much. */
const CLAIM_MARGIN_MS = 5_000;

/**
 * A lane's export function's Lambda handler over `connectors`. Each lane's bundle entry, generated
 * by infra/bundles.ts, calls it with the runtime of the lane's destination alone, and exports it
 * as `handler`.
 */
export function exportLambdaHandler(connectors: ConnectorCatalogue) {
  return middy(
    createExportHandler(
      () => awsEnvironment(connectors, refuseToPlan),
      () => {
        const lane = process.env.BACKFLOW_LANE;
        if (!lane) throw new ConnectorConfigError('environment variable BACKFLOW_LANE is not set on this function');
        return lane;
      },
    ),
  ).use(injectLambdaContext(logger));
}
