import { brazeDestination } from '#connectors/destinations/braze/index';
import { TRACK_RATE_LIMIT } from '#connectors/destinations/braze/limits';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startBrazeFake } from '../fakes/braze/server.ts';
import { conformance } from './suite.ts';

registerDestination(brazeDestination);

const API_KEY = 'braze-rest-0d4c2f8e-6b1a-4e57-9c3d-5a7f1e2b8c90';

conformance({
  name: 'braze',
  async start() {
    const fake = await startBrazeFake({ apiKey: API_KEY });
    return {
      destination: `    type: braze\n    base_url: ${fake.url}`,
      secret: { api_key: API_KEY },
      fake,
    };
  },
  object: 'users',
  mapping: `    match: { external_id: id }
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
  // Braze removes an attribute set to null: the profile no longer has it.
  isCleared: (value) => value === undefined,
  refused: {
    sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`,
    reason: /'email' field is not a valid email/,
  },
  mirror: true,
  isRemoved: (fake, match) => !fake.stored('users').has(match),
  lane: { requests_per_second: 5, batch_size: 10 },
  // /users/track: "3,000 requests per three seconds" (https://www.braze.com/docs/api/api_limits/).
  documented: TRACK_RATE_LIMIT,
});
