import type { JsonValue } from './types.ts';

/**
 * JSON text of a value, like `JSON.stringify` but keeping a negative zero (`JSON.stringify(-0)` is
 * `"0"`): a double's sign is part of its value.
 */
export function toJson(value: JsonValue): string {
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : JSON.stringify(value);
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`)
    .join(',')}}`;
}

/**
 * The JSON text of a `json`-typed field's value. Sources yield such values as the warehouse's own
 * JSON text, numbers exact; a parsed value (queued by a Backflow version that parsed JSON columns)
 * is serialized.
 */
export function jsonText(value: JsonValue): string {
  return typeof value === 'string' ? value : toJson(value);
}

/** A JSON number as text (`-0`, `2.50`, `1e+20`), as opposed to `NaN`, `Infinity` or other words. */
export function isJsonNumber(text: string): boolean {
  return /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(text);
}

/** Matches a UTF-16 surrogate without its pair (a well-formed pair is one code point, not matched). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Why a text cannot be stored as Unicode text, if it cannot: an unpaired UTF-16 surrogate (Node
 * would silently write U+FFFD in its place), or a NUL character when `nulRefusedBy` names what
 * refuses it (`PostgreSQL text`). `subject` names the value in the reason (`text`, `JSON`).
 */
export function unstorableText(text: string, nulRefusedBy?: string, subject = 'text'): string | undefined {
  const surrogate = LONE_SURROGATE.exec(text);
  if (surrogate) {
    const code = surrogate[0].charCodeAt(0).toString(16).toUpperCase();
    return `${subject} contains an unpaired UTF-16 surrogate (U+${code}), which is not valid Unicode: fix the value in the model`;
  }
  if (nulRefusedBy !== undefined && text.includes('\u0000')) {
    return `${subject} contains a NUL character (U+0000), which ${nulRefusedBy} cannot store`;
  }
  return undefined;
}

/**
 * Why JSON text cannot be stored, if it cannot: it does not parse, or one of its strings (keys
 * included) fails `check`. Parsing only validates: the text itself is what gets written.
 */
export function unstorableJson(
  text: string,
  check: (s: string) => string | undefined = () => undefined,
): string | undefined {
  let found: string | undefined;
  try {
    JSON.parse(text, (key: string, value: unknown) => {
      found ??= check(key) ?? (typeof value === 'string' ? check(value) : undefined);
      return value;
    });
  } catch (error) {
    return `not valid JSON text (${(error as Error).message})`;
  }
  return found;
}
