import { defineDestination } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import { createMixpanelClient } from './client.ts';
import { objectOf, PROFILE_FIELDS } from './fields.ts';
import { baseUrlOf, mixpanelDestinationManifest, serviceAccountOf } from './manifest.ts';
import { writeProfiles } from './write.ts';

/** Mixpanel's runtime: `/engage` profile updates behind mixpanelDestinationManifest (manifest.ts). */
export const mixpanelDestination = defineDestination(mixpanelDestinationManifest, {
  async connect(opts, context) {
    const account = serviceAccountOf(opts);
    if (typeof account === 'string') throw new ConnectorConfigError(`Mixpanel: ${account}`);
    const client = createMixpanelClient({
      baseUrl: baseUrlOf(opts),
      token: opts.project_token,
      serviceAccount: account,
      timeoutMs: opts.timeout_ms,
      // Every request takes the lane's slot, the connection check included.
      pace: context.pace,
    });
    return {
      async check() {
        await client.probe();
      },
      // The reserved properties; custom properties need no declaration (fields.ts). No request.
      async fields(object) {
        objectOf(object);
        return [...PROFILE_FIELDS];
      },
      async write(batch) {
        if (batch.records.length === 0) return [];
        return writeProfiles(client, batch);
      },
      async close() {},
    };
  },
});
