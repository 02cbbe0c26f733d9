import { defineDestination } from '#connectors/sdk/destination';
import { createAirtableClient } from './client.ts';
import { tableFields, tableOf } from './fields.ts';
import { airtableDestinationManifest } from './manifest.ts';
import { writeBatch } from './write.ts';

/** Airtable's runtime: the Web API calls behind airtableDestinationManifest (manifest.ts). */
export const airtableDestination = defineDestination(airtableDestinationManifest, {
  async connect(opts, context) {
    const client = createAirtableClient({
      baseUrl: opts.base_url,
      baseId: opts.base_id,
      accessToken: opts.access_token,
      typecast: opts.typecast,
      timeoutMs: opts.timeout_ms,
      // Every request takes the lane's slot: writes, lookups, deletes and the schema read.
      pace: context.pace,
    });
    return {
      async check() {
        await client.tables();
      },
      async fields(object) {
        return tableFields(tableOf(await client.tables(), object));
      },
      write(batch) {
        if (batch.records.length === 0) return Promise.resolve([]);
        return writeBatch(client, batch);
      },
      async close() {},
    };
  },
});
