import { brazeDestinationManifest } from '#connectors/destinations/braze/manifest';
import { duckdbDestinationManifest } from '#connectors/destinations/duckdb/manifest';
import { hubspotDestinationManifest } from '#connectors/destinations/hubspot/manifest';
import { intercomDestinationManifest } from '#connectors/destinations/intercom/manifest';
import { mailchimpDestinationManifest } from '#connectors/destinations/mailchimp/manifest';
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
    intercomDestinationManifest,
    webhookDestinationManifest,
    postgresDestinationManifest,
    duckdbDestinationManifest,
  ],
);

/**
 * Where a connector's runtime lives, by convention: the export `<type>Source` or
 * `<type>Destination` of `connectors/<kind>s/<type>/index.ts` (`#connectors/<kind>s/<type>/index`).
 * Infra generates each function's bundle entry from this, without importing the runtime.
 */
export function runtimeModule(
  kind: 'source' | 'destination',
  type: string,
): { readonly specifier: string; readonly exportName: string } {
  return {
    specifier: `#connectors/${kind}s/${type}/index`,
    exportName: `${type}${kind === 'source' ? 'Source' : 'Destination'}`,
  };
}
