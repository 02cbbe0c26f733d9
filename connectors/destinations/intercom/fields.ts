import type { FieldInfo } from '#connectors/sdk/destination';
import type { FieldType } from '#connectors/sdk/types';
import type { DataAttribute } from './client.ts';
import { MATCH_FIELDS } from './manifest.ts';

/**
 * Writable top-level attributes of `POST /contacts` and `PUT /contacts/{id}`; every other mapped
 * field is a custom data attribute and goes under `custom_attributes`.
 * https://developers.intercom.com/docs/references/rest-api/api.intercom.io/contacts/createcontact
 */
export const STANDARD_FIELDS: ReadonlySet<string> = new Set([
  'role',
  'external_id',
  'email',
  'phone',
  'name',
  'avatar',
  'signed_up_at',
  'last_seen_at',
  'owner_id',
  'unsubscribed_from_emails',
]);

/** A mapped field may also name a custom attribute by its full name: `custom_attributes.plan`. */
export const CUSTOM_PREFIX = 'custom_attributes.';

/**
 * Intercom's `data_type` (string, integer, float, boolean, date:
 * https://developers.intercom.com/docs/references/2.11/rest-api/api.intercom.io/data-attributes)
 * → Backflow's normalized type. A `date` attribute holds an instant, not a calendar day: "All
 * temporal fields in the API are encoded as Unix timestamps in seconds and are by definition always
 * treated as UTC" (https://developers.intercom.com/docs/build-an-integration/learn-more/object-model),
 * and `signed_up_at` is "Date (Unix timestamp in seconds)" on create-a-contact. So it is a
 * `timestamp`, and the manifest's `timestamp: 'epoch-s'` format sends it as Unix seconds: a
 * timestamp column as its instant, a date column as its midnight UTC (the SDK's conversion).
 */
export const TYPES: Readonly<Record<string, FieldType>> = {
  string: 'string',
  integer: 'integer',
  float: 'number',
  boolean: 'boolean',
  date: 'timestamp',
};

/**
 * The contact fields a sync may map to, from `GET /data_attributes?model=contact`: the attributes
 * the API may write (`api_writable`), custom ones by their short name and by their full name
 * (`custom_attributes.plan`), both of which a mapping may use — so the SDK knows the type of
 * either. `external_id` and `email` are always listed, as the match keys.
 */
export function contactFields(attributes: readonly DataAttribute[]): FieldInfo[] {
  const fields = new Map<string, FieldInfo>();
  for (const attribute of attributes) {
    if (attribute.archived || attribute.api_writable !== true) continue;
    if (attribute.model !== undefined && attribute.model !== 'contact') continue;
    const custom = attribute.custom === true;
    const name = custom ? attribute.name : attribute.full_name || attribute.name;
    if (!custom && name.includes('.')) continue;
    const type = TYPES[attribute.data_type] ?? 'string';
    fields.set(name, {
      name,
      type,
      required: false,
      kind: custom ? 'custom' : 'known',
      matchable: (MATCH_FIELDS as readonly string[]).includes(name),
    });
    if (custom) {
      const fullName = `${CUSTOM_PREFIX}${attribute.name}`;
      fields.set(fullName, { name: fullName, type, required: false, kind: 'custom', matchable: false });
    }
  }
  for (const name of MATCH_FIELDS) {
    if (!fields.has(name)) fields.set(name, { name, type: 'string', required: false, kind: 'known', matchable: true });
  }
  return [...fields.values()];
}
