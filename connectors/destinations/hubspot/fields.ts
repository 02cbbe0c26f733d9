import type { FieldInfo } from '#connectors/sdk/destination';
import type { FieldType } from '#connectors/sdk/types';
import type { HubSpotClient, HubSpotProperty } from './client.ts';

/**
 * Field discovery through the properties API, and which properties can identify a record.
 * https://developers.hubspot.com/docs/api-reference/legacy/crm/properties/get-properties
 */

/** `contacts` by name or by objectTypeId. */
export function isContacts(object: string): boolean {
  return object === 'contacts' || object === '0-1';
}

/**
 * Whether a property can be the `idProperty` of an upsert, read or update: a contact's `email`,
 * or a property whose values HubSpot keeps unique.
 * https://developers.hubspot.com/docs/api-reference/latest/crm/objects/custom-objects/batch/upsert-custom-objects
 */
export function isIdProperty(object: string, property: Pick<HubSpotProperty, 'name' | 'hasUniqueValue'>): boolean {
  return property.hasUniqueValue === true || (isContacts(object) && property.name === 'email');
}

/** A property Backflow can write: not calculated, not read-only, not archived. */
export function isWritable(property: HubSpotProperty): boolean {
  return !property.calculated && !property.archived && property.modificationMetadata?.readOnlyValue !== true;
}

/**
 * The normalized type of a property: the SDK formats each value for it (formats.ts, withFormats),
 * so it must be exact. Multiple-checkbox enumerations take a list (sent `;`-joined); `date` takes a
 * date (sent as midnight UTC in epoch ms: "Date properties … must be set to midnight UTC"),
 * `datetime` a timestamp (epoch ms); `string`, `phone_number` and other enumerations take text, so
 * a date column arrives as ISO 8601 text, not epoch ms.
 * https://developers.hubspot.com/docs/api/crm/properties
 * https://developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis
 */
export function fieldTypeOf(property: Pick<HubSpotProperty, 'type' | 'fieldType'>): FieldType {
  switch (property.type) {
    case 'number':
      return 'number';
    case 'bool':
      return 'boolean';
    case 'date':
      return 'date';
    case 'datetime':
      return 'timestamp';
    case 'enumeration':
      return property.fieldType === 'checkbox' ? 'json' : 'string';
    default:
      return 'string';
  }
}

/** The writable properties of an object as fields; HubSpot requires none of them on create. */
export async function discoverFields(client: HubSpotClient, object: string): Promise<FieldInfo[]> {
  const properties = await client.properties(object);
  return properties.filter(isWritable).map(
    (property): FieldInfo => ({
      name: property.name,
      type: fieldTypeOf(property),
      required: false,
      kind: property.hubspotDefined === true ? 'known' : 'custom',
      matchable: isIdProperty(object, property),
    }),
  );
}
