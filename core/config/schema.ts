import * as z from 'zod';
import { HASHABLE_IDENTIFIER_KINDS } from '#connectors/sdk/identifiers';
import { SYNC_MODES } from '#connectors/sdk/types';
import { segmentSchema } from '../segments.ts';
import { parseSchedule } from './schedule.ts';

/** A name used as a map key in backflow.yml (sync ids end up in DynamoDB keys and queue names). */
const name = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected letters, digits, "_" or "-" (at most 64)');

/**
 * An EventBridge Scheduler `rate(…)` or `cron(…)`, checked field by field by the parser the
 * infrastructure uses too (core/config/schedule.ts cites AWS's rules).
 */
export const scheduleSchema = z.string().superRefine((expression, ctx) => {
  const parsed = parseSchedule(expression);
  if (!parsed.ok) for (const message of parsed.errors) ctx.addIssue({ code: 'custom', message });
});

/** An IANA time zone name, as EventBridge Scheduler takes it. */
const timeZoneSchema = z.string().refine((zone) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}, 'expected an IANA time zone such as Europe/Paris or America/New_York');

const connectorBase = z.looseObject({
  type: z.string(),
  /** Name of a secret whose JSON is merged into the options. */
  secret: name.optional(),
});

export const modelSchema = z.strictObject({
  source: z.string(),
  sql: z.string().min(1),
  primary_key: z.string().min(1),
  cursor: z.string().min(1).optional(),
  page_size: z.number().int().min(1).max(1_000_000).default(10_000),
  description: z.string().optional(),
});

export const nullPolicySchema = z.enum(['skip', 'sync']);

/** The identifier kinds a `hash:` mapping normalises (Meta's and Google's, connectors/sdk/identifiers.ts). */
const IDENTIFIER_KINDS = HASHABLE_IDENTIFIER_KINDS;

/**
 * A column sent as the SHA-256 of its value, normalised first as the destination's vendor requires
 * for this kind of identifier (connectors/sdk/identifiers.ts): the raw value never leaves the
 * planner — not in queues, state, reports or requests.
 */
export const hashedColumnSchema = z.strictObject({
  column: z.string().min(1),
  hash: z.literal('sha256'),
  normalize: z.enum(IDENTIFIER_KINDS),
  /** Whose normalisation rules: `meta` or `google` (default: the destination's, else meta). */
  rules: z.enum(['meta', 'google']).optional(),
});

export const mappingSchema = z.union([
  z.string().min(1),
  z
    .strictObject({
      column: z.string().min(1),
      nulls: nullPolicySchema.default('skip'),
      hash: z.literal('sha256').optional(),
      normalize: z.enum(IDENTIFIER_KINDS).optional(),
      rules: z.enum(['meta', 'google']).optional(),
    })
    .refine((m) => (m.hash === undefined) === (m.normalize === undefined), {
      message:
        '`hash: sha256` and `normalize: <kind>` go together (e.g. { column: email, hash: sha256, normalize: email })',
    }),
  z.strictObject({ value: z.union([z.string(), z.number(), z.boolean(), z.null()]) }),
]);

export const guardrailsSchema = z.strictObject({
  /**
   * Stop a mirror run that would delete (for a membership sync: remove from the list) more than
   * this share of the synced records, before anything is sent.
   */
  max_delete_ratio: z.number().min(0).max(1).default(0.2),
});

export const syncSchema = z.strictObject({
  /** The model whose rows the sync sends; or `segment`. */
  model: z.string().optional(),
  /** A segment: the sync sends its members (with `mode: mirror`, keeps a list equal to it). */
  segment: z.string().optional(),
  destination: z.string(),
  object: z.string().min(1),
  mode: z.enum(SYNC_MODES as [string, ...string[]]).default('upsert'),
  match: z
    .record(z.string(), z.union([z.string(), hashedColumnSchema]))
    .refine((m) => Object.keys(m).length === 1, 'expected exactly one `destination_field: model_column` pair'),
  mappings: z.record(z.string(), mappingSchema).default({}),
  schedule: scheduleSchema.optional(),
  full_resync: scheduleSchema.optional(),
  /** Time zone of `schedule` and `full_resync` (default UTC). */
  timezone: timeZoneSchema.optional(),
  guardrails: guardrailsSchema.default({ max_delete_ratio: 0.2 }),
  /**
   * Lease of the sync's plan lock, in seconds: the plan renews it while it works, so a plan whose
   * process died (killed, timed out) blocks the next run for at most this long.
   */
  lock_lease_seconds: z.number().int().min(10).max(3600).default(90),
  enabled: z.boolean().default(true),
});

export const laneSchema = z.strictObject({
  /**
   * SQS receives before SQS itself dead-letters a message: a backstop for messages whose export
   * invocation keeps dying (crash, timeout). Failures Backflow sees are governed by the retry budget.
   */
  max_receives: z.number().int().min(1).max(1000).default(5),
  /**
   * How long records may keep failing (destination down, 5xx, auth refused, asked to retry) before
   * they are dead-lettered, in seconds. Retries back off exponentially up to 15 minutes apart.
   */
  retry_budget_seconds: z
    .number()
    .int()
    .min(0)
    .max(14 * 24 * 3600)
    .default(1800),
  /** Records per destination call; defaults to the connector's documented batch size. */
  batch_size: z.number().int().min(1).optional(),
  requests_per_second: z.number().positive().optional(),
  concurrency: z.number().int().min(1).max(1000).optional(),
});

export const monitoringSchema = z.strictObject({
  /** Subscribed to every alarm of the deployed stack. */
  email: z.email().optional(),
});

export const configSchema = z.strictObject({
  version: z.literal(1),
  monitoring: monitoringSchema.optional(),
  sources: z.record(name, connectorBase),
  models: z.record(name, modelSchema),
  segments: z.record(name, segmentSchema).default({}),
  destinations: z.record(name, connectorBase.extend({ lane: laneSchema.optional() })),
  syncs: z.record(name, syncSchema),
});

export type RawConfig = z.infer<typeof configSchema>;
export type ModelConfig = z.infer<typeof modelSchema>;
export type SyncConfig = Omit<z.infer<typeof syncSchema>, 'model'> & { readonly model: string };
export type MappingConfig = z.infer<typeof mappingSchema>;
export type LaneConfig = z.infer<typeof laneSchema>;
export type MonitoringConfig = z.infer<typeof monitoringSchema>;
