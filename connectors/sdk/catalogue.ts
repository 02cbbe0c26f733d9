import type { DestinationManifest, DestinationRuntime } from './destination.ts';
import { ConnectorConfigError } from './errors.ts';
import type { SourceManifest, SourceRuntime } from './source.ts';

/**
 * Every connector type a program knows, by its manifest: what the config loader, the planner and
 * `cdk synth` need (options, secret keys, modes, limits), without any vendor driver.
 */
export interface ConnectorManifests {
  readonly sources: ReadonlyMap<string, SourceManifest>;
  readonly destinations: ReadonlyMap<string, DestinationManifest>;
}

/**
 * Manifests, and the runtimes a program can load. Core never imports connectors: it is handed a
 * catalogue. The CLI's (`connectors/registry.ts`) loads any runtime on first use; a Lambda
 * bundle's holds only the runtimes its function uses, bundled in.
 */
export interface ConnectorCatalogue extends ConnectorManifests {
  loadSource(type: string): Promise<SourceRuntime>;
  loadDestination(type: string): Promise<DestinationRuntime>;
}

export type RuntimeLoader<Runtime> = () => Promise<Runtime>;

export function connectorManifests(
  sources: readonly SourceManifest[],
  destinations: readonly DestinationManifest[],
): ConnectorManifests {
  return {
    sources: new Map(sources.map((s) => [s.type, s])),
    destinations: new Map(destinations.map((d) => [d.type, d])),
  };
}

/**
 * A catalogue of `manifests` whose runtimes come from `loaders`, by type. `unavailable` ends the
 * error for a known type without a loader: where the runtimes are, and what to do.
 */
export function connectorCatalogue(
  manifests: ConnectorManifests,
  loaders: {
    readonly sources: ReadonlyMap<string, RuntimeLoader<SourceRuntime>>;
    readonly destinations: ReadonlyMap<string, RuntimeLoader<DestinationRuntime>>;
  },
  unavailable: string,
): ConnectorCatalogue {
  const load = async <Runtime>(
    kind: 'source' | 'destination',
    known: ReadonlyMap<string, unknown>,
    from: ReadonlyMap<string, RuntimeLoader<Runtime>>,
    type: string,
  ): Promise<Runtime> => {
    const loader = from.get(type);
    if (!loader) {
      throw new ConnectorConfigError(
        known.has(type)
          ? `${kind} type "${type}" cannot run here: ${unavailable}`
          : `no ${kind} connector of type "${type}"; known: ${[...known.keys()].join(', ')}`,
      );
    }
    return loader();
  };
  return {
    sources: manifests.sources,
    destinations: manifests.destinations,
    loadSource: (type) => load('source', manifests.sources, loaders.sources, type),
    loadDestination: (type) => load('destination', manifests.destinations, loaders.destinations, type),
  };
}
