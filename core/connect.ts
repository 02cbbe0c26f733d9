import type { ConnectorCatalogue, ConnectorManifests } from '#connectors/sdk/catalogue';
import type { DestinationConnection, DestinationManifest } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import type { SourceConnection, SourceManifest } from '#connectors/sdk/source';
import type { RequestPace } from '#connectors/sdk/types';
import type { Config, ConnectorConfig } from '#core/config/load';
import { ConnectorConfigError } from './errors.ts';
import { lanePace, type Pacer } from './pacing.ts';
import type { Secrets } from './ports.ts';

/** Objects merge key by key, so a secret can fill `connection.password` and keep the rest. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

async function resolveOptions(
  kind: 'source' | 'destination',
  connector: ConnectorConfig,
  manifest: SourceManifest | DestinationManifest,
  secrets: Secrets,
): Promise<unknown> {
  const secret = connector.secret ? await secrets.get(connector.secret) : {};
  const parsed = manifest.optionsSchema.safeParse(deepMerge(connector.options, secret));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ');
    throw new ConnectorConfigError(
      `${kind} ${connector.name} (${connector.type}): options incomplete after merging secret ${connector.secret ?? '(none)'}: ${problems}`,
    );
  }
  return parsed.data;
}

/**
 * Opens a source of the config: its options (merged with its secret) are checked against the
 * manifest before the runtime, and with it the warehouse driver, is loaded from `connectors`.
 */
export async function connectSource(
  connectors: ConnectorCatalogue,
  config: Config,
  name: string,
  secrets: Secrets,
  tag?: string,
): Promise<SourceConnection> {
  const connector = config.sources[name];
  const manifest = connector && connectors.sources.get(connector.type);
  if (!connector || !manifest) throw new ConnectorConfigError(`no source named ${name}`);
  const options = await resolveOptions('source', connector, manifest, secrets);
  const runtime = await connectors.loadSource(connector.type);
  return runtime.connect(options as never, { projectDir: config.projectDir, tag });
}

/**
 * Opens a destination of the config, as connectSource does; every batch is formatted as its
 * manifest says. With `pace`, every request the connection makes takes its slot from the lane.
 */
export async function connectDestination(
  connectors: ConnectorCatalogue,
  config: Config,
  name: string,
  secrets: Secrets,
  tag?: string,
  pace?: RequestPace,
  purpose?: 'write' | 'discover',
): Promise<DestinationConnection> {
  const connector = config.destinations[name];
  const manifest = connector && connectors.destinations.get(connector.type);
  if (!connector || !manifest) throw new ConnectorConfigError(`no destination named ${name}`);
  const options = await resolveOptions('destination', connector, manifest, secrets);
  const runtime = await connectors.loadDestination(connector.type);
  const connection = await runtime.connect(options as never, {
    projectDir: config.projectDir,
    tag,
    pace,
    purpose: purpose ?? (pace ? 'write' : 'discover'),
  });
  return withFormats(connection, manifest.formats);
}

/** Requests per second of a lane: its override, else the connector's documented limit. */
export function requestsPerSecondOf(connectors: ConnectorManifests, config: Config, lane: string): number | undefined {
  const destination = config.destinations[lane];
  return (
    destination?.lane.requests_per_second ??
    connectors.destinations.get(destination?.type ?? '')?.limits.requestsPerSecond?.value
  );
}

/** The pace of a lane's connection: every request it makes takes a slot of the lane's schedule. */
export function paceOfLane(
  connectors: ConnectorManifests,
  config: Config,
  lane: string,
  pacer: Pacer,
): RequestPace | undefined {
  const requestsPerSecond = requestsPerSecondOf(connectors, config, lane);
  return requestsPerSecond ? lanePace(pacer, { lane, requestsPerSecond }) : undefined;
}

/** Records per destination call: the lane override, else the connector's documented batch size. */
export function batchSizeOf(connectors: ConnectorManifests, config: Config, destination: string): number {
  const lane = config.destinations[destination];
  const manifest = lane && connectors.destinations.get(lane.type);
  return lane?.lane.batch_size ?? manifest?.limits.batchSize.value ?? 100;
}
