import type { OutboundRecord } from '#connectors/sdk/destination';
import { hashIdentifier, type IdentifierKind, type IdentifierVendor } from '#connectors/sdk/identifiers';
import type { JsonValue } from '#connectors/sdk/types';
import type { MappingConfig, SyncConfig } from '#core/config/schema';
import { canonicalJson, digest } from './canonical.ts';

interface FieldRule {
  readonly field: string;
  readonly column?: string;
  readonly value?: JsonValue;
  readonly nulls: 'skip' | 'sync';
  /** Send the SHA-256 of the value normalised as this kind of identifier, by these rules. */
  readonly hash?: { readonly normalize: IdentifierKind; readonly rules: IdentifierVendor };
}

/** A sync's mapping, compiled once per run. */
export interface Mapping {
  readonly matchField: string;
  readonly matchColumn: string;
  /** The match value is sent hashed (an audience matched on an identifier). */
  readonly matchHash?: FieldRule['hash'];
  readonly rules: readonly FieldRule[];
  /** Digest of everything that shapes the payload: a change re-sends every record. */
  readonly version: string;
  /** Model columns the mapping reads (for the schema drift check). */
  readonly columns: readonly string[];
}

export function compileMapping(
  sync: Pick<SyncConfig, 'object' | 'match' | 'mappings' | 'mode'>,
  /** Whose identifier rules a `hash:` mapping follows when it does not say (the destination's vendor). */
  defaultRules: IdentifierVendor = 'meta',
): Mapping {
  const [matchField, matchSpec] = Object.entries(sync.match)[0]!;
  const matchColumn = typeof matchSpec === 'string' ? matchSpec : matchSpec.column;
  const matchHash =
    typeof matchSpec === 'string'
      ? undefined
      : { normalize: matchSpec.normalize as IdentifierKind, rules: matchSpec.rules ?? defaultRules };
  const rules = Object.entries(sync.mappings).map(([field, m]: [string, MappingConfig]): FieldRule => {
    if (typeof m === 'string') return { field, column: m, nulls: 'skip' };
    if ('column' in m) {
      if (m.hash !== undefined && m.normalize !== undefined) {
        return {
          field,
          column: m.column,
          nulls: m.nulls,
          hash: { normalize: m.normalize as IdentifierKind, rules: m.rules ?? defaultRules },
        };
      }
      return { field, column: m.column, nulls: m.nulls };
    }
    return { field, value: m.value, nulls: 'sync' };
  });
  const columns = [...new Set([matchColumn, ...rules.flatMap((r) => (r.column ? [r.column] : []))])];
  // The mode is not part of it: switching upsert ↔ mirror (or update, insert) changes which records
  // are written, not their payloads, so it must not re-send every unchanged record.
  const version = digest(canonicalJson({ object: sync.object, match: sync.match, rules: rules as never }));
  return { matchField, matchColumn, matchHash, rules, version, columns };
}

export type MapResult =
  | { readonly ok: true; readonly record: Omit<OutboundRecord, 'op'> }
  | { readonly ok: false; readonly key: string; readonly reason: string };

class Uncoercible extends Error {}

/**
 * Turns a value into JSON Backflow can send: dates become ISO 8601 UTC, bigints numbers when
 * exact (text otherwise), binary base64. NaN, infinities and invalid dates cannot be coerced.
 */
export function normalizeValue(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new Uncoercible(`${value} is not a finite number`);
      return value;
    case 'bigint':
      return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
        ? Number(value)
        : value.toString();
    case 'object': {
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new Uncoercible('invalid date');
        return value.toISOString();
      }
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
      if (Array.isArray(value)) return value.map(normalizeValue);
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalizeValue(v)]));
    }
    default:
      throw new Uncoercible(`a ${typeof value} cannot be sent`);
  }
}

/** The text form of a primary key, as used in state keys and reports. */
export function recordKey(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value.length > 0 ? value : undefined;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return canonicalJson(normalizeValue(value));
}

/** Maps one model row to the destination's fields, or says why the row is invalid. */
export function mapRow(row: Readonly<Record<string, unknown>>, primaryKey: string, mapping: Mapping): MapResult {
  const key = recordKey(row[primaryKey]);
  if (key === undefined) return { ok: false, key: '(null)', reason: `primary key "${primaryKey}" is null` };
  if (Buffer.byteLength(key) > 1024)
    return { ok: false, key: key.slice(0, 64), reason: 'primary key is longer than 1024 bytes' };
  const fields: Record<string, JsonValue> = {};
  let match: JsonValue;
  try {
    match = normalizeValue(row[mapping.matchColumn]);
  } catch (error) {
    return { ok: false, key, reason: `column "${mapping.matchColumn}": ${(error as Error).message}` };
  }
  if (match === null || match === '') {
    return { ok: false, key, reason: `match value "${mapping.matchColumn}" is missing` };
  }
  if (mapping.matchHash) {
    const hashed = hashIdentifier(
      mapping.matchHash.normalize,
      typeof match === 'string' ? match : JSON.stringify(match),
      mapping.matchHash.rules,
    );
    if (!hashed.ok) return { ok: false, key, reason: `${mapping.matchField}: ${hashed.reason}` };
    match = hashed.hash;
  }
  for (const rule of mapping.rules) {
    let value: JsonValue;
    if (rule.column !== undefined) {
      try {
        value = normalizeValue(row[rule.column]);
      } catch (error) {
        return { ok: false, key, reason: `column "${rule.column}": ${(error as Error).message}` };
      }
    } else {
      value = rule.value ?? null;
    }
    if (value === null && rule.nulls === 'skip') continue;
    if (rule.hash && value !== null) {
      const hashed = hashIdentifier(
        rule.hash.normalize,
        typeof value === 'string' ? value : JSON.stringify(value),
        rule.hash.rules,
      );
      // The reason names the field and never the value: raw identifiers stay out of reports.
      if (!hashed.ok) return { ok: false, key, reason: `${rule.field}: ${hashed.reason}` };
      value = hashed.hash;
    }
    fields[rule.field] = value;
  }
  return { ok: true, record: { key, match, fields } };
}

/** The hash stored in state: what was sent, under which mapping. */
export function recordHash(record: Pick<OutboundRecord, 'match' | 'fields'>, mappingVersion: string): string {
  return digest(
    `${mappingVersion}\n${canonicalJson({ match: record.match, fields: record.fields as Record<string, JsonValue> })}`,
  );
}
