import type { FieldInfo } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { FieldType } from '#connectors/sdk/types';
import type { CustomAttribute } from './client.ts';
import { USERS } from './manifest.ts';

/**
 * Field discovery of Braze users: the user profile fields Braze documents, then the workspace's
 * custom attributes from `GET /custom_attributes`. A custom attribute that does not exist yet is
 * created by the first `/users/track` that sets it, so an unknown field is not an error in Braze.
 * https://www.braze.com/docs/api/objects_filters/user_attributes_object/#braze-user-profile-fields
 */

/** Braze writes one object, its user profiles. */
export function objectOf(object: string): void {
  if (object !== USERS) {
    throw new ConnectorConfigError(`Braze has no object "${object}": Backflow writes Braze user profiles as "users"`);
  }
}

const profile = (name: string, type: FieldType, matchable = false): FieldInfo => ({
  name,
  type,
  required: false,
  kind: 'known',
  matchable,
});

/** The documented user profile fields (lower case: Braze's names are case sensitive). */
export const PROFILE_FIELDS: readonly FieldInfo[] = [
  profile('external_id', 'string', true),
  profile('email', 'string', true),
  profile('phone', 'string'),
  profile('first_name', 'string'),
  profile('last_name', 'string'),
  profile('gender', 'string'),
  profile('dob', 'date'),
  profile('country', 'string'),
  profile('home_city', 'string'),
  profile('language', 'string'),
  profile('time_zone', 'string'),
  profile('email_subscribe', 'string'),
  profile('push_subscribe', 'string'),
  profile('email_open_tracking_disabled', 'boolean'),
  profile('email_click_tracking_disabled', 'boolean'),
  profile('date_of_first_session', 'timestamp'),
  profile('date_of_last_session', 'timestamp'),
  profile('marked_email_as_spam_at', 'timestamp'),
  profile('current_location', 'json'),
  profile('subscription_groups', 'json'),
  profile('push_tokens', 'json'),
];

/**
 * Keys of an attributes object that are not attributes: identifiers and flags Backflow sets itself
 * or that would change which profile is written. A mapping cannot target them.
 */
export const RESERVED_KEYS = new Set(['_update_existing_only', 'push_token_import', 'braze_id', 'user_alias']);

/**
 * Braze's custom attribute `data_type` (as `GET /custom_attributes` spells it: "String", "Number",
 * …) as a Backflow field type, from the documented custom attribute data types: Boolean, Number,
 * String, Time ("date and time in a standard format (ISO 8601)"), Array, Object, Array of objects.
 * https://www.braze.com/docs/user_guide/data/activation/custom_data/data_types/
 * A Time attribute is a `timestamp`: a model date is sent as its midnight UTC in ISO 8601, a model
 * timestamp as ISO 8601 UTC; a date or timestamp into a String attribute stays ISO 8601 text.
 * Inferred: a type this table does not know is taken as `json` (the value is sent as it is).
 */
const DATA_TYPES: Readonly<Record<string, FieldType>> = {
  string: 'string',
  number: 'number',
  boolean: 'boolean',
  time: 'timestamp',
  array: 'json',
  object: 'json',
  'object array': 'json',
  'array of objects': 'json',
};

/** Custom attributes whose data Braze drops ("Blocklisted") are not offered as fields. */
export function customAttributeFields(attributes: readonly CustomAttribute[]): FieldInfo[] {
  const known = new Set(PROFILE_FIELDS.map((f) => f.name));
  const fields = new Map<string, FieldInfo>();
  for (const attribute of attributes) {
    if (known.has(attribute.name) || RESERVED_KEYS.has(attribute.name)) continue;
    if (/^blocklisted$/i.test(attribute.status ?? '')) continue;
    fields.set(attribute.name, {
      name: attribute.name,
      type: DATA_TYPES[attribute.data_type.toLowerCase()] ?? 'json',
      required: false,
      kind: 'custom',
      matchable: false,
    });
  }
  return [...fields.values()].sort((a, b) => a.name.localeCompare(b.name));
}
