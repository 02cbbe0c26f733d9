import type { FieldInfo } from '#connectors/sdk/destination';
import type { FieldType, JsonValue } from '#connectors/sdk/types';
import { MEMBER_STATUSES, type MemberStatus, type MergeField } from './client.ts';
import { MATCH_FIELD } from './manifest.ts';

/**
 * Field discovery and values of audience members. A sync maps to merge fields by their tag (FNAME,
 * LNAME, PLAN…), to `status` (the subscription status) and to `tags` (the member's tags).
 * https://mailchimp.com/developer/marketing/docs/merge-fields/
 */

export const STATUS_FIELD = 'status';
export const TAGS_FIELD = 'tags';

/** Text merge fields hold up to 255 characters. */
const MAX_TEXT = 255;

/**
 * Merge field types as Backflow's field types, so the SDK formats each value for its field
 * (https://mailchimp.com/developer/marketing/docs/merge-fields/#structure): `number` holds
 * numbers; `date` a calendar date and `birthday` a month and day (both `date`: a timestamp column
 * keeps its UTC day, and fields.ts writes it in the field's format); `address` an object; text,
 * phone, zip, url, imageurl, radio and dropdown hold text (a date column into them stays ISO
 * 8601 text). An unknown type is taken as text.
 */
export const MERGE_TYPES: Readonly<Record<string, FieldType>> = {
  text: 'string',
  number: 'number',
  address: 'json',
  phone: 'string',
  date: 'date',
  birthday: 'date',
  zip: 'string',
  url: 'string',
  imageurl: 'string',
  radio: 'string',
  dropdown: 'string',
};

/** What a sync can map to in an audience: the member's own fields, then its merge fields. */
export function memberFields(mergeFields: readonly MergeField[]): FieldInfo[] {
  return [
    { name: MATCH_FIELD, type: 'string', required: true, kind: 'known', matchable: true },
    { name: STATUS_FIELD, type: 'string', required: false, kind: 'known', matchable: false },
    { name: TAGS_FIELD, type: 'json', required: false, kind: 'known', matchable: false },
    ...mergeFields.map(
      (f): FieldInfo => ({
        name: f.tag,
        type: MERGE_TYPES[f.type] ?? 'string',
        required: f.required,
        kind: 'custom',
        matchable: false,
      }),
    ),
  ];
}

export type Target =
  | { readonly kind: 'status' }
  | { readonly kind: 'tags' }
  | { readonly kind: 'merge'; readonly field: MergeField };

/**
 * The target of a mapped field: a merge tag as written (then case-insensitively: merge tags are
 * upper case), else `status` or `tags`.
 */
export function resolveTarget(name: string, mergeFields: readonly MergeField[]): Target | undefined {
  const exact = mergeFields.find((f) => f.tag === name);
  if (exact) return { kind: 'merge', field: exact };
  if (name === STATUS_FIELD) return { kind: 'status' };
  if (name === TAGS_FIELD) return { kind: 'tags' };
  const folded = mergeFields.find((f) => f.tag.toUpperCase() === name.toUpperCase());
  return folded ? { kind: 'merge', field: folded } : undefined;
}

export type Converted<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const ok = <T>(value: T): Converted<T> => ({ ok: true, value });
const fail = (reason: string): Converted<never> => ({ ok: false, reason });

const ISO_DATE = /^(\d{4})-(\d\d)-(\d\d)(?:$|T)/;

function isoDate(value: string): { year: string; month: string; day: string } | undefined {
  const m = ISO_DATE.exec(value.trim());
  if (!m) return undefined;
  const [, year, month, day] = m as unknown as [string, string, string, string];
  const date = new Date(`${year}-${month}-${day}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.getUTCDate() !== Number(day)) return undefined;
  return { year, month, day };
}

/**
 * A date in a date merge field's `date_format` (`MM/DD/YYYY` or `DD/MM/YYYY`, set per field in the
 * audience: https://mailchimp.com/developer/marketing/docs/merge-fields/), `YYYY-MM-DD` when the
 * field reports none. Inferred: Mailchimp reads a date value in the field's own format.
 */
function inDateFormat(date: { year: string; month: string; day: string }, format: string | undefined): string {
  const f = format?.toUpperCase().replace(/\s/g, '');
  if (f === 'MM/DD/YYYY') return `${date.month}/${date.day}/${date.year}`;
  if (f === 'DD/MM/YYYY') return `${date.day}/${date.month}/${date.year}`;
  return `${date.year}-${date.month}-${date.day}`;
}

/**
 * A value as the merge field's type wants it; null clears the field, which Mailchimp spells `""`.
 * Dates go in the field's `date_format` (a timestamp keeps its UTC date), birthdays as `MM/DD` or
 * `DD/MM` after the field's `date_format`, numbers as numbers, addresses as Mailchimp's address
 * object.
 */
export function mergeValue(field: MergeField, value: JsonValue): Converted<JsonValue> {
  if (value === null) return ok('');
  switch (field.type) {
    case 'number': {
      if (typeof value === 'number') return ok(value);
      if (typeof value === 'string') {
        const text = value.trim();
        if (text === '') return ok('');
        if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return ok(Number(text));
      }
      return fail(`expected a number for the number field, got ${preview(value)}`);
    }
    case 'date': {
      const date = typeof value === 'string' ? isoDate(value) : undefined;
      if (!date) return fail(`expected a date (YYYY-MM-DD) for the date field, got ${preview(value)}`);
      return ok(inDateFormat(date, field.options?.date_format));
    }
    case 'birthday': {
      if (typeof value === 'string' && /^\d\d\/\d\d$/.test(value.trim())) return ok(value.trim());
      const date = typeof value === 'string' ? isoDate(value) : undefined;
      if (!date) return fail(`expected a date (YYYY-MM-DD) or MM/DD for the birthday field, got ${preview(value)}`);
      const dayFirst = field.options?.date_format?.toUpperCase().startsWith('DD') ?? false;
      return ok(dayFirst ? `${date.day}/${date.month}` : `${date.month}/${date.day}`);
    }
    case 'address': {
      if (typeof value === 'string') return ok(value);
      if (typeof value === 'object' && !Array.isArray(value)) {
        const missing = ['addr1', 'city', 'state', 'zip'].filter(
          (k) => typeof value[k] !== 'string' || value[k] === '',
        );
        if (missing.length > 0) return fail(`an address needs ${missing.join(', ')}`);
        const address: Record<string, JsonValue> = {};
        for (const key of ['addr1', 'addr2', 'city', 'state', 'zip', 'country']) {
          if (typeof value[key] === 'string') address[key] = value[key];
        }
        return ok(address);
      }
      return fail(`expected an address object (addr1, city, state, zip) for the address field, got ${preview(value)}`);
    }
    default: {
      const text =
        typeof value === 'string'
          ? value
          : Array.isArray(value)
            ? value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')
            : typeof value === 'object'
              ? JSON.stringify(value)
              : String(value);
      if (text.length > MAX_TEXT) return fail(`is ${text.length} characters long; a merge field holds ${MAX_TEXT}`);
      return ok(text);
    }
  }
}

/** A subscription status from a mapped `status` value. */
export function statusValue(value: JsonValue): Converted<MemberStatus> {
  const text = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  const status = MEMBER_STATUSES.find((s) => s === text);
  return status ? ok(status) : fail(`expected one of ${MEMBER_STATUSES.join(', ')}, got ${preview(value)}`);
}

/** Tag names from a list or comma-separated text; null means no tags. */
export function tagNames(value: JsonValue): Converted<string[]> {
  if (value === null) return ok([]);
  const items = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : undefined;
  if (!items || items.some((t) => typeof t !== 'string' && typeof t !== 'number')) {
    return fail(`expected a list of tag names or comma-separated text, got ${preview(value)}`);
  }
  const names = [...new Set(items.map((t) => String(t).trim()).filter((t) => t !== ''))];
  const long = names.find((t) => t.length > 100);
  return long ? fail(`tag "${long.slice(0, 20)}…" is longer than 100 characters`) : ok(names);
}

function preview(value: JsonValue): string {
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
