import { mailchimpDestination } from '#connectors/destinations/mailchimp/index';
import { registerDestination } from '#connectors/registry';
import { startMailchimpFake } from '../fakes/mailchimp/server.ts';
import { membershipConformance } from './membership-suite.ts';

const API_KEY = '89abcdef0123456789abcdef01234567-us21';
const AUDIENCE = 'f6e5d4c3b2';

registerDestination(mailchimpDestination);

membershipConformance({
  name: 'mailchimp tag:<name>',
  async start(customers) {
    const fake = await startMailchimpFake({ apiKey: API_KEY });
    fake.createList({ id: AUDIENCE });
    // Members of the audience already (add_missing_members stays off); the tag is created empty.
    for (const row of customers) fake.seedMember(AUDIENCE, { email: String(row.email), status: 'subscribed' });
    fake.createSegment(AUDIENCE, { name: 'High value', type: 'static' });
    return {
      fake,
      destination: `    type: mailchimp\n    base_url: ${fake.url}\n    status: subscribed\n    list_id: ${AUDIENCE}\n    create_tags: false`,
      secret: { api_key: API_KEY },
      object: 'tag:High value',
    };
  },
  mapping: '    match: { email_address: email }',
  keyOf: (row) => String(row.email).toLowerCase(),
  lane: { requests_per_second: 5, batch_size: 5 },
});
