import { brazeDestination } from '#connectors/destinations/braze/index';
import { registerDestination } from '#connectors/registry';
import { startBrazeFake } from '../fakes/braze/server.ts';
import { membershipConformance } from './membership-suite.ts';

const API_KEY = 'braze-rest-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const GROUP = 'b1c2d3e4-f5a6-47b8-89c0-d1e2f3a4b5c6';

registerDestination(brazeDestination);

membershipConformance({
  name: 'braze subscription_group:<id>',
  async start(customers) {
    const fake = await startBrazeFake({ apiKey: API_KEY, subscriptionGroups: [GROUP] });
    // Users Braze already has: the subscription endpoint creates none (the read-back rejects them).
    for (const row of customers) fake.addUser({ external_id: String(row.id), email: String(row.email) });
    return {
      fake,
      destination: `    type: braze\n    base_url: ${fake.url}`,
      secret: { api_key: API_KEY },
      object: `subscription_group:${GROUP}`,
    };
  },
  mapping: '    match: { external_id: id }',
  // The fake keys a subscribed user by its external_id.
  keyOf: (row) => String(row.id),
  // Far below the subscription endpoints' 5,000 requests a minute.
  lane: { requests_per_second: 5, batch_size: 5 },
});
