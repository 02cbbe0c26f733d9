import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type * as z from 'zod';
import type { ConnectorManifests } from '#connectors/sdk/catalogue';
import { SYNC_MODES, type SyncMode } from '#connectors/sdk/types';
import { ConfigFileError, type ConfigIssue } from '#core/errors';
import { compileRules, dialectOf, type SegmentConfig, segmentModelName, segmentSql } from '../segments.ts';
import { locate } from './locate.ts';
import {
  configSchema,
  type LaneConfig,
  type ModelConfig,
  type MonitoringConfig,
  type RawConfig,
  type SyncConfig,
} from './schema.ts';
import { didYouMean } from './suggest.ts';
import { syntaxProblems } from './syntax.ts';

export interface ConnectorConfig {
  readonly name: string;
  readonly type: string;
  /** Secret whose JSON is merged over `options` at connect time. */
  readonly secret: string | undefined;
  /** The connector's options from the file, validated with the secret-only keys optional. */
  readonly options: Record<string, unknown>;
}

export interface DestinationConfig extends ConnectorConfig {
  readonly lane: LaneConfig;
}

export interface ResolvedSync extends SyncConfig {
  readonly id: string;
}

/** A validated backflow.yml. */
export interface Config {
  readonly file: string;
  readonly projectDir: string;
  readonly sources: Readonly<Record<string, ConnectorConfig>>;
  /**
   * The models, and one per segment (`segment:<name>`): a segment is read as a model of the rows
   * it holds, without a cursor (every run reads it whole, so members who left are seen).
   */
  readonly models: Readonly<Record<string, ModelConfig>>;
  readonly segments: Readonly<Record<string, SegmentConfig>>;
  readonly destinations: Readonly<Record<string, DestinationConfig>>;
  readonly syncs: Readonly<Record<string, ResolvedSync>>;
  readonly monitoring: MonitoringConfig;
}

type Path = readonly PropertyKey[];

const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Reads and validates a config file; throws ConfigFileError listing every problem with file:line.
 * Connector types and options are checked against `connectors`: manifests only, no driver is loaded.
 */
export function loadConfig(file: string, connectors: ConnectorManifests, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigFileError([
      { file, line: 1, column: 1, path: '', message: `cannot read the config file (${(error as Error).message})` },
    ]);
  }
  return parseConfig(text, file, connectors, env);
}

export function parseConfig(
  text: string,
  file: string,
  connectors: ConnectorManifests,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  const display = path.relative(process.cwd(), file) || file;
  const issues: ConfigIssue[] = [];
  const at = (p: Path, message: string, atKey = false) => {
    const pos = locate(doc, counter, p, atKey);
    issues.push({ file: display, line: pos.line, column: pos.column, path: p.map(String).join('.'), message });
  };

  // The schema is checked only on a sound document: on a broken one, every key the parser lost
  // would come back as a misleading "required" or "unknown key" problem.
  for (const problem of syntaxProblems(doc, counter, text)) issues.push({ file: display, path: '', ...problem });
  if (issues.length > 0) throw new ConfigFileError(issues);

  const raw = interpolate(doc.toJS() as unknown, [], env, at);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) for (const issue of parsed.error.issues) reportZodIssue(issue, [], raw, at);
  // References and connector options are checked even when the shape is wrong elsewhere, so one
  // run of `backflow validate` lists every problem.
  const loose = (parsed.success ? parsed.data : raw) as Partial<Record<keyof RawConfig, unknown>>;
  const rawSources = section(loose.sources);
  const rawModels = section(loose.models);
  const rawDestinations = section(loose.destinations);

  const sourceTypes = [...connectors.sources.keys()];
  const destinationTypes = [...connectors.destinations.keys()];
  const sources: Record<string, ConnectorConfig> = {};
  for (const [name, source] of Object.entries(rawSources)) {
    if (typeof source.type !== 'string') continue;
    const manifest = connectors.sources.get(source.type);
    if (!manifest) {
      at(
        ['sources', name, 'type'],
        `unknown source type "${source.type}"${didYouMean(source.type, sourceTypes)}; expected one of ${sourceTypes.join(', ')}`,
      );
      continue;
    }
    const options = checkOptions(['sources', name], source, manifest.optionsSchema, manifest.secretKeys, at);
    sources[name] = { name, type: source.type, secret: source.secret as string | undefined, options };
  }

  const destinations: Record<string, DestinationConfig> = {};
  for (const [name, destination] of Object.entries(rawDestinations)) {
    if (typeof destination.type !== 'string') continue;
    const manifest = connectors.destinations.get(destination.type);
    if (!manifest) {
      at(
        ['destinations', name, 'type'],
        `unknown destination type "${destination.type}"${didYouMean(destination.type, destinationTypes)}; expected one of ${destinationTypes.join(', ')}`,
      );
      continue;
    }
    const { lane, ...rest } = destination;
    const options = checkOptions(['destinations', name], rest, manifest.optionsSchema, manifest.secretKeys, at);
    destinations[name] = {
      name,
      type: destination.type,
      secret: destination.secret as string | undefined,
      options,
      lane: (lane as LaneConfig | undefined) ?? { max_receives: 5, retry_budget_seconds: 1800 },
    };
  }

  for (const [name, model] of Object.entries(rawModels)) {
    if (typeof model.source === 'string' && !(model.source in rawSources)) {
      at(
        ['models', name, 'source'],
        `no source named "${model.source}"${didYouMean(model.source, Object.keys(rawSources))}`,
      );
    }
  }

  const rawSegments = section(loose.segments);
  for (const [name, segment] of Object.entries(rawSegments)) {
    if (typeof segment.model === 'string' && !(segment.model in rawModels)) {
      at(
        ['segments', name, 'model'],
        `no model named "${segment.model}"${didYouMean(segment.model, Object.keys(rawModels))}`,
      );
    }
    if (typeof segment.source === 'string' && !(segment.source in rawSources)) {
      at(
        ['segments', name, 'source'],
        `no source named "${segment.source}"${didYouMean(segment.source, Object.keys(rawSources))}`,
      );
    }
  }

  for (const [id, sync] of Object.entries(section(loose.syncs))) {
    if ((sync.model === undefined) === (sync.segment === undefined)) {
      at(['syncs', id], 'a sync needs exactly one of `model` or `segment`');
    }
    if (typeof sync.model === 'string' && !(sync.model in rawModels)) {
      at(['syncs', id, 'model'], `no model named "${sync.model}"${didYouMean(sync.model, Object.keys(rawModels))}`);
    }
    if (typeof sync.segment === 'string' && !(sync.segment in rawSegments)) {
      at(
        ['syncs', id, 'segment'],
        `no segment named "${sync.segment}"${didYouMean(sync.segment, Object.keys(rawSegments))}`,
      );
    }
    if (typeof sync.destination === 'string') {
      const destination = rawDestinations[sync.destination];
      if (!destination) {
        at(
          ['syncs', id, 'destination'],
          `no destination named "${sync.destination}"${didYouMean(sync.destination, Object.keys(rawDestinations))}`,
        );
      } else {
        const manifest =
          typeof destination.type === 'string' ? connectors.destinations.get(destination.type) : undefined;
        const mode = sync.mode ?? 'upsert';
        if (manifest && SYNC_MODES.includes(mode as SyncMode) && !manifest.modes.includes(mode as SyncMode)) {
          at(
            ['syncs', id, 'mode'],
            `destination type "${destination.type}" supports modes ${manifest.modes.join(', ')}, not "${mode}"`,
          );
        }
      }
    }
    const matchField = Object.keys(section(sync.match))[0];
    if (matchField !== undefined && matchField in section(sync.mappings)) {
      at(
        ['syncs', id, 'mappings', matchField],
        `"${matchField}" is the match key: it is set from \`match\`, remove it from mappings`,
        true,
      );
    }
  }

  if (issues.length > 0 || !parsed.success) throw new ConfigFileError(sortIssues(issues));
  const config = parsed.data;
  const models: Record<string, ModelConfig> = { ...config.models };
  for (const [name, segment] of Object.entries(config.segments)) {
    models[segmentModelName(name)] = segmentModel(segment, config.models, sources);
  }
  const syncs = Object.fromEntries(
    Object.entries(config.syncs).map(([id, sync]) => [
      id,
      {
        ...sync,
        id,
        model: sync.segment !== undefined ? segmentModelName(sync.segment) : sync.model!,
        match: withHashRules(sync.match, destinations[sync.destination]?.type),
        mappings: withHashRules(sync.mappings, destinations[sync.destination]?.type),
      },
    ]),
  );
  const projectDir = path.dirname(path.resolve(file));
  return {
    file: path.resolve(file),
    projectDir,
    sources,
    models,
    segments: config.segments,
    destinations,
    syncs,
    monitoring: config.monitoring ?? {},
  };
}

/**
 * A `hash:` mapping normalises by its destination vendor's rules unless it names them: Google's
 * for Customer Match (it also drops dots in Gmail addresses), Meta's (trim, lower case) elsewhere.
 */
function withHashRules<T extends Record<string, unknown>>(mappings: T, destinationType: string | undefined): T {
  const rules = destinationType === 'google_customer_match' ? 'google' : 'meta';
  return Object.fromEntries(
    Object.entries(mappings).map(([field, m]) => [
      field,
      typeof m === 'object' && m !== null && 'hash' in m && m.hash !== undefined && !('rules' in m && m.rules)
        ? { ...m, rules }
        : m,
    ]),
  ) as T;
}

/**
 * The model a segment is read as: a model's rows where the predicate holds (`where` as written,
 * `rules` compiled to the source's dialect), or the segment's own query. No cursor: a member who
 * left the segment is only seen by reading the segment whole.
 */
function segmentModel(
  segment: SegmentConfig,
  models: Readonly<Record<string, ModelConfig>>,
  sources: Readonly<Record<string, ConnectorConfig>>,
): ModelConfig {
  if (segment.model !== undefined) {
    const model = models[segment.model]!;
    const predicate =
      segment.where ?? compileRules(segment.rules!, dialectOf(sources[model.source]?.type ?? 'postgres'));
    return {
      source: model.source,
      sql: segmentSql(model.sql, predicate),
      primary_key: model.primary_key,
      page_size: segment.page_size ?? model.page_size,
      description: segment.description,
    };
  }
  return {
    source: segment.source!,
    sql: segment.sql!,
    primary_key: segment.primary_key!,
    page_size: segment.page_size ?? 10_000,
    description: segment.description,
  };
}

/** The entries of a map section that are themselves maps (others were reported by the schema). */
function section(value: unknown): Record<string, Record<string, unknown>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== null && typeof v === 'object' && !Array.isArray(v)),
  ) as Record<string, Record<string, unknown>>;
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Replaces `${VAR}` and `${VAR:-default}` in every string; `$${` escapes a literal `${`. */
function interpolate(
  value: unknown,
  p: PropertyKey[],
  env: NodeJS.ProcessEnv,
  at: (p: Path, m: string) => void,
): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (match, variable: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${';
      const found = env[variable!];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      at(
        p,
        `environment variable ${variable} is not set (referenced as ${match}; use \${${variable}:-default} for a default)`,
      );
      return match;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...p, i], env, at));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [...p, k], env, at)]));
  }
  return value;
}

function checkOptions(
  base: Path,
  block: Record<string, unknown>,
  schema: z.ZodObject,
  secretKeys: readonly string[],
  at: (p: Path, m: string, atKey?: boolean) => void,
): Record<string, unknown> {
  const { type: _type, secret: _secret, ...options } = block;
  for (const key of secretKeys) {
    const keyPath = key.split('.');
    if (valueAt(options, keyPath) !== undefined) {
      at(
        [...base, ...keyPath],
        `"${key}" is a secret: do not write it in the config; put it in the secret named by \`secret:\` (see docs/config.md#secrets)`,
        true,
      );
    }
  }
  // Secret-only keys arrive at connect time, merged from the secret: not required in the file.
  const optionalSecrets = Object.fromEntries(
    secretKeys.filter((k) => k in schema.shape).map((k) => [k, true as const]),
  );
  const result = schema.partial(optionalSecrets as never).safeParse(options);
  if (result.success) return result.data as Record<string, unknown>;
  for (const issue of result.error.issues) reportZodIssue(issue, base, options, at, schema);
  return options;
}

function valueAt(root: unknown, p: readonly PropertyKey[]): unknown {
  let current = root;
  for (const segment of p) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return `${typeof value} ${JSON.stringify(value)}`;
}

type ZodIssue = z.core.$ZodIssue;

function reportZodIssue(
  issue: ZodIssue,
  base: Path,
  data: unknown,
  at: (p: Path, m: string, atKey?: boolean) => void,
  schema: z.ZodType = configSchema,
): void {
  const local = issue.path as PropertyKey[];
  const full = [...base, ...local];
  const received = valueAt(data, local);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = keysAt(schema, local);
      for (const key of issue.keys) {
        at(
          [...full, key],
          `unknown key "${key}"${didYouMean(key, allowed)}; expected one of ${allowed.join(', ')}`,
          true,
        );
      }
      return;
    }
    case 'invalid_type':
      if (received === undefined) at(full, `required: expected ${issue.expected}`);
      else at(full, `expected ${issue.expected}, got ${describe(received)}`);
      return;
    case 'invalid_value': {
      const values = issue.values.map((v) => String(v));
      const hint = typeof received === 'string' ? didYouMean(received, values) : '';
      at(
        full,
        `expected ${values.length === 1 ? values[0] : `one of ${values.join(' | ')}`}, got ${describe(received)}${hint}`,
      );
      return;
    }
    case 'invalid_union':
      at(full, `expected a column name, { column, nulls: skip|sync } or { value }, got ${describe(received)}`);
      return;
    default:
      at(full, issue.message);
  }
}

interface ZodDefLike {
  type: string;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
}

/** The keys a strict object accepts at a path of the schema, for "did you mean". */
function keysAt(schema: z.ZodType, p: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = schema;
  const unwrap = (s: z.ZodType | undefined): z.ZodType | undefined => {
    let node = s;
    for (let i = 0; i < 10 && node; i++) {
      const def = node._zod.def as unknown as ZodDefLike;
      if (def.innerType) node = def.innerType;
      else if (def.type === 'pipe' && def.in) node = def.in;
      else if (def.type === 'union' && def.options)
        node = def.options.find((o) => (o._zod.def as unknown as ZodDefLike).type === 'object');
      else break;
    }
    return node;
  };
  for (const segment of p) {
    current = unwrap(current);
    if (!current) return [];
    const def = current._zod.def as unknown as ZodDefLike;
    if (def.type === 'object') current = def.shape?.[String(segment)];
    else if (def.type === 'record') current = def.valueType;
    else return [];
  }
  current = unwrap(current);
  const def = current?._zod.def as unknown as ZodDefLike | undefined;
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}
