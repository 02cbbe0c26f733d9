import { defineDestination } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import { createIntercomClient, REGION_URLS } from './client.ts';
import { contactFields } from './fields.ts';
import { type IntercomOptions, intercomDestinationManifest } from './manifest.ts';
import { writeContacts } from './write.ts';

/** The API host of the options: `base_url`, else the region's host. */
export function baseUrlOf(opts: Pick<IntercomOptions, 'base_url' | 'region'>): string {
  return opts.base_url ?? REGION_URLS[opts.region];
}

/** Intercom's runtime: the contacts API calls behind intercomDestinationManifest (manifest.ts). */
export const intercomDestination = defineDestination(intercomDestinationManifest, {
  async connect(opts, context) {
    const client = createIntercomClient({
      baseUrl: baseUrlOf(opts),
      accessToken: opts.access_token,
      apiVersion: opts.api_version,
      timeoutMs: opts.timeout_ms,
      // Every request takes its slot from the lane's pace, field discovery and searches included.
      pace: context.pace,
    });
    const contactsOnly = (object: string) => {
      if (object !== 'contacts') {
        throw new ConnectorConfigError(`Intercom has no object "${object}": this destination writes "contacts"`);
      }
    };
    return {
      async check() {
        await client.me();
      },
      async fields(object) {
        contactsOnly(object);
        return contactFields(await client.contactAttributes());
      },
      write(batch) {
        if (batch.records.length === 0) return Promise.resolve([]);
        return writeContacts(client, batch, { role: opts.role, concurrency: opts.request_concurrency });
      },
      async close() {},
    };
  },
});
