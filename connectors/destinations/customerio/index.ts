import { defineDestination, type FieldInfo } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import { createCustomerioClient } from './client.ts';
import { IDENTIFIER_FIELDS, objectOf } from './fields.ts';
import { customerioDestinationManifest, REGION_URLS } from './manifest.ts';
import { writePeople } from './write.ts';

/** Customer.io's runtime: Track API v2 `/api/v2/batch` behind customerioDestinationManifest. */
export const customerioDestination = defineDestination(customerioDestinationManifest, {
  async connect(opts, context) {
    const baseUrl = opts.base_url ?? REGION_URLS[opts.region];
    const client = createCustomerioClient({
      baseUrl,
      siteId: opts.site_id,
      apiKey: opts.api_key,
      timeoutMs: opts.timeout_ms,
      pace: context.pace,
    });

    return {
      /**
       * `GET /api/v1/accounts/region` checks the credentials without writing, and says which region
       * they belong to: a workspace in the other region is a configuration error (requests to the
       * wrong region "fail", or pass through US servers).
       */
      async check() {
        const found = await client.region();
        if (opts.base_url === undefined && found.region !== undefined && found.region !== opts.region) {
          throw new ConnectorConfigError(
            `these Customer.io credentials belong to a workspace in region "${found.region}", not "${opts.region}": set region: ${found.region}`,
          );
        }
      },

      async fields(object): Promise<FieldInfo[]> {
        objectOf(object);
        return [...IDENTIFIER_FIELDS];
      },

      write: (batch) => writePeople(client, batch),

      async close() {},
    };
  },
});
