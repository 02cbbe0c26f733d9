import { hubspotDestination } from '#connectors/destinations/hubspot/index';
import { registerDestination } from '#connectors/registry';
import { startHubspotFake } from '../fakes/hubspot/server.ts';
import { membershipConformance } from './membership-suite.ts';

const TOKEN = 'pat-na1-7b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e';

registerDestination(hubspotDestination);

membershipConformance({
  name: 'hubspot list:<listId>',
  async start(customers) {
    const fake = await startHubspotFake({ token: TOKEN });
    // Members are contacts HubSpot already has (create_missing_contacts stays off).
    for (const row of customers) fake.seed('contacts', { email: String(row.email), firstname: String(row.first_name) });
    const listId = fake.createList('High value', 'MANUAL');
    return {
      fake,
      destination: `    type: hubspot\n    base_url: ${fake.url}`,
      secret: { access_token: TOKEN },
      object: `list:${listId}`,
    };
  },
  mapping: '    match: { email: email }',
  keyOf: (row) => String(row.email).toLowerCase(),
  // At or below HubSpot's 100 requests per 10 s; 5 members a batch, so a run takes several.
  lane: { requests_per_second: 5, batch_size: 5 },
});
