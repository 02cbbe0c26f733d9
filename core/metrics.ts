/**
 * Every CloudWatch metric Backflow emits (namespace `Backflow`), in one list: the engine and the
 * handlers emit these names, and `infra/` builds its dashboards and alarms from the same list,
 * so a renamed metric cannot leave an alarm watching nothing. Dimensions: `sync` or `lane`.
 */
export const METRICS = {
  recordsExtracted: 'RecordsExtracted',
  recordsInvalid: 'RecordsInvalid',
  recordsUnchanged: 'RecordsUnchanged',
  recordsQueued: 'RecordsQueued',
  recordsCreated: 'RecordsCreated',
  recordsUpdated: 'RecordsUpdated',
  recordsDeleted: 'RecordsDeleted',
  recordsRejected: 'RecordsRejected',
  recordsRetried: 'RecordsRetried',
  recordsDeadLettered: 'RecordsDeadLettered',
  runsPlanned: 'RunsPlanned',
  runsStopped: 'RunsStopped',
  runDuration: 'RunDuration',
  planFailures: 'PlanFailures',
  exportErrors: 'ExportErrors',
  destinationThrottles: 'DestinationThrottles',
  /**
   * Age of the records of a lane message when the exporter handles it (since they were queued),
   * given back or not: it grows while a lane is stuck paced or throttled, which the queue's
   * oldest-message age cannot show (a given-back message is a new message).
   */
  recordAge: 'RecordAgeSeconds',
  /** Members of a segment when a sync of it was planned (rows read less invalid ones). */
  segmentSize: 'SegmentSize',
  /** How much the segment's size moved since the sync's previous run, in percent of it. */
  segmentSwing: 'SegmentSwingPercent',
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** The dimension each metric carries. */
export const METRIC_DIMENSION: Readonly<Record<MetricName, 'sync' | 'lane' | 'segment'>> = {
  RecordsExtracted: 'sync',
  RecordsInvalid: 'sync',
  RecordsUnchanged: 'sync',
  RecordsQueued: 'sync',
  RecordsCreated: 'sync',
  RecordsUpdated: 'sync',
  RecordsDeleted: 'sync',
  RecordsRejected: 'sync',
  RecordsRetried: 'sync',
  RecordsDeadLettered: 'sync',
  RunsPlanned: 'sync',
  RunsStopped: 'sync',
  RunDuration: 'sync',
  PlanFailures: 'sync',
  ExportErrors: 'lane',
  DestinationThrottles: 'lane',
  RecordAgeSeconds: 'lane',
  SegmentSize: 'segment',
  SegmentSwingPercent: 'segment',
};
