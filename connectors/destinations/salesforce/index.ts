import { defineDestination } from '#connectors/sdk/destination';
import { ConnectorConfigError } from '#connectors/sdk/errors';
import {
  type Credentials,
  clientCredentialsLoginProblem,
  DEFAULT_JWT_LOGIN_URL,
  defaultAudience,
  readPrivateKey,
} from './auth.ts';
import { BulkIngest } from './bulk.ts';
import { type CampaignsContext, campaignFields, isCampaignObject, writeCampaign } from './campaigns.ts';
import { SalesforceClient } from './client.ts';
import { fieldInfos } from './fields.ts';
import { type SalesforceOptions, salesforceDestinationManifest } from './manifest.ts';
import { writeBatch } from './write.ts';

/** Salesforce's runtime: OAuth, sObject Collections and Bulk API 2.0 behind salesforceDestinationManifest. */
export const salesforceDestination = defineDestination(salesforceDestinationManifest, {
  async connect(opts, context) {
    const credentials = credentialsOf(opts);
    const client = new SalesforceClient({
      loginUrl: loginUrlOf(opts, credentials),
      credentials,
      apiVersion: opts.api_version,
      baseUrl: opts.base_url,
      timeoutMs: opts.timeout_ms,
      maxApiUsage: opts.max_api_usage,
      pace: context.pace,
    });
    const bulk = new BulkIngest(client, opts.bulk_poll_ms);
    const campaigns: CampaignsContext = {
      client,
      memberObject: opts.member_object,
      status: opts.campaign_member_status,
      campaigns: new Map(),
    };
    return {
      check: () => client.check(),
      fields: async (object) =>
        isCampaignObject(object) ? campaignFields(campaigns, object) : fieldInfos(await client.describe(object)),
      // `campaign:<CampaignId>`: CampaignMember records of one campaign (campaigns.ts).
      write: (batch) =>
        isCampaignObject(batch.object)
          ? batch.records.length === 0
            ? Promise.resolve([])
            : writeCampaign(campaigns, batch)
          : writeBatch(batch, { client, bulk, bulkThreshold: opts.bulk_threshold }),
      async close() {},
    };
  },
});

/** The OAuth flow the options describe: client credentials, or JWT bearer with a private key. */
function credentialsOf(opts: SalesforceOptions): Credentials {
  if (opts.client_secret !== undefined && opts.private_key !== undefined) {
    throw new ConnectorConfigError('salesforce: set client_secret or private_key in the secret, not both');
  }
  if (opts.private_key !== undefined) {
    if (opts.username === undefined) {
      throw new ConnectorConfigError(
        'salesforce: the JWT bearer flow (private_key) needs username, the user it logs in as',
      );
    }
    return {
      flow: 'jwt_bearer',
      clientId: opts.client_id,
      username: opts.username,
      privateKey: readPrivateKey(opts.private_key),
      audience: opts.jwt_audience ?? defaultAudience(opts.login_url ?? DEFAULT_JWT_LOGIN_URL),
    };
  }
  if (opts.client_secret === undefined) {
    throw new ConnectorConfigError(
      'salesforce: set client_secret (client credentials flow) or private_key with username (JWT bearer flow) in the secret',
    );
  }
  const problem = clientCredentialsLoginProblem(opts.login_url);
  if (problem) throw new ConnectorConfigError(`salesforce: ${problem}`);
  return { flow: 'client_credentials', clientId: opts.client_id, clientSecret: opts.client_secret };
}

/** The token endpoint's host: login_url, else (JWT bearer only) https://login.salesforce.com. */
function loginUrlOf(opts: SalesforceOptions, credentials: Credentials): string {
  if (opts.login_url !== undefined) return opts.login_url;
  if (credentials.flow === 'jwt_bearer') return DEFAULT_JWT_LOGIN_URL;
  // credentialsOf refused it already; kept for the type.
  throw new ConnectorConfigError(`salesforce: ${clientCredentialsLoginProblem(undefined)}`);
}
