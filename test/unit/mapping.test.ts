import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '#connectors/sdk/types';
import { canonicalJson } from '#core/canonical';
import { compileMapping, mapRow, recordHash } from '#core/mapping';

const sync = {
  object: 'contacts',
  mode: 'upsert',
  match: { email: 'email' },
  mappings: {
    first_name: 'first_name',
    ltv: { column: 'ltv', nulls: 'sync' as const },
    plan: { column: 'plan', nulls: 'skip' as const },
    source: { value: 'backflow' },
  },
};

describe('mapping a row', () => {
  const mapping = compileMapping(sync);

  it('renames columns, adds static values and applies the null policy', () => {
    const result = mapRow({ id: 7, email: 'a@x.io', first_name: 'Ada', ltv: null, plan: null }, 'id', mapping);
    expect(result).toEqual({
      ok: true,
      record: { key: '7', match: 'a@x.io', fields: { first_name: 'Ada', ltv: null, source: 'backflow' } },
    });
  });

  it('makes rows without a primary key or match value invalid, with the reason', () => {
    expect(mapRow({ id: null, email: 'a@x.io' }, 'id', mapping)).toEqual({
      ok: false,
      key: '(null)',
      reason: 'primary key "id" is null',
    });
    expect(mapRow({ id: 3, email: '' }, 'id', mapping)).toEqual({
      ok: false,
      key: '3',
      reason: 'match value "email" is missing',
    });
  });

  it('normalizes dates to ISO 8601 UTC and big integers exactly, and refuses NaN', () => {
    const dated = compileMapping({ ...sync, mappings: { at: 'at', big: 'big' } });
    const ok = mapRow(
      { id: 1, email: 'a@x.io', at: new Date('2026-01-02T03:04:05+02:00'), big: 9007199254740993n },
      'id',
      dated,
    );
    expect(ok).toMatchObject({
      ok: true,
      record: { fields: { at: '2026-01-02T01:04:05.000Z', big: '9007199254740993' } },
    });
    expect(mapRow({ id: 1, email: 'a@x.io', at: Number.NaN }, 'id', dated)).toEqual({
      ok: false,
      key: '1',
      reason: 'column "at": NaN is not a finite number',
    });
  });

  it('changes the mapping version when the mapping changes', () => {
    expect(compileMapping({ ...sync, mappings: { first_name: 'first_name' } }).version).not.toBe(mapping.version);
    expect(compileMapping(sync).version).toBe(mapping.version);
  });
});

const json: fc.Arbitrary<JsonValue> = fc.jsonValue() as fc.Arbitrary<JsonValue>;

function shuffleKeys(value: JsonValue, seed: number): JsonValue {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v, i) => shuffleKeys(v, seed + i));
  const entries = Object.entries(value);
  entries.sort((a, b) => ((a[0].length * 31 + seed) % 7) - ((b[0].length * 31 + seed) % 7) || (seed % 2 ? 1 : -1));
  return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, seed + 1)]));
}

describe('hashing', () => {
  it('gives equal hashes for equal values whatever the key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), json), fc.integer({ min: 0, max: 1000 }), (fields, seed) => {
        const a = recordHash({ match: 'k', fields }, 'v1');
        const b = recordHash({ match: 'k', fields: shuffleKeys(fields, seed) as Record<string, JsonValue> }, 'v1');
        expect(a).toBe(b);
      }),
    );
  });

  it('gives different hashes for different payloads or mapping versions', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), json), fc.dictionary(fc.string(), json), (x, y) => {
        fc.pre(canonicalJson(x) !== canonicalJson(y));
        expect(recordHash({ match: 1, fields: x }, 'v')).not.toBe(recordHash({ match: 1, fields: y }, 'v'));
      }),
    );
    expect(recordHash({ match: 1, fields: {} }, 'v1')).not.toBe(recordHash({ match: 1, fields: {} }, 'v2'));
  });

  it('canonical JSON sorts keys at every depth', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}',
    );
  });
});

describe('hashed identifiers (hash: sha256)', () => {
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  const sync = (rules?: 'meta' | 'google') => ({
    object: 'audience:1',
    mode: 'mirror' as const,
    match: { email: { column: 'email', hash: 'sha256' as const, normalize: 'email' as const, rules } },
    mappings: {
      email_sha256: {
        column: 'email',
        nulls: 'skip' as const,
        hash: 'sha256' as const,
        normalize: 'email' as const,
        rules,
      },
      phone_sha256: {
        column: 'phone',
        nulls: 'skip' as const,
        hash: 'sha256' as const,
        normalize: 'phone' as const,
        rules,
      },
    },
  });

  it('sends the SHA-256 of the value normalised by the vendor’s rules, never the value', () => {
    const row = { id: 1, email: '  Jane.Doe+promo@Gmail.com ', phone: '+1 (800) 555-0100' };
    const meta = mapRow(row, 'id', compileMapping(sync('meta')));
    const google = mapRow(row, 'id', compileMapping(sync('google')));
    expect(meta.ok && meta.record.fields.email_sha256).toBe(sha('jane.doe+promo@gmail.com'));
    // Google drops dots and +suffixes from gmail.com addresses before hashing.
    expect(google.ok && google.record.fields.email_sha256).toBe(sha('janedoe@gmail.com'));
    expect(google.ok && google.record.fields.phone_sha256).toBe(sha('+18005550100'));
    // The match value too: what is queued, stored and sent holds hashes only.
    expect(meta.ok && meta.record.match).toBe(sha('jane.doe+promo@gmail.com'));
    expect(JSON.stringify(meta)).not.toMatch(/Jane|555-0100/);
  });

  it('reports an identifier that cannot be normalised with the field, never the value', () => {
    const result = mapRow({ id: 2, email: 'not-an-address', phone: null }, 'id', compileMapping(sync('meta')));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toBe('email: email is not an email address');
    expect(JSON.stringify(result)).not.toMatch(/not-an-address/);
  });
});
