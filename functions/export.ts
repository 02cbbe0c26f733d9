import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { getDestination } from '#connectors/registry';
import { ConnectorConfigError, RateLimitedError } from '#core/errors';
import { exportMessage } from '#core/exporter';
import { decodeMessage } from '#core/lane-message';
import { awsEnvironment, logger } from './shared/aws-environment.ts';
import type { Environment } from './shared/environment.ts';

/** Backoff for a message whose whole batch failed: doubles with each receive, capped at 15 min. */
export function failureDelaySeconds(receiveCount: number, retryAfterMs?: number): number {
  const backoff = Math.min(900, 2 ** Math.max(0, receiveCount - 1));
  return retryAfterMs === undefined ? backoff : Math.min(900, Math.max(1, Math.ceil(retryAfterMs / 1000)));
}

/**
 * The export function of one lane (`lane` = destination name): delivers each SQS message and
 * reports the messages that failed as a whole in `batchItemFailures`, so SQS retries only those
 * and dead-letters them after the lane's max receives.
 */
export function createExportHandler(environment: () => Environment, lane: () => string) {
  return async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const env = environment();
    const laneName = lane();
    const destination = env.config.destinations[laneName];
    const maxAttempts = (destination?.lane.max_receives ?? 5) + 3;
    const requestsPerSecond =
      destination?.lane.requests_per_second ?? getDestination(destination?.type ?? '')?.limits.requestsPerSecond?.value;
    const processor = new BatchProcessor(EventType.SQS);
    const handleRecord = async (record: SQSRecord) => {
      const message = decodeMessage(record.body);
      try {
        const connection = await env.destination(laneName);
        await exportMessage(
          message,
          { lane: laneName, maxAttempts, requestsPerSecond },
          { ...env, destination: connection },
        );
      } catch (error) {
        const receives = Number(record.attributes.ApproximateReceiveCount ?? '1');
        const retryAfter = error instanceof RateLimitedError ? error.retryAfterMs : undefined;
        env.logger.warn('batch failed; SQS will redeliver it', {
          lane: laneName,
          syncId: message.syncId,
          runId: message.runId,
          records: message.records.length,
          receives,
          error: (error as Error).message,
          errorName: (error as Error).name,
        });
        env.metrics.count(error instanceof RateLimitedError ? 'DestinationThrottles' : 'ExportErrors', 1, {
          lane: laneName,
        });
        // The run shows the last whole-batch error, so `backflow run` and `status` can say why.
        await env.state
          .updateRun(message.syncId, message.runId, { error: `${(error as Error).name}: ${(error as Error).message}` })
          .catch(() => {});
        await env.queue
          .retryLater(laneName, record.receiptHandle, failureDelaySeconds(receives, retryAfter))
          .catch((e: unknown) => env.logger.warn('could not delay the retry', { error: (e as Error).message }));
        throw error;
      }
    };
    return processPartialResponse(event, handleRecord, processor, { throwOnFullBatchFailure: false });
  };
}

export const handler = middy(
  createExportHandler(awsEnvironment, () => {
    const lane = process.env.BACKFLOW_LANE;
    if (!lane) throw new ConnectorConfigError('environment variable BACKFLOW_LANE is not set on this function');
    return lane;
  }),
).use(injectLambdaContext(logger));
