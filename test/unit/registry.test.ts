import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectorDir, manifests, runtimeModule } from '#connectors/manifests';
import { catalogue } from '#connectors/registry';
import { connectorCatalogue } from '#connectors/sdk/catalogue';
import { ConnectorConfigError } from '#core/errors';

const ROOT = path.resolve(import.meta.dirname, '../..');
const sourceTypes = [...manifests.sources.keys()];
const destinationTypes = [...manifests.destinations.keys()];

describe('the connector manifests and the registry', () => {
  it('lists every source and destination of this repository', () => {
    expect([...sourceTypes].sort()).toEqual(['duckdb', 'mysql', 'postgres', 'snowflake']);
    expect([...destinationTypes].sort()).toEqual(
      [
        'airtable',
        'braze',
        'customerio',
        'duckdb',
        'google_customer_match',
        'hubspot',
        'intercom',
        'mixpanel',
        'klaviyo',
        'mailchimp',
        'meta_audiences',
        'postgres',
        'salesforce',
        'webhook',
        'zendesk',
      ].sort(),
    );
    expect([...catalogue.sources.keys()].sort()).toEqual([...sourceTypes].sort());
    expect([...catalogue.destinations.keys()].sort()).toEqual([...destinationTypes].sort());
  });

  it('gives every declared limit the page it comes from', () => {
    for (const [type, { limits }] of manifests.destinations) {
      for (const [name, limit] of Object.entries(limits)) {
        expect(limit.value, `${type}.${name}`).toBeGreaterThan(0);
        expect(limit.doc, `${type}.${name}`).toMatch(/^(https:\/\/|docs\/)/);
      }
    }
  });

  it('takes a base URL override on every HTTP destination', () => {
    for (const type of [
      'hubspot',
      'salesforce',
      'mailchimp',
      'zendesk',
      'braze',
      'customerio',
      'intercom',
      'mixpanel',
      'klaviyo',
      'meta_audiences',
      'google_customer_match',
      'airtable',
    ]) {
      expect(Object.keys(manifests.destinations.get(type)!.optionsSchema.shape), type).toContain('base_url');
    }
  });

  it('loads a runtime for every manifest, built on that very manifest, where infra bundles it from', async () => {
    const kinds = [
      ['source', manifests.sources, (type: string) => catalogue.loadSource(type)],
      ['destination', manifests.destinations, (type: string) => catalogue.loadDestination(type)],
    ] as const;
    for (const [kind, byType, load] of kinds) {
      for (const [type, manifest] of byType) {
        const runtime = await load(type);
        expect(runtime.type, `${kind} ${type}`).toBe(type);
        expect(typeof runtime.connect, `${kind} ${type}`).toBe('function');
        // Every manifest field is the manifest's own: the runtime cannot disagree with it.
        for (const [key, value] of Object.entries(manifest)) {
          expect((runtime as unknown as Record<string, unknown>)[key], `${kind} ${type}.${key}`).toBe(value);
        }
        // The module and export a function's generated bundle entry imports (infra/bundles.ts).
        const { specifier, exportName } = runtimeModule(kind, type);
        const module = (await import(specifier)) as Record<string, unknown>;
        expect(module[exportName], `${specifier} ${exportName}`).toBe(runtime);
      }
    }
  });

  it('has a docs page for every connector, listed in the README', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const row = (word: string) => readme.split('\n').find((line) => line.startsWith(`| ${word} |`)) ?? '';
    for (const [kind, types] of [
      ['source', sourceTypes],
      ['destination', destinationTypes],
    ] as const) {
      for (const type of types) {
        const page = `docs/${kind}s/${connectorDir(type)}.md`;
        expect(existsSync(path.join(ROOT, page)), page).toBe(true);
        expect(row(kind), `README concepts row "${kind}"`).toContain(`\`${type}\``);
      }
    }
  });

  it('says which types it knows when asked for an unknown one, and where a known one cannot run', async () => {
    await expect(catalogue.loadDestination('hubspott')).rejects.toThrow(
      new ConnectorConfigError(`no destination connector of type "hubspott"; known: ${destinationTypes.join(', ')}`),
    );
    const bundle = connectorCatalogue(
      manifests,
      { sources: new Map(), destinations: new Map() },
      'this function bundles another destination',
    );
    await expect(bundle.loadSource('snowflake')).rejects.toThrow(
      'source type "snowflake" cannot run here: this function bundles another destination',
    );
  });
});
