import type { DestinationLimits } from '#connectors/sdk/destination';

/**
 * A webhook is the user's own endpoint, so there is no vendor page: these are Backflow's defaults,
 * documented in docs/destinations/webhook.md#limits. A lane's `batch_size`, `requests_per_second`
 * and `concurrency` override them to fit the receiver.
 */
const DOC = 'docs/destinations/webhook.md#limits';

export const webhookLimits: DestinationLimits = {
  batchSize: { value: 100, doc: DOC },
  requestsPerSecond: { value: 10, doc: DOC },
  concurrency: { value: 4, doc: DOC },
};
