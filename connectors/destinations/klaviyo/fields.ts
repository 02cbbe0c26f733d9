import type { FieldInfo } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import type { FieldType } from '#connectors/sdk/types';
import { MATCH_KEYS, PROFILES } from './manifest.ts';

/**
 * Field discovery of Klaviyo profiles: the standard profile attributes Klaviyo documents (the
 * profile object of Bulk Import Profiles and Create or Update Profile), `location.*` nested in the
 * profile's `location`. Custom properties are free-form — Klaviyo has no API that lists them, and
 * a property that does not exist is created by the first import that sets it — so they are
 * accepted by name as `properties.<name>` and typed from the model's column.
 * https://developers.klaviyo.com/en/v2025-01-15/reference/create_or_update_profile
 */

export function objectOf(object: string): void {
  if (object !== PROFILES) {
    throw new ConnectorConfigError(`Klaviyo has no object "${object}": Backflow writes Klaviyo profiles as "profiles"`);
  }
}

const known = (name: string, type: FieldType = 'string'): FieldInfo => ({
  name,
  type,
  required: false,
  kind: 'known',
  matchable: (MATCH_KEYS as readonly string[]).includes(name),
});

/** Top-level attributes of a profile (identifiers and the standard ones). */
export const TOP_LEVEL = [
  'email',
  'phone_number',
  'external_id',
  'first_name',
  'last_name',
  'organization',
  'title',
  'image',
];

/** `location` attributes; latitude and longitude are numbers, the rest strings. */
export const LOCATION: Readonly<Record<string, FieldType>> = {
  address1: 'string',
  address2: 'string',
  city: 'string',
  country: 'string',
  region: 'string',
  zip: 'string',
  timezone: 'string',
  ip: 'string',
  latitude: 'number',
  longitude: 'number',
};

export const PROFILE_FIELDS: readonly FieldInfo[] = [
  ...TOP_LEVEL.map((name) => known(name)),
  ...Object.entries(LOCATION).map(([name, type]) => known(`location.${name}`, type)),
];

export const PROPERTIES_PREFIX = 'properties.';
export const LOCATION_PREFIX = 'location.';

/** Where a destination field goes in a profile, or undefined when Klaviyo has no such field. */
export function placeOf(
  field: string,
):
  | { readonly in: 'top'; readonly name: string }
  | { readonly in: 'location' | 'properties'; readonly name: string }
  | undefined {
  if (TOP_LEVEL.includes(field)) return { in: 'top', name: field };
  if (field.startsWith(LOCATION_PREFIX) && field.slice(LOCATION_PREFIX.length) in LOCATION)
    return { in: 'location', name: field.slice(LOCATION_PREFIX.length) };
  if (field.startsWith(PROPERTIES_PREFIX) && field.length > PROPERTIES_PREFIX.length)
    return { in: 'properties', name: field.slice(PROPERTIES_PREFIX.length) };
  return undefined;
}

export async function discoverFields(object: string): Promise<FieldInfo[]> {
  objectOf(object);
  return [...PROFILE_FIELDS];
}
