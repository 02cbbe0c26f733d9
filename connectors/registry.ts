import { manifests } from '#connectors/manifests';
import { type ConnectorCatalogue, connectorCatalogue, type RuntimeLoader } from '#connectors/sdk/catalogue';
import type { DestinationManifest, DestinationRuntime } from '#connectors/sdk/destination';
import type { SourceRuntime } from '#connectors/sdk/source';

/**
 * The full catalogue of the CLI and the local runtime: every manifest at once, and each runtime
 * through a dynamic `import()` on first use, so a command loads only the drivers its config uses
 * (a HubSpot sync never loads snowflake-sdk). Lambda functions do not use this: each bundle holds
 * the runtimes of its own function (infra/bundles.ts).
 */
const sourceLoaders = new Map<string, RuntimeLoader<SourceRuntime>>([
  ['duckdb', async () => (await import('#connectors/sources/duckdb/index')).duckdbSource],
  ['postgres', async () => (await import('#connectors/sources/postgres/index')).postgresSource],
  ['mysql', async () => (await import('#connectors/sources/mysql/index')).mysqlSource],
  ['snowflake', async () => (await import('#connectors/sources/snowflake/index')).snowflakeSource],
]);

const destinationLoaders = new Map<string, RuntimeLoader<DestinationRuntime>>([
  ['hubspot', async () => (await import('#connectors/destinations/hubspot/index')).hubspotDestination],
  ['salesforce', async () => (await import('#connectors/destinations/salesforce/index')).salesforceDestination],
  ['mailchimp', async () => (await import('#connectors/destinations/mailchimp/index')).mailchimpDestination],
  ['zendesk', async () => (await import('#connectors/destinations/zendesk/index')).zendeskDestination],
  ['braze', async () => (await import('#connectors/destinations/braze/index')).brazeDestination],
  ['customerio', async () => (await import('#connectors/destinations/customerio/index')).customerioDestination],
  ['klaviyo', async () => (await import('#connectors/destinations/klaviyo/index')).klaviyoDestination],
  ['intercom', async () => (await import('#connectors/destinations/intercom/index')).intercomDestination],
  ['mixpanel', async () => (await import('#connectors/destinations/mixpanel/index')).mixpanelDestination],
  [
    'meta_audiences',
    async () => (await import('#connectors/destinations/meta-audiences/index')).metaAudiencesDestination,
  ],
  [
    'google_customer_match',
    async () => (await import('#connectors/destinations/google-customer-match/index')).googleCustomerMatchDestination,
  ],
  ['webhook', async () => (await import('#connectors/destinations/webhook/index')).webhookDestination],
  ['postgres', async () => (await import('#connectors/destinations/postgres/index')).postgresDestination],
  ['duckdb', async () => (await import('#connectors/destinations/duckdb/index')).duckdbDestination],
  ['airtable', async () => (await import('#connectors/destinations/airtable/index')).airtableDestination],
]);

const destinationManifests = new Map<string, DestinationManifest>(manifests.destinations);

export const catalogue: ConnectorCatalogue = connectorCatalogue(
  { sources: manifests.sources, destinations: destinationManifests },
  { sources: sourceLoaders, destinations: destinationLoaders },
  'this catalogue has its manifest but no runtime: add a loader to connectors/registry.ts',
);

/**
 * Adds a destination at run time: for tests of a connector in development, before it is listed
 * in connectors/manifests.ts and above, and for plugins loaded by the embedding program.
 */
export function registerDestination(runtime: DestinationRuntime): void {
  destinationManifests.set(runtime.type, runtime);
  destinationLoaders.set(runtime.type, async () => runtime);
}
