import type { FieldInfo } from '#connectors/sdk/destination';
import type { FieldType, JsonValue } from '#connectors/sdk/types';

/**
 * Field discovery from the sObject Describe resource (`GET /sobjects/{name}/describe`,
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm),
 * whose field properties are those of the SOAP `Field` type
 * (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_describesobjects_describesobjectresult.htm).
 */

export interface DescribeField {
  readonly name: string;
  readonly type: string;
  readonly length?: number;
  readonly nillable: boolean;
  readonly createable: boolean;
  readonly updateable: boolean;
  readonly externalId?: boolean;
  readonly idLookup?: boolean;
  readonly unique?: boolean;
  readonly custom?: boolean;
  readonly defaultedOnCreate?: boolean;
}

export interface Describe {
  readonly name: string;
  readonly fields: readonly DescribeField[];
}

/** Reads a describe answer, keeping what Backflow needs; undefined when it is not one. */
export function readDescribe(body: unknown): Describe | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { name, fields } = body as { name?: unknown; fields?: unknown };
  if (typeof name !== 'string' || !Array.isArray(fields)) return undefined;
  const read: DescribeField[] = [];
  for (const f of fields as Record<string, unknown>[]) {
    if (typeof f?.name !== 'string' || typeof f.type !== 'string') continue;
    read.push({
      name: f.name,
      type: f.type,
      length: typeof f.length === 'number' ? f.length : undefined,
      nillable: f.nillable === true,
      createable: f.createable === true,
      updateable: f.updateable === true,
      externalId: f.externalId === true,
      idLookup: f.idLookup === true,
      unique: f.unique === true,
      custom: f.custom === true,
      defaultedOnCreate: f.defaultedOnCreate === true,
    });
  }
  return { name, fields: read };
}

/** Salesforce field types (the SOAP `fieldType` enumeration) as Backflow's normalized types. */
export function normalizedType(type: string): FieldType {
  switch (type) {
    case 'boolean':
      return 'boolean';
    case 'int':
    case 'long':
      return 'integer';
    case 'double':
    case 'currency':
    case 'percent':
      return 'number';
    case 'date':
      return 'date';
    case 'datetime':
      return 'timestamp';
    case 'base64':
      return 'binary';
    case 'address':
    case 'location':
      return 'json';
    default:
      // id, reference, string, textarea, email, phone, url, picklist, multipicklist, combobox,
      // encryptedstring, time, anyType
      return 'string';
  }
}

/**
 * A field an upsert can match on: an External ID field, or on standard objects any field with the
 * `idLookup` property (the SOAP upsert() rule; `Id` itself matches by record Id).
 */
export function isMatchable(field: DescribeField): boolean {
  return field.externalId === true || field.idLookup === true;
}

/**
 * The writable fields (and the matchable ones, `Id` included). `required`: what a create must
 * set — not nillable, createable, and without a default on create.
 */
export function fieldInfos(describe: Describe): FieldInfo[] {
  return describe.fields
    .filter((f) => f.createable || f.updateable || isMatchable(f))
    .map((f) => ({
      name: f.name,
      type: normalizedType(f.type),
      required: !f.nillable && f.createable && f.defaultedOnCreate !== true && f.type !== 'boolean',
      kind: f.custom ? 'custom' : 'known',
      matchable: isMatchable(f),
    }));
}

const STRING_TYPES = new Set([
  'id',
  'reference',
  'string',
  'textarea',
  'email',
  'phone',
  'url',
  'picklist',
  'multipicklist',
  'combobox',
  'encryptedstring',
  'time',
  'base64',
]);

export type Coerced =
  | { readonly ok: true; readonly value: JsonValue }
  | { readonly ok: false; readonly reason: string };

/**
 * Brings one value to the JSON type the field's REST deserializer takes, or says why it cannot:
 * Salesforce refuses the *whole* request (400 JSON_PARSER_ERROR) for one undeserializable value,
 * so a bad value is caught here and only its record is refused.
 */
export function coerce(field: DescribeField, value: JsonValue): Coerced {
  if (value === null) return { ok: true, value: null };
  const t = field.type;
  const expected = (what: string) => ({
    ok: false as const,
    reason: `expected ${what} for ${field.name} (${t}), got ${JSON.stringify(value).slice(0, 60)}`,
  });
  if (STRING_TYPES.has(t)) {
    if (t === 'multipicklist' && typeof value === 'string') {
      // A JSON column holding a list arrives as its JSON text (the SDK keeps JSON text for text
      // fields): the list's values, joined, are what the picklist takes.
      const list = jsonList(value);
      if (list) return { ok: true, value: list.join(';') };
    }
    if (typeof value === 'string') return { ok: true, value };
    if (typeof value === 'number' || typeof value === 'boolean') return { ok: true, value: String(value) };
    if (Array.isArray(value) && t === 'multipicklist') return { ok: true, value: value.map(String).join(';') };
    return expected('text');
  }
  switch (t) {
    case 'boolean':
      if (typeof value === 'boolean') return { ok: true, value };
      if (value === 'true' || value === 'false') return { ok: true, value: value === 'true' };
      return expected('true or false');
    case 'int':
    case 'long':
    case 'double':
    case 'currency':
    case 'percent': {
      const n =
        typeof value === 'number'
          ? value
          : typeof value === 'string' && value.trim() !== ''
            ? Number(value)
            : Number.NaN;
      if (!Number.isFinite(n)) return expected('a number');
      if ((t === 'int' || t === 'long') && !Number.isInteger(n)) return expected('a whole number');
      return { ok: true, value: n };
    }
    case 'date':
      return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)
        ? { ok: true, value }
        : expected('a date YYYY-MM-DD');
    case 'datetime':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value))
        ? { ok: true, value }
        : expected('an ISO 8601 timestamp');
    default:
      return { ok: true, value };
  }
}

/** The values of JSON text that spells a list of strings or numbers, else undefined. */
function jsonList(text: string): string[] | undefined {
  if (!/^\s*\[/.test(text)) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed) && parsed.every((v) => typeof v === 'string' || typeof v === 'number'))
      return parsed.map(String);
  } catch {
    // Not JSON: a picklist value that starts with a bracket.
  }
  return undefined;
}

/** True for the text types a SOQL literal must quote. */
export function isTextType(field: DescribeField): boolean {
  return STRING_TYPES.has(field.type);
}
