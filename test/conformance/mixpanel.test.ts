import { mixpanelDestination } from '#connectors/destinations/mixpanel/index';
import { DOCUMENTED_REQUEST_LIMIT } from '#connectors/destinations/mixpanel/limits';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startMixpanelFake } from '../fakes/mixpanel/server.ts';
import { conformance } from './suite.ts';

registerDestination(mixpanelDestination);

const TOKEN = 'f3a9c2e17b4d4e5f8a6b0c1d2e3f4a5b';

conformance({
  name: 'mixpanel',
  async start() {
    const fake = await startMixpanelFake({ token: TOKEN });
    return {
      destination: `    type: mixpanel\n    base_url: ${fake.url}`,
      secret: { project_token: TOKEN },
      fake,
    };
  },
  object: 'profiles',
  mapping: `    match: { $distinct_id: id }
    mappings:
      $email: email
      $first_name: first_name
      plan: { column: plan, nulls: skip }
      lifetime_value: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.id),
  expected: (row) => ({
    $email: row.email as JsonValue,
    $first_name: row.first_name as JsonValue,
    plan: row.plan as JsonValue,
  }),
  planField: 'plan',
  ltvField: 'lifetime_value',
  // `$unset` removes the property: the profile no longer has it.
  isCleared: (value) => value === undefined,
  // "String properties have a limit of 255 bytes" (https://docs.mixpanel.com/docs/data-structure/property-reference/data-type);
  // Inferred: refused per record with strict=1 (the fake's failed_records).
  refused: {
    sql: (id) => `update customers set first_name = repeat('x', 300) where id = ${id}`,
    reason: /255 bytes/,
  },
  mirror: true,
  isRemoved: (fake, match) => !fake.stored('profiles').has(match),
  lane: { requests_per_second: 5, batch_size: 10 },
  // ~30,000 updates a second on a rolling minute, 2,000 updates a request: 900 full requests a minute.
  documented: DOCUMENTED_REQUEST_LIMIT,
});
