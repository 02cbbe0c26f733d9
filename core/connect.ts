import { getDestination, getSource } from '#connectors/registry';
import type { DestinationConnection, DestinationDefinition } from '#connectors/sdk/destination';
import { withFormats } from '#connectors/sdk/formats';
import type { SourceConnection, SourceDefinition } from '#connectors/sdk/source';
import type { Config, ConnectorConfig } from '#core/config/load';
import { ConnectorConfigError } from './errors.ts';
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
  definition: SourceDefinition | DestinationDefinition,
  secrets: Secrets,
): Promise<unknown> {
  const secret = connector.secret ? await secrets.get(connector.secret) : {};
  const parsed = definition.optionsSchema.safeParse(deepMerge(connector.options, secret));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ');
    throw new ConnectorConfigError(
      `${kind} ${connector.name} (${connector.type}): options incomplete after merging secret ${connector.secret ?? '(none)'}: ${problems}`,
    );
  }
  return parsed.data;
}

export async function connectSource(
  config: Config,
  name: string,
  secrets: Secrets,
  tag?: string,
): Promise<SourceConnection> {
  const connector = config.sources[name];
  const definition = connector && getSource(connector.type);
  if (!connector || !definition) throw new ConnectorConfigError(`no source named ${name}`);
  const options = await resolveOptions('source', connector, definition, secrets);
  return definition.connect(options as never, { projectDir: config.projectDir, tag });
}

export async function connectDestination(
  config: Config,
  name: string,
  secrets: Secrets,
  tag?: string,
): Promise<{ connection: DestinationConnection; definition: DestinationDefinition }> {
  const connector = config.destinations[name];
  const definition = connector && getDestination(connector.type);
  if (!connector || !definition) throw new ConnectorConfigError(`no destination named ${name}`);
  const options = await resolveOptions('destination', connector, definition, secrets);
  const connection = await definition.connect(options as never, { projectDir: config.projectDir, tag });
  return { connection: withFormats(connection, definition.formats), definition };
}

/** Records per destination call: the lane override, else the connector's documented batch size. */
export function batchSizeOf(config: Config, destination: string): number {
  const lane = config.destinations[destination];
  const definition = lane && getDestination(lane.type);
  return lane?.lane.batch_size ?? definition?.limits.batchSize.value ?? 100;
}
