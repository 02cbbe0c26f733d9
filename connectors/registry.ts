import { brazeDestination } from '#connectors/destinations/braze/index';
import { duckdbDestination } from '#connectors/destinations/duckdb/index';
import { hubspotDestination } from '#connectors/destinations/hubspot/index';
import { intercomDestination } from '#connectors/destinations/intercom/index';
import { mailchimpDestination } from '#connectors/destinations/mailchimp/index';
import { postgresDestination } from '#connectors/destinations/postgres/index';
import { salesforceDestination } from '#connectors/destinations/salesforce/index';
import { webhookDestination } from '#connectors/destinations/webhook/index';
import { zendeskDestination } from '#connectors/destinations/zendesk/index';
import type { DestinationDefinition } from '#connectors/sdk/destination';
import type { SourceDefinition } from '#connectors/sdk/source';
import { duckdbSource } from '#connectors/sources/duckdb/index';
import { mysqlSource } from '#connectors/sources/mysql/index';
import { postgresSource } from '#connectors/sources/postgres/index';
import { snowflakeSource } from '#connectors/sources/snowflake/index';

const sources = new Map<string, SourceDefinition>(
  [duckdbSource, postgresSource, mysqlSource, snowflakeSource].map((s) => [s.type, s as unknown as SourceDefinition]),
);

const destinations = new Map<string, DestinationDefinition>(
  [
    hubspotDestination,
    salesforceDestination,
    mailchimpDestination,
    zendeskDestination,
    brazeDestination,
    intercomDestination,
    webhookDestination,
    postgresDestination,
    duckdbDestination,
  ].map((d) => [d.type, d as unknown as DestinationDefinition]),
);

export function getSource(type: string): SourceDefinition | undefined {
  return sources.get(type);
}

export function getDestination(type: string): DestinationDefinition | undefined {
  return destinations.get(type);
}

export const sourceTypes = (): string[] => [...sources.keys()];
export const destinationTypes = (): string[] => [...destinations.keys()];

/**
 * Adds a destination type at run time. Connectors in this repository are listed above; this is
 * for tests of a connector in development and for plugins loaded by the embedding program.
 */
export function registerDestination(definition: DestinationDefinition | { type: string }): void {
  destinations.set(definition.type, definition as DestinationDefinition);
}
