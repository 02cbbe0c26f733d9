import { googleCustomerMatchDestination } from '#connectors/destinations/google-customer-match/index';
import { registerDestination } from '#connectors/registry';
import { hashIdentifier } from '#connectors/sdk/identifiers';
import { startGoogleCustomerMatchFake } from '../fakes/google-customer-match/server.ts';
import { membershipConformance } from './membership-suite.ts';

const CREDS = {
  customerId: '9876543210',
  developerToken: 'dev-token-Membership123',
  clientId: '5678-membership.apps.googleusercontent.com',
  clientSecret: 'GOCSPX-membership-secret',
  refreshToken: '1//0membership-refresh-token',
};
const LIST = '5550042';

registerDestination(googleCustomerMatchDestination);

/** Google keeps hashes: a member is the SHA-256 of its email normalised by Google's rules. */
function googleHash(email: unknown): string {
  const hashed = hashIdentifier('email', String(email), 'google');
  if (!hashed.ok) throw new Error(hashed.reason);
  return hashed.hash;
}

membershipConformance({
  name: 'google_customer_match customer_match:<userListId>',
  async start() {
    const fake = await startGoogleCustomerMatchFake({ ...CREDS, userLists: [LIST] });
    return {
      fake,
      destination: [
        '    type: google_customer_match',
        `    base_url: ${fake.url}`,
        `    token_url: ${fake.tokenUrl}`,
        '    customer_id: 987-654-3210',
        '    poll_interval_ms: 0',
        '    job_wait_ms: 5000',
      ].join('\n'),
      secret: {
        developer_token: CREDS.developerToken,
        client_id: CREDS.clientId,
        client_secret: CREDS.clientSecret,
        refresh_token: CREDS.refreshToken,
      },
      object: `customer_match:${LIST}`,
    };
  },
  // Hashed in the planner: the raw email never reaches the lane, the state or Google.
  mapping: '    match: { email: { column: email, hash: sha256, normalize: email } }',
  keyOf: (row) => googleHash(row.email),
  lane: { requests_per_second: 5, batch_size: 5 },
});
