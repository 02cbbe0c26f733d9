import { metaAudiencesDestination } from '#connectors/destinations/meta-audiences/index';
import { registerDestination } from '#connectors/registry';
import { hashIdentifier } from '#connectors/sdk/identifiers';
import { startMetaAudiencesFake } from '../fakes/meta-audiences/server.ts';
import { membershipConformance } from './membership-suite.ts';

const TOKEN = 'EAAGm0PX4ZCpsBAKZBmembership0system0user0ZDZD';
const AUDIENCE = '23851234567890777';

registerDestination(metaAudiencesDestination);

/** Meta keeps hashes: a member is the SHA-256 of its email normalised by Meta's rules. */
function metaHash(email: unknown): string {
  const hashed = hashIdentifier('email', String(email), 'meta');
  if (!hashed.ok) throw new Error(hashed.reason);
  return hashed.hash;
}

membershipConformance({
  name: 'meta_audiences audience:<id>',
  async start() {
    const fake = await startMetaAudiencesFake({ token: TOKEN, audiences: [AUDIENCE] });
    return {
      fake,
      destination: `    type: meta_audiences\n    base_url: ${fake.url}`,
      secret: { access_token: TOKEN },
      object: `audience:${AUDIENCE}`,
    };
  },
  // Hashed in the planner: the raw email never reaches the lane, the state or Meta.
  mapping: '    match: { email: { column: email, hash: sha256, normalize: email } }',
  keyOf: (row) => metaHash(row.email),
  lane: { requests_per_second: 5, batch_size: 5 },
});
