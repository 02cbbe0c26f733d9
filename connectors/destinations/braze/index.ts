import { defineDestination } from '#connectors/sdk/destination';
import { createBrazeClient } from './client.ts';
import { customAttributeFields, objectOf, PROFILE_FIELDS } from './fields.ts';
import { brazeDestinationManifest } from './manifest.ts';
import { writeUsers } from './users.ts';

/** Braze's runtime: `/users/track`, `/users/delete` and custom attributes behind brazeDestinationManifest. */
export const brazeDestination = defineDestination(brazeDestinationManifest, {
  async connect(opts) {
    const client = createBrazeClient({ baseUrl: opts.base_url, apiKey: opts.api_key, timeoutMs: opts.timeout_ms });

    return {
      async check() {
        await client.probe();
      },

      async fields(object) {
        objectOf(object);
        return [...PROFILE_FIELDS, ...customAttributeFields(await client.customAttributes())];
      },

      write: (batch) => writeUsers(client, batch),

      async close() {},
    };
  },
});
