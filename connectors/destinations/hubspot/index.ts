import { defineDestination } from '#connectors/sdk/destination';
import { createHubSpotClient } from './client.ts';
import { discoverFields } from './fields.ts';
import { isListObject, type ListsContext, listFields, writeMembership } from './lists.ts';
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
    const lists: ListsContext = {
      client,
      createMissingContacts: opts.create_missing_contacts,
      lists: new Map(),
    };
    return {
      async check() {
        await client.accountDetails();
      },
      fields: (object) => (isListObject(object) ? listFields(lists, object) : discoverFields(client, object)),
      async write(batch) {
        if (batch.records.length === 0) return [];
        // `list:<id>`: membership of a static contact list (lists.ts).
        if (isListObject(batch.object)) return writeMembership(lists, batch);
        return writeBatch(client, batch);
      },
      async close() {},
    };
  },
});
