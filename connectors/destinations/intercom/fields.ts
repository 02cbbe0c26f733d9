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

/** Intercom's `data_type` → Backflow's normalized type. Intercom dates are Unix timestamps. */
const TYPES: Readonly<Record<string, FieldType>> = {
  string: 'string',
  integer: 'integer',
  float: 'number',
  boolean: 'boolean',
  date: 'timestamp',
};

/**
 * The contact fields a sync may map to, from `GET /data_attributes?model=contact`: the attributes
 * the API may write (`api_writable`), custom ones by their short name. `external_id` and `email`
 * are always listed, as the match keys.
 */
export function contactFields(attributes: readonly DataAttribute[]): FieldInfo[] {
  const fields = new Map<string, FieldInfo>();
  for (const attribute of attributes) {
    if (attribute.archived || attribute.api_writable !== true) continue;
    if (attribute.model !== undefined && attribute.model !== 'contact') continue;
    const custom = attribute.custom === true;
    const name = custom ? attribute.name : attribute.full_name || attribute.name;
    if (!custom && name.includes('.')) continue;
    fields.set(name, {
      name,
      type: TYPES[attribute.data_type] ?? 'string',
      required: false,
      kind: custom ? 'custom' : 'known',
      matchable: (MATCH_FIELDS as readonly string[]).includes(name),
    });
  }
  for (const name of MATCH_FIELDS) {
    if (!fields.has(name)) fields.set(name, { name, type: 'string', required: false, kind: 'known', matchable: true });
  }
  return [...fields.values()];
}
