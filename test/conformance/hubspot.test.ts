import { hubspotDestination } from '#connectors/destinations/hubspot/index';
import { DOCUMENTED_BURST } from '#connectors/destinations/hubspot/limits';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startHubspotFake } from '../fakes/hubspot/server.ts';
import { conformance } from './suite.ts';

const TOKEN = 'pat-na1-5c2e9a44-1f7b-4c1d-9b7e-2d3f4a5b6c7d';

registerDestination(hubspotDestination);

conformance({
  name: 'hubspot',
  async start() {
    const fake = await startHubspotFake({ token: TOKEN });
    return {
      destination: `    type: hubspot\n    base_url: ${fake.url}`,
      secret: { access_token: TOKEN },
      fake,
    };
  },
  object: 'contacts',
  mapping: `    match: { email: email }
    mappings:
      firstname: first_name
      plan: { column: plan, nulls: skip }
      lifetime_value: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.email),
  expected: (row) => ({
    email: row.email as JsonValue,
    firstname: row.first_name as JsonValue,
    plan: row.plan as JsonValue,
  }),
  planField: 'plan',
  ltvField: 'lifetime_value',
  // An empty string clears a HubSpot property: it has no value afterwards.
  isCleared: (value) => value === undefined || value === null || value === '',
  refused: {
    sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`,
    reason: /INVALID_EMAIL: Email address not-an-email is invalid/,
  },
  mirror: true,
  isRemoved: (fake, match) => !fake.stored('contacts').has(match),
  // At or below HubSpot's 100 requests per 10 s; 10 inputs of the 100 a batch endpoint takes.
  lane: { requests_per_second: 5, batch_size: 10 },
  // Free and Starter: 100 requests per rolling 10 seconds per private app.
  // https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
  documented: DOCUMENTED_BURST,
});
