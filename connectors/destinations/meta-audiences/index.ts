import { defineDestination, type FieldInfo } from '#connectors/sdk/destination';
import { createMetaClient } from './client.ts';
import { META_IDENTIFIER_FIELDS, META_MATCH_KEYS, metaAudiencesDestinationManifest } from './manifest.ts';
import { audienceId, writeBatch } from './write.ts';

/** The identifier fields of an audience: what a record may carry, and which can be its match key. */
function identifierFields(object: string): FieldInfo[] {
  audienceId(object);
  return META_IDENTIFIER_FIELDS.map((name) => ({
    name,
    type: name === 'date_of_birth' ? 'date' : 'string',
    required: false,
    kind: 'known',
    matchable: (META_MATCH_KEYS as readonly string[]).includes(name),
  }));
}

/** Meta Custom Audiences' runtime: the `/users` edge behind metaAudiencesDestinationManifest. */
export const metaAudiencesDestination = defineDestination(metaAudiencesDestinationManifest, {
  async connect(opts, context) {
    const client = createMetaClient({
      baseUrl: opts.base_url,
      apiVersion: opts.api_version,
      accessToken: opts.access_token,
      timeoutMs: opts.timeout_ms,
      // Every request takes the lane's slot.
      pace: context.pace,
    });
    return {
      async check() {
        await client.me();
      },
      fields: async (object) => identifierFields(object),
      async write(batch) {
        if (batch.records.length === 0) return [];
        return writeBatch(client, batch, opts.rows_per_request);
      },
      async close() {},
    };
  },
});
