import { intercomDestination } from '#connectors/destinations/intercom/index';
import { CALLS_PER_WINDOW, WINDOW_MS } from '#connectors/destinations/intercom/limits';
import { registerDestination } from '#connectors/registry';
import type { JsonValue } from '#connectors/sdk/types';
import { startIntercomFake } from '../fakes/intercom/server.ts';
import { conformance } from './suite.ts';

registerDestination(intercomDestination);

const TOKEN = 'dG9rOmNvbmZvcm1hbmNlX2ludGVyY29tXzEyMzQ1';

conformance({
  name: 'intercom',
  async start() {
    const fake = await startIntercomFake({
      token: TOKEN,
      customAttributes: { plan: 'string', lifetime_value: 'float' },
    });
    return {
      destination: `    type: intercom\n    base_url: ${fake.url}`,
      secret: { access_token: TOKEN },
      fake,
    };
  },
  object: 'contacts',
  mapping: `    match: { external_id: id }
    mappings:
      email: email
      name: first_name
      plan: { column: plan, nulls: skip }
      lifetime_value: { column: ltv, nulls: sync }`,
  matchOf: (row) => String(row.id),
  expected: (row) => ({
    email: row.email as JsonValue,
    name: row.first_name as JsonValue,
    plan: row.plan as JsonValue,
    archived: false,
  }),
  planField: 'plan',
  ltvField: 'lifetime_value',
  // Intercom clears a custom attribute sent as null: the contact no longer has it.
  isCleared: (value) => value === null || value === undefined,
  refused: {
    sql: (id) => `update customers set email = 'not-an-email' where id = ${id}`,
    reason: /Invalid email address/,
  },
  mirror: true,
  // Mirror mode archives: the contact is kept by Intercom, marked archived.
  isRemoved: (fake, match) => fake.stored('contacts').get(match)?.archived === true,
  // The lane paces every request (field discovery, searches, creates, updates, archives): a batch
  // of 10 (the default) costs one search and 10 calls, so a run of 49 records takes ~6 s at 10/s.
  // (At 20/s with 10 exporters' searches starting together, the lane's pace let up to 24 requests
  // out in a second when its reservation round trip was slow: reported to the lead, core/pacing.ts.)
  lane: { requests_per_second: 10, batch_size: 10 },
  // "10,000 API calls per minute per app", evenly distributed into 10-second windows: 1,666 a
  // window (https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting).
  documented: { requests: CALLS_PER_WINDOW, windowMs: WINDOW_MS },
});
