import { salesforceDestination } from '#connectors/destinations/salesforce/index';
import { BASE_DAILY_ALLOCATION } from '#connectors/destinations/salesforce/limits';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startSalesforceFake } from '../fakes/salesforce/server.ts';
import { conformance } from './suite.ts';

registerDestination(salesforceDestination);

const CLIENT_ID = '3MVG9conformance.client';
const CLIENT_SECRET = 'conformance-consumer-secret';

conformance({
  name: 'salesforce',
  async start() {
    const fake = await startSalesforceFake({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    return {
      destination: `    type: salesforce\n    login_url: ${fake.url}\n    client_id: ${CLIENT_ID}`,
      secret: { client_secret: CLIENT_SECRET },
      fake,
    };
  },
  object: 'Contact',
  mapping: `    match: { External_Id__c: id }
    mappings:
      Email: email
      FirstName: first_name
      LastName: last_name
      Plan__c: { column: plan, nulls: skip }
      Lifetime_Value__c: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.id),
  expected: (row) => ({
    Email: row.email as JsonValue,
    FirstName: row.first_name as JsonValue,
    LastName: row.last_name as JsonValue,
    Plan__c: row.plan as JsonValue,
  }),
  planField: 'Plan__c',
  ltvField: 'Lifetime_Value__c',
  isCleared: (value) => value === null || value === undefined,
  refused: {
    sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`,
    reason: /INVALID_EMAIL_ADDRESS.*invalid email address/,
  },
  mirror: true,
  isRemoved: (fake, match) => !fake.stored('Contact').has(match),
  lane: { requests_per_second: 5, batch_size: 10 },
  // Salesforce's only request-count limit is the org's rolling 24-hour allocation, 100,000 at the
  // base of an edition with API access (connectors/destinations/salesforce/limits.ts, API_LIMITS_DOC).
  // A test cannot run for a day: the window here is that allocation's even share of one minute
  // (100,000 / 1,440 = 69), which a lane at the declared 1 request/s keeps (60 a minute) and a
  // connector sending unpaced describes, lookups or logins would not.
  documented: { requests: Math.floor(BASE_DAILY_ALLOCATION / 1_440), windowMs: 60_000 },
});
