import { airtableDestinationManifest } from '#connectors/destinations/airtable/manifest';
import { brazeDestinationManifest } from '#connectors/destinations/braze/manifest';
import { customerioDestinationManifest } from '#connectors/destinations/customerio/manifest';
import { duckdbDestinationManifest } from '#connectors/destinations/duckdb/manifest';
import { googleCustomerMatchDestinationManifest } from '#connectors/destinations/google-customer-match/manifest';
import { hubspotDestinationManifest } from '#connectors/destinations/hubspot/manifest';
import { intercomDestinationManifest } from '#connectors/destinations/intercom/manifest';
import { klaviyoDestinationManifest } from '#connectors/destinations/klaviyo/manifest';
import { mailchimpDestinationManifest } from '#connectors/destinations/mailchimp/manifest';
import { metaAudiencesDestinationManifest } from '#connectors/destinations/meta-audiences/manifest';
import { mixpanelDestinationManifest } from '#connectors/destinations/mixpanel/manifest';
import { postgresDestinationManifest } from '#connectors/destinations/postgres/manifest';
import { salesforceDestinationManifest } from '#connectors/destinations/salesforce/manifest';
import { webhookDestinationManifest } from '#connectors/destinations/webhook/manifest';
import { zendeskDestinationManifest } from '#connectors/destinations/zendesk/manifest';
import { type ConnectorManifests, connectorManifests } from '#connectors/sdk/catalogue';
import { duckdbSourceManifest } from '#connectors/sources/duckdb/manifest';
import { mysqlSourceManifest } from '#connectors/sources/mysql/manifest';
import { postgresSourceManifest } from '#connectors/sources/postgres/manifest';
import { snowflakeSourceManifest } from '#connectors/sources/snowflake/manifest';

/**
 * The manifest of every connector in this repository: zod and plain data, no vendor driver. The
 * config loader, the CLI, `cdk synth` and every Lambda bundle read these; the runtimes are loaded
 * apart (connectors/registry.ts, or bundled per function by infra/bundles.ts).
 */
export const manifests: ConnectorManifests = connectorManifests(
  [duckdbSourceManifest, postgresSourceManifest, mysqlSourceManifest, snowflakeSourceManifest],
  [
    hubspotDestinationManifest,
    salesforceDestinationManifest,
    mailchimpDestinationManifest,
    zendeskDestinationManifest,
    brazeDestinationManifest,
    customerioDestinationManifest,
    intercomDestinationManifest,
    mixpanelDestinationManifest,
    klaviyoDestinationManifest,
    metaAudiencesDestinationManifest,
    googleCustomerMatchDestinationManifest,
    webhookDestinationManifest,
    postgresDestinationManifest,
    duckdbDestinationManifest,
    airtableDestinationManifest,
  ],
);

/**
 * Where a connector's runtime lives, by convention: the export `<type>Source` or
 * `<type>Destination` of `connectors/<kind>s/<type>/index.ts` (`#connectors/<kind>s/<type>/index`).
 * A type in snake case lives in kebab case and exports in camel case: `meta_audiences` is
 * `metaAudiencesDestination` of `connectors/destinations/meta-audiences/index.ts` (its docs page
 * `docs/destinations/meta-audiences.md`). Infra generates each function's bundle entry from this,
 * without importing the runtime.
 */
export function runtimeModule(
  kind: 'source' | 'destination',
  type: string,
): { readonly specifier: string; readonly exportName: string } {
  const camel = type.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return {
    specifier: `#connectors/${kind}s/${connectorDir(type)}/index`,
    exportName: `${camel}${kind === 'source' ? 'Source' : 'Destination'}`,
  };
}

/** The folder (and docs page name) of a connector type: snake case becomes kebab case. */
export function connectorDir(type: string): string {
  return type.replaceAll('_', '-');
}
