import type { Logger } from '@aws-lambda-powertools/logger';
import type { ConnectorCatalogue } from '#connectors/sdk/catalogue';
import type { DestinationConnection } from '#connectors/sdk/destination';
import type { Config } from '#core/config/load';
import type { Pacer } from '#core/pacing';
import type { Clock, LaneQueue, Metrics, Secrets, StateStore } from '#core/ports';

/** A plan invocation's payload: from EventBridge Scheduler, the CLI, or the plan function itself. */
export interface PlanEvent {
  readonly syncId: string;
  readonly full?: boolean;
  readonly force?: boolean;
}

/**
 * Everything a handler needs, built once per container (AWS) or per local runtime. The handlers
 * never look at process.env themselves, so the local runtime can run them unchanged.
 */
export interface Environment {
  /** The connectors this program holds: on AWS, the runtimes bundled into the function. */
  readonly connectors: ConnectorCatalogue;
  readonly config: Config;
  readonly state: StateStore;
  readonly queue: LaneQueue;
  readonly secrets: Secrets;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Token buckets of the lanes, shared by every exporter of a lane. */
  readonly pacer: Pacer;
  /** Starts a fresh plan invocation to carry on a run that ran short of time. */
  continuePlan(event: PlanEvent): Promise<void>;
  /** The destination connection of a lane, opened once and reused across invocations. */
  destination(lane: string): Promise<DestinationConnection>;
}
