import type { FieldInfo } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import { MATCH_KEY, PROFILES } from './manifest.ts';

/**
 * The reserved profile properties
 * (https://docs.mixpanel.com/docs/data-structure/property-reference/reserved-properties#reserved-profile-properties):
 * `$distinct_id` identifies the profile; `$name`, `$first_name`, `$last_name`, `$email`, `$phone`
 * (international numbers with a leading "+"), `$avatar` (an image URL) and `$created` ("The time
 * that the profile was created. Note that this is not auto-populated.").
 *
 * Any other name is a custom property, created on the first `$set`: Mixpanel has no schema to
 * declare one first, so a mapping may name any property (`backflow validate` warns that it is not
 * listed, and the write sends it).
 */
export const PROFILE_FIELDS: readonly FieldInfo[] = [
  { name: MATCH_KEY, type: 'string', required: true, kind: 'known', matchable: true },
  { name: '$email', type: 'string', required: false, kind: 'known', matchable: false },
  { name: '$name', type: 'string', required: false, kind: 'known', matchable: false },
  { name: '$first_name', type: 'string', required: false, kind: 'known', matchable: false },
  { name: '$last_name', type: 'string', required: false, kind: 'known', matchable: false },
  { name: '$phone', type: 'string', required: false, kind: 'known', matchable: false },
  { name: '$avatar', type: 'string', required: false, kind: 'known', matchable: false },
  { name: '$created', type: 'timestamp', required: false, kind: 'known', matchable: false },
];

/**
 * Keys of an update object that are not properties: a mapping naming one would change which
 * profile is written or how (`$token`, `$distinct_id`, `$ignore_time`, `$ignore_alias`, `$ip`, and
 * the operations). https://docs.mixpanel.com/reference/profile-batch-update
 */
export const CONTROL_KEYS = new Set([
  '$token',
  MATCH_KEY,
  '$ignore_time',
  '$ignore_alias',
  '$ip',
  '$time',
  '$set',
  '$set_once',
  '$add',
  '$union',
  '$append',
  '$remove',
  '$unset',
  '$delete',
]);

/** Checks the object name: Backflow writes `profiles` only. */
export function objectOf(object: string): typeof PROFILES {
  if (object === PROFILES) return PROFILES;
  throw new ConnectorConfigError(
    `Mixpanel has no object "${object}": Backflow writes user profiles, object "${PROFILES}"`,
  );
}
