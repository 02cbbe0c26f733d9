import { airtableDestination } from '#connectors/destinations/airtable/index';
import { DOCUMENTED_RATE } from '#connectors/destinations/airtable/limits';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startAirtableFake } from '../fakes/airtable/server.ts';
import { conformance } from './suite.ts';

const TOKEN = 'patQ1w2e3r4t5y6u7.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

registerDestination(airtableDestination);

conformance({
  name: 'airtable',
  async start() {
    const fake = await startAirtableFake({ token: TOKEN });
    return {
      destination: `    type: airtable\n    base_url: ${fake.url}\n    base_id: ${fake.baseId}`,
      secret: { access_token: TOKEN },
      fake,
    };
  },
  object: 'Customers',
  mapping: `    match: { email: email }
    mappings:
      firstname: first_name
      plan: { column: plan, nulls: skip }
      ltv: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.email),
  expected: (row) => ({
    email: row.email as JsonValue,
    firstname: row.first_name as JsonValue,
    plan: row.plan as JsonValue,
  }),
  planField: 'plan',
  ltvField: 'ltv',
  // A cleared cell is left out of the record's fields.
  isCleared: (value) => value === undefined || value === null,
  refused: {
    sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`,
    reason: /INVALID_VALUE_FOR_COLUMN: Field "email" cannot accept the provided value/,
  },
  mirror: true,
  isRemoved: (fake, match) => !fake.stored('Customers').has(match),
  // 4 a second: the pacer lets rate + 1 into a second, Airtable's 5 per base.
  lane: { requests_per_second: 4, batch_size: 10 },
  // 5 requests per second per base.
  // https://support.airtable.com/docs/managing-api-call-limits-in-airtable
  documented: DOCUMENTED_RATE,
});
