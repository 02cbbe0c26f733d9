import { createHash } from 'node:crypto';
import type { JsonValue } from '#connectors/sdk/types';

/** JSON with object keys sorted at every depth, so equal values always serialize equally. */
export function canonicalJson(value: JsonValue): string {
  // -0 is a value of its own (a double column can hold it): it must not hash like 0.
  if (value === 0 && Object.is(value, -0)) return '-0';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as JsonValue)}`).join(',')}}`;
}

/** 128-bit digest, base64url: enough to tell payloads apart, small enough for millions of state items. */
export function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}
