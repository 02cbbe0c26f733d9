import * as z from 'zod';
import { defineDestinationManifest } from '#connectors/sdk/destination';
import { baseUrlProblem } from './instances.ts';
import { brazeLimits } from './limits.ts';

/** The object Backflow writes: Braze user profiles. */
export const USERS = 'users';

/** Fields a sync may match on: the identifiers of an attributes object Backflow supports. */
export const MATCH_KEYS = ['external_id', 'email'] as const;
export type MatchKey = (typeof MATCH_KEYS)[number];

/** Membership objects: a subscription group by id (Braze: Audience > Subscriptions). */
export const SUBSCRIPTION_GROUP_PREFIX = 'subscription_group:';
/** Membership objects: a value in an array custom attribute (`array:<attribute>:<value>`). */
export const ARRAY_PREFIX = 'array:';

const options = z.strictObject({
  /**
   * The REST endpoint of the workspace's instance (https://rest.iad-01.braze.com, …): required,
   * because a key only works on its own instance. See docs/destinations/braze.md#instances.
   */
  base_url: z
    .url({
      protocol: /^https?$/,
      error: 'expected the REST endpoint of your Braze instance, e.g. https://rest.iad-01.braze.com',
    })
    .superRefine((value, ctx) => {
      const url = new URL(value);
      if (url.username !== '' || url.password !== '') {
        ctx.addIssue({ code: 'custom', message: 'credentials in the URL are not supported: use the api_key secret' });
      }
      const problem = baseUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  /** Secret: a REST API key with `users.track` (and `users.delete` for mirror, `custom_attributes.get` for fields). */
  api_key: z
    .string()
    .min(1)
    .regex(/^[\x21-\x7e]+$/, 'expected printable ASCII without spaces or line breaks (check for a trailing newline)'),
  /** Per attempt, including reading the answer. */
  timeout_ms: z.number().int().min(1000).max(120_000).default(30_000),
  /**
   * Subscription groups: after subscribing users, read their state back
   * (`/subscription/status/get`, needs `subscription.status.get`) so that an identifier no Braze
   * user has is reported rejected instead of ok. Default true; false saves that request.
   */
  verify_subscriptions: z.boolean().default(true),
});

/**
 * Braze user profiles: `POST /users/track` creates or updates them by `external_id` or `email`,
 * `POST /users/delete` removes them in mirror mode. The guide is docs/destinations/braze.md.
 *
 * Modes: `upsert` (Braze's default: a profile is created when none has the identifier), `update`
 * (`_update_existing_only: true`: Braze skips unknown users), `mirror` (upsert, and delete users
 * that left the model). Not `insert`: `/users/track` has no create-only switch, and looking users up
 * first (`/users/export/ids`, 250 requests a minute for new workspaces) would race other writers.
 */
export const brazeDestinationManifest = defineDestinationManifest({
  type: 'braze',
  title: 'Braze',
  optionsSchema: options,
  secretKeys: ['api_key'],
  modes: ['upsert', 'update', 'mirror'],
  limits: brazeLimits,
  objects: [
    {
      name: USERS,
      description: 'User profiles: standard profile fields and custom attributes',
      matchKeys: MATCH_KEYS,
      onDelete: 'delete',
    },
    {
      name: 'subscription_group:<id>',
      description:
        'Membership: the users subscribed to a subscription group (enter = subscribed, leave = unsubscribed); mirror mode',
      matchKeys: MATCH_KEYS,
      // A user who left is unsubscribed from the group, never deleted.
      onDelete: 'remove',
    },
    {
      name: 'array:<attribute>:<value>',
      description:
        'Membership: the users whose array custom attribute holds the value (enter = added, leave = removed); mirror mode',
      matchKeys: MATCH_KEYS,
      // The value is removed from the user's array; the user stays.
      onDelete: 'remove',
    },
  ],
  // Custom attributes take ISO 8601 dates and times, booleans, numbers, arrays and nested objects as
  // JSON; phone numbers are best in E.164.
  // https://www.braze.com/docs/api/objects_filters/user_attributes_object/#custom-attribute-data-types
  formats: {
    date: 'iso',
    timestamp: 'iso',
    boolean: 'boolean',
    array: 'json',
    object: 'json',
    number: 'number',
    phone: 'e164',
  },
});
