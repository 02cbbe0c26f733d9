import { defineDestination } from '#connectors/sdk/destination';
import { createHubSpotClient } from './client.ts';
import { discoverFields } from './fields.ts';
import { hubspotDestinationManifest } from './manifest.ts';
import { writeBatch } from './write.ts';

/** HubSpot's runtime: the CRM v3 calls behind hubspotDestinationManifest (manifest.ts). */
export const hubspotDestination = defineDestination(hubspotDestinationManifest, {
  async connect(opts, context) {
    const client = createHubSpotClient({
      baseUrl: opts.base_url,
      accessToken: opts.access_token,
      timeoutMs: opts.timeout_ms,
      // Every request takes the lane's slot: writes, the lookups of update and mirror, archives,
      // and the field discovery the SDK does before the first write of an object.
      pace: context.pace,
    });
    return {
      async check() {
        await client.accountDetails();
      },
      fields: (object) => discoverFields(client, object),
      async write(batch) {
        if (batch.records.length === 0) return [];
        return writeBatch(client, batch);
      },
      async close() {},
    };
  },
});
