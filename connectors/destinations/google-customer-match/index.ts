import { defineDestination, type FieldInfo } from '#connectors/sdk/destination';
import { createGoogleClient } from './client.ts';
import { GOOGLE_IDENTIFIER_FIELDS, GOOGLE_MATCH_KEYS, googleCustomerMatchDestinationManifest } from './manifest.ts';
import { userListId, writeBatch } from './write.ts';

function identifierFields(object: string): FieldInfo[] {
  userListId(object);
  return GOOGLE_IDENTIFIER_FIELDS.map((name) => ({
    name,
    type: 'string',
    required: false,
    kind: 'known',
    matchable: (GOOGLE_MATCH_KEYS as readonly string[]).includes(name),
  }));
}

/** Google Customer Match's runtime: offline user data jobs behind googleCustomerMatchDestinationManifest. */
export const googleCustomerMatchDestination = defineDestination(googleCustomerMatchDestinationManifest, {
  async connect(opts, context) {
    const client = createGoogleClient({
      baseUrl: opts.base_url,
      apiVersion: opts.api_version,
      tokenUrl: opts.token_url,
      customerId: opts.customer_id,
      loginCustomerId: opts.login_customer_id,
      developerToken: opts.developer_token,
      clientId: opts.client_id,
      clientSecret: opts.client_secret,
      refreshToken: opts.refresh_token,
      timeoutMs: opts.timeout_ms,
      // Every request takes the lane's slot: the token, the job, its operations, its run and polls.
      pace: context.pace,
    });
    const consent = opts.consent
      ? {
          ...(opts.consent.ad_user_data ? { adUserData: opts.consent.ad_user_data } : {}),
          ...(opts.consent.ad_personalization ? { adPersonalization: opts.consent.ad_personalization } : {}),
        }
      : undefined;
    return {
      check: () => client.check(),
      fields: async (object) => identifierFields(object),
      async write(batch) {
        if (batch.records.length === 0) return [];
        return writeBatch(client, batch, {
          identifiersPerRequest: opts.identifiers_per_request,
          jobWaitMs: opts.job_wait_ms,
          pollIntervalMs: opts.poll_interval_ms,
          consent,
        });
      },
      async close() {},
    };
  },
});
