import { klaviyoDestination } from '#connectors/destinations/klaviyo/index';
import { DOCUMENTED_STEADY } from '#connectors/destinations/klaviyo/limits';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startKlaviyoFake } from '../fakes/klaviyo/server.ts';
import { conformance } from './suite.ts';

const API_KEY = 'pk_conformance0123456789abcdef0123456789';

registerDestination(klaviyoDestination);

conformance({
  name: 'klaviyo',
  async start() {
    const fake = await startKlaviyoFake({ apiKey: API_KEY, jobMs: 200 });
    return {
      destination: `    type: klaviyo\n    base_url: ${fake.url}\n    job_wait_ms: 10000`,
      secret: { api_key: API_KEY },
      fake,
    };
  },
  object: 'profiles',
  mapping: `    match: { email: email }
    mappings:
      first_name: first_name
      last_name: last_name
      properties.plan: { column: plan, nulls: skip }
      properties.ltv: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.email),
  expected: (row) => ({
    email: row.email as JsonValue,
    first_name: row.first_name as JsonValue,
    last_name: row.last_name as JsonValue,
    'properties.plan': row.plan as JsonValue,
  }),
  planField: 'properties.plan',
  ltvField: 'properties.ltv',
  // Create or Update Profile's `meta.patch_properties.unset` removes the property.
  isCleared: (value) => value === undefined || value === null,
  refused: {
    sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`,
    reason: /invalid: Invalid email address: not-an-email/,
  },
  // Klaviyo documents no bulk delete of profiles: upsert only (manifest.ts).
  mirror: false,
  // At or below the bulk import endpoints' 10/s burst and 150/m steady.
  lane: { requests_per_second: 2, batch_size: 10 },
  // Bulk import endpoints: 150 requests per minute, per account.
  // https://developers.klaviyo.com/en/v2025-01-15/reference/bulk_import_profiles
  documented: DOCUMENTED_STEADY,
});
