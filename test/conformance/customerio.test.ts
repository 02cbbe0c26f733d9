import { customerioDestination } from '#connectors/destinations/customerio/index';
import { TRACK_RATE_LIMIT } from '#connectors/destinations/customerio/limits';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startCustomerioFake } from '../fakes/customerio/server.ts';
import { conformance } from './suite.ts';

registerDestination(customerioDestination);

const SITE_ID = 'a1b2c3d4e5f6a7b8c9d0';
const API_KEY = 'cio-track-4f8e2a9c1d7b3e6f5a0c';

conformance({
  name: 'customerio',
  async start() {
    const fake = await startCustomerioFake({ siteId: SITE_ID, apiKey: API_KEY });
    return {
      destination: `    type: customerio\n    base_url: ${fake.url}\n    site_id: ${SITE_ID}`,
      secret: { api_key: API_KEY },
      fake,
    };
  },
  object: 'people',
  mapping: `    match: { id: id }
    mappings:
      email: email
      first_name: first_name
      plan: { column: plan, nulls: skip }
      lifetime_value: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.id),
  expected: (row) => ({
    email: row.email as JsonValue,
    first_name: row.first_name as JsonValue,
    plan: row.plan as JsonValue,
  }),
  planField: 'plan',
  ltvField: 'lifetime_value',
  // A null removes the attribute: the person no longer has it.
  isCleared: (value) => value === undefined,
  refused: {
    sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`,
    reason: /not a valid email address/,
  },
  mirror: true,
  isRemoved: (fake, match) => !fake.stored('people').has(match),
  lane: { requests_per_second: 5, batch_size: 10 },
  // The Track API's 100 requests per second (https://docs.customer.io/integrations/api/track/#section/Rate-Limits).
  documented: TRACK_RATE_LIMIT,
});
