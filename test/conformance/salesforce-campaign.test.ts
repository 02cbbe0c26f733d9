import { salesforceDestination } from '#connectors/destinations/salesforce/index';
import { registerDestination } from '#connectors/registry';
import { startSalesforceFake } from '../fakes/salesforce/server.ts';
import { membershipConformance } from './membership-suite.ts';

const CLIENT_ID = '3MVG9membership.client';
const CLIENT_SECRET = 'membership-consumer-secret';

registerDestination(salesforceDestination);

membershipConformance({
  name: 'salesforce campaign:<CampaignId>',
  async start(customers) {
    const fake = await startSalesforceFake({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    // Members are Contacts the org already has: Backflow never creates them for a membership.
    for (const row of customers) {
      fake.seed('Contact', {
        FirstName: String(row.first_name),
        LastName: String(row.last_name),
        Email: String(row.email),
      });
    }
    const campaignId = fake.seed('Campaign', { Name: 'High value' });
    return {
      fake,
      destination: `    type: salesforce\n    login_url: ${fake.url}\n    client_id: ${CLIENT_ID}`,
      secret: { client_secret: CLIENT_SECRET },
      object: `campaign:${campaignId}`,
    };
  },
  mapping: '    match: { Email: email }',
  keyOf: (row) => String(row.email).toLowerCase(),
  lane: { requests_per_second: 5, batch_size: 5 },
});
