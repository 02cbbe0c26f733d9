import { mailchimpDestination } from '#connectors/destinations/mailchimp/index';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startMailchimpFake } from '../fakes/mailchimp/server.ts';
import { conformance } from './suite.ts';

registerDestination(mailchimpDestination);

const API_KEY = '0123456789abcdef0123456789abcdef-us21';
const AUDIENCE = 'a1b2c3d4e5';

conformance({
  name: 'mailchimp',
  async start() {
    const fake = await startMailchimpFake({ apiKey: API_KEY });
    fake.createList({
      id: AUDIENCE,
      mergeFields: [
        { tag: 'PLAN', name: 'Plan', type: 'text' },
        { tag: 'LTV', name: 'Lifetime value', type: 'number' },
      ],
    });
    return {
      destination: `    type: mailchimp\n    base_url: ${fake.url}\n    status: subscribed`,
      secret: { api_key: API_KEY },
      fake,
    };
  },
  object: AUDIENCE,
  mapping: `    match: { email_address: email }
    mappings:
      FNAME: first_name
      PLAN: { column: plan, nulls: skip }
      LTV: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.email).toLowerCase(),
  expected: (row) => ({ FNAME: row.first_name as JsonValue, PLAN: row.plan as JsonValue }),
  planField: 'PLAN',
  ltvField: 'LTV',
  // Mailchimp keeps a cleared merge field as an empty string.
  isCleared: (value) => value === '',
  refused: {
    sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`,
    reason: /looks fake or invalid/,
  },
  mirror: true,
  isRemoved: (fake, match) => fake.stored(AUDIENCE).get(match)?.status === 'archived',
  lane: { requests_per_second: 5, batch_size: 10 },
  // Mailchimp documents 10 simultaneous connections per user and no request window
  // (https://mailchimp.com/developer/marketing/docs/fundamentals/#api-limits). Inferred: at most
  // 10 requests in any second, what 10 connections carry when each request lasts a second — the
  // reading behind the connector's default pace (limits.ts).
  documented: { requests: 10, windowMs: 1000 },
});
