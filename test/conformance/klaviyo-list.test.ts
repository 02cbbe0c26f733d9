import { klaviyoDestination } from '#connectors/destinations/klaviyo/index';
import { registerDestination } from '#connectors/registry';
import { startKlaviyoFake } from '../fakes/klaviyo/server.ts';
import { membershipConformance } from './membership-suite.ts';

const API_KEY = 'pk_membership0123456789abcdef0123456789';

registerDestination(klaviyoDestination);

membershipConformance({
  name: 'klaviyo list:<listId>',
  async start(customers) {
    const fake = await startKlaviyoFake({ apiKey: API_KEY });
    // Members are profiles Klaviyo already has (synced with the `profiles` object).
    for (const row of customers) fake.seed({ email: String(row.email), first_name: String(row.first_name) });
    const listId = fake.createList('High value');
    return {
      fake,
      destination: `    type: klaviyo\n    base_url: ${fake.url}`,
      secret: { api_key: API_KEY },
      object: `list:${listId}`,
    };
  },
  mapping: '    match: { email: email }',
  keyOf: (row) => String(row.email).toLowerCase(),
  // At or below the list endpoints' 10/s burst and 150/m steady; 5 members a batch.
  lane: { requests_per_second: 2, batch_size: 5 },
});
