import type { FieldInfo } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import { PEOPLE } from './manifest.ts';

/**
 * Field discovery of Customer.io people. The Track API has no attribute schema: an identify takes
 * any attribute name ("You can pass properties that aren't defined below to set custom
 * attributes", https://docs.customer.io/integrations/api/track/#tag/track_v2/operation/batch) and
 * stores any JSON value. So the fields are the two identifiers a sync matches on, and nothing else:
 * every other mapped name is accepted as an attribute, its value formatted from the model column's
 * type (timestamps as Unix seconds, see the manifest's formats). No request is made.
 */

/** Backflow writes one object, people. */
export function objectOf(object: string): void {
  if (object !== PEOPLE) {
    throw new ConnectorConfigError(
      `Customer.io has no object "${object}": Backflow writes Customer.io people as "people"`,
    );
  }
}

/** The identifiers: text, matchable. */
export const IDENTIFIER_FIELDS: readonly FieldInfo[] = [
  { name: 'id', type: 'string', required: false, kind: 'known', matchable: true },
  { name: 'email', type: 'string', required: false, kind: 'known', matchable: true },
];

/**
 * Keys of `attributes` that are not attributes: `_update` switches identify to update-only (Backflow
 * sets it for mode update), `cio_id` is Customer.io's own identifier. A mapping cannot target them.
 */
export const RESERVED_ATTRIBUTES = new Set(['_update', 'cio_id']);
