import { defineDestination, type FieldInfo } from '#connectors/sdk/destination';
import { RateLimitedError } from '#connectors/sdk/errors';
import { createBrazeClient, MissingPermissionError, PERMISSIONS } from './client.ts';
import { customAttributeFields, objectOf, PROFILE_FIELDS } from './fields.ts';
import { brazeDestinationManifest } from './manifest.ts';
import { arrayMembershipOf, subscriptionGroupOf, writeArrayMembership, writeSubscriptions } from './subscriptions.ts';
import { writeUsers } from './users.ts';

/** Braze's runtime: `/users/track`, `/users/delete` and custom attributes behind brazeDestinationManifest. */
export const brazeDestination = defineDestination(brazeDestinationManifest, {
  async connect(opts, context) {
    const client = createBrazeClient({
      baseUrl: opts.base_url,
      apiKey: opts.api_key,
      timeoutMs: opts.timeout_ms,
      pace: context.pace,
    });
    // A connection that writes for a lane discovers fields only to format values: without
    // `custom_attributes.get`, or with that endpoint's hourly limit spent, it goes on with the
    // profile fields (custom attributes then take the model column's type). `backflow fields` and
    // `validate` connect to discover, and report the refusal.
    const writing = context.purpose === 'write';

    return {
      async check() {
        await client.probe();
      },

      async fields(object): Promise<FieldInfo[]> {
        if (subscriptionGroupOf(object) !== undefined || arrayMembershipOf(object) !== undefined) {
          // A membership record carries the user's identifier only.
          return PROFILE_FIELDS.filter((f) => f.matchable);
        }
        objectOf(object);
        try {
          return [...PROFILE_FIELDS, ...customAttributeFields(await client.customAttributes())];
        } catch (error) {
          const missing = error instanceof MissingPermissionError && error.permission === PERMISSIONS.customAttributes;
          const limited = error instanceof RateLimitedError && !error.paced;
          if (writing && (missing || limited)) return [...PROFILE_FIELDS];
          throw error;
        }
      },

      async write(batch) {
        const group = subscriptionGroupOf(batch.object);
        if (group !== undefined) return writeSubscriptions(client, batch, group, opts.verify_subscriptions);
        const array = arrayMembershipOf(batch.object);
        if (array) return writeArrayMembership(client, batch, array);
        return writeUsers(client, batch);
      },

      async close() {},
    };
  },
});
