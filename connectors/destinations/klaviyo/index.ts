import { defineDestination } from '#connectors/sdk/destination';
import { createKlaviyoClient } from './client.ts';
import { discoverFields } from './fields.ts';
import { isListObject, type ListsContext, listFields, writeMembership } from './lists.ts';
import { klaviyoDestinationManifest } from './manifest.ts';
import { type WriteContext, writeProfiles } from './write.ts';

/** Klaviyo's runtime: the calls behind klaviyoDestinationManifest (manifest.ts). */
export const klaviyoDestination = defineDestination(klaviyoDestinationManifest, {
  async connect(opts, context) {
    const client = createKlaviyoClient({
      baseUrl: opts.base_url,
      apiKey: opts.api_key,
      timeoutMs: opts.timeout_ms,
      // Every request takes the lane's slot: job creates, job polls, import-error pages and the
      // profile imports that clear fields.
      pace: context.pace,
    });
    const write: WriteContext = { client, jobWaitMs: opts.job_wait_ms, pending: new Map() };
    const lists: ListsContext = { client, lists: new Map() };
    return {
      check: () => client.check(),
      fields: (object) => (isListObject(object) ? listFields(lists, object) : discoverFields(object)),
      async write(batch) {
        if (batch.records.length === 0) return [];
        // `list:<id>`: membership of a list (lists.ts).
        if (isListObject(batch.object)) return writeMembership(lists, batch);
        return writeProfiles(write, batch);
      },
      async close() {},
    };
  },
});
