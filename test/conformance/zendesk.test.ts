import { zendeskDestination } from '#connectors/destinations/zendesk/index';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startZendeskFake } from '../fakes/zendesk/server.ts';
import { conformance } from './suite.ts';

const EMAIL = 'admin@example.com';
const TOKEN = 'zd-conformance-6b1f0c2e9a7d';

registerDestination(zendeskDestination);

conformance({
  name: 'zendesk',
  async start() {
    // The Team plan's account limit: 200 requests per minute, every request counted.
    const fake = await startZendeskFake({ agentEmail: EMAIL, apiToken: TOKEN, requestsPerMinute: 200 });
    return {
      destination: `    type: zendesk\n    subdomain: conformance\n    base_url: ${fake.url}\n    email: ${EMAIL}`,
      secret: { api_token: TOKEN },
      fake,
    };
  },
  object: 'users',
  // Custom user fields are mapped as user_fields.<key>; Zendesk needs a name to create a user.
  mapping: `    match: { external_id: id }
    mappings:
      email: email
      name: first_name
      user_fields.plan: { column: plan, nulls: skip }
      user_fields.lifetime_value: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.id),
  expected: (row) => ({
    email: row.email as JsonValue,
    name: row.first_name as JsonValue,
    'user_fields.plan': row.plan as JsonValue,
  }),
  planField: 'user_fields.plan',
  ltvField: 'user_fields.lifetime_value',
  isCleared: (value) => value === null || value === undefined,
  refused: {
    sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`,
    reason: /not properly formatted/,
  },
  mirror: true,
  isRemoved: (fake, match) => !fake.stored('users').has(match),
  // 3 requests/s is under Team's 200/min (3.33/s); the default pace is 2.5/s.
  lane: { requests_per_second: 3, batch_size: 10 },
  // https://developer.zendesk.com/api-reference/introduction/rate-limits/: Team, 200 requests/min.
  documented: { requests: 200, windowMs: 60_000 },
});
