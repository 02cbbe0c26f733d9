import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  hashIdentifier,
  isSha256Hex,
  metaDateOfBirth,
  normalizeIdentifier,
  sentHashed,
  sha256Hex,
} from '#connectors/sdk/identifiers';

/** An independent SHA-256, so the module's own hashing is not what checks it. */
const sha = (text: string) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');

/** SHA-256 of "test", as printed in the Meta Business SDK's own tests (facebook_business/test/unit.py). */
const META_SDK_TEST_HASH = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

const norm = (kind: Parameters<typeof normalizeIdentifier>[0], value: string, vendor: 'meta' | 'google') => {
  const result = normalizeIdentifier(kind, value, vendor);
  return result.ok ? result.value : `REFUSED: ${result.reason}`;
};

describe('sha256Hex', () => {
  it('is the lowercase hex SHA-256 of the UTF-8 text', () => {
    expect(sha256Hex('test')).toBe(META_SDK_TEST_HASH);
    expect(sha256Hex('émilie')).toBe(sha('émilie'));
    expect(isSha256Hex(META_SDK_TEST_HASH)).toBe(true);
    expect(isSha256Hex(META_SDK_TEST_HASH.toUpperCase())).toBe(true);
    expect(isSha256Hex(META_SDK_TEST_HASH.slice(1))).toBe(false);
    expect(isSha256Hex('ada@example.com')).toBe(false);
  });
});

describe('Meta: the Business SDK examples and the Custom Audiences rules', () => {
  it('trims whitespace and dots and lowercases, as format_params does (SDK test_multi_key_params)', () => {
    // schema [EXTERN_ID, FN, EMAIL, LN], row ["abc123def", "  TEST ", "test", "..test.."]:
    // every hashed column is sha256("test"), EXTERN_ID is sent as it is.
    expect(hashIdentifier('first_name', '  TEST ', 'meta')).toEqual({ ok: true, hash: META_SDK_TEST_HASH });
    expect(hashIdentifier('last_name', '..test..', 'meta')).toEqual({ ok: true, hash: META_SDK_TEST_HASH });
    expect(norm('external_id', 'abc123def', 'meta')).toBe('abc123def');
    expect(sentHashed('external_id', 'meta')).toBe(false);
    expect(hashIdentifier('external_id', 'abc123def', 'meta').ok).toBe(false);
  });

  it('normalises a last name as the nodejs SDK test does ("  Eg  " → sha256("eg"))', () => {
    expect(hashIdentifier('last_name', '  Eg  ', 'meta')).toEqual({ ok: true, hash: sha('eg') });
  });

  it('keeps a value that is already a SHA-256 (nodejs SDK "does not double hash sha256")', () => {
    const hashed = sha('11234567890');
    expect(hashIdentifier('phone', hashed, 'meta')).toEqual({ ok: true, hash: hashed });
    expect(hashIdentifier('email', ` ${hashed.toUpperCase()} `, 'meta')).toEqual({ ok: true, hash: hashed });
  });

  it("formats phones as Meta's customer list guide shows them: digits with the country code", () => {
    // https://www.facebook.com/business/help/2082575038703844 examples.
    expect(norm('phone', '1-234-567-8910', 'meta')).toBe('12345678910');
    expect(norm('phone', '12345678910', 'meta')).toBe('12345678910');
    expect(norm('phone', '+44 844 412 4653', 'meta')).toBe('448444124653');
    // "Remove symbols, letters, and any leading zeros."
    expect(norm('phone', '0044 844 412 4653', 'meta')).toBe('448444124653');
    // Inferred pairing: Meta's documented example `ph` hash (Conversions API parameters page) is
    // the SHA-256 of 12345678901.
    expect(hashIdentifier('phone', '+1 (234) 567-8901', 'meta')).toEqual({
      ok: true,
      hash: '254aa248acb47dd654ca3ea53f48c2c26d641d23d7e2e93a1ec56258df7674c4',
    });
  });

  it('normalises the other multi-key fields by the documented table', () => {
    expect(norm('email', '  Ada.Lovelace@Example.COM ', 'meta')).toBe('ada.lovelace@example.com');
    expect(norm('email', 'first.last@gmail.com', 'meta')).toBe('first.last@gmail.com'); // Meta keeps gmail dots
    expect(norm('first_name', 'Émilie', 'meta')).toBe('émilie'); // "Special characters in UTF-8 format"
    expect(norm('first_name', "O'Brien-Smith", 'meta')).toBe('obriensmith');
    expect(norm('city', 'New York', 'meta')).toBe('newyork');
    expect(norm('state', 'CA', 'meta')).toBe('ca');
    expect(norm('zip', '94045-1234', 'meta')).toBe('94045');
    expect(norm('zip', 'SW1A 1AA', 'meta')).toBe('sw1a1aa');
    expect(norm('country', 'US', 'meta')).toBe('us');
    expect(norm('gender', 'Female', 'meta')).toBe('f');
    expect(norm('gender', 'm', 'meta')).toBe('m');
    expect(metaDateOfBirth('1990-07-04')).toEqual({ ok: true, year: '1990', month: '07', day: '04' });
  });

  it('refuses what cannot be normalised, naming the field and never quoting the value', () => {
    const cases: [Parameters<typeof normalizeIdentifier>[0], string, RegExp][] = [
      ['email', 'ada.example.com', /^email is not an email address$/],
      ['phone', 'call me', /^phone has no digits$/],
      ['phone', '12', /^phone is not a phone number/],
      ['country', 'United States', /^country is not a 2-letter/],
      ['gender', 'unknown', /^gender is not f or m$/],
      ['date_of_birth', 'yesterday', /^date_of_birth is not a date/],
      ['first_name', '1234', /^first_name has no letters$/],
    ];
    for (const [kind, value, reason] of cases) {
      const result = normalizeIdentifier(kind, value, 'meta');
      expect(result.ok, `${kind} ${value}`).toBe(false);
      if (!result.ok) {
        expect(result.reason).toMatch(reason);
        expect(result.reason).not.toContain(value);
      }
      const hashed = hashIdentifier(kind, value, 'meta');
      expect(hashed.ok).toBe(false);
    }
  });
});

describe("Google: the Customer Match formatting page's examples", () => {
  it('removes periods and +suffixes from gmail.com and googlemail.com local parts only', () => {
    // "cloudy.sanfrancisco+shopping@gmail.com → cloudysanfrancisco@gmail.com"
    expect(norm('email', 'cloudy.sanfrancisco+shopping@gmail.com', 'google')).toBe('cloudysanfrancisco@gmail.com');
    expect(norm('email', 'Cloudy.SanFrancisco@googlemail.com', 'google')).toBe('cloudysanfrancisco@googlemail.com');
    // "user.name+NYC@Example.com → user.name+nyc@example.com"
    expect(norm('email', 'user.name+NYC@Example.com', 'google')).toBe('user.name+nyc@example.com');
    // "Trim leading, trailing and intermediate whitespace."
    expect(norm('email', ' dana @example.com ', 'google')).toBe('dana@example.com');
    expect(hashIdentifier('email', 'cloudy.sanfrancisco+shopping@gmail.com', 'google')).toEqual({
      ok: true,
      hash: sha('cloudysanfrancisco@gmail.com'),
    });
  });

  it('formats phones in E.164 with the plus sign', () => {
    // "the US phone number (800)555-0100 must be formatted and normalized to +18005550100"
    expect(norm('phone', '+1 (800)555-0100', 'google')).toBe('+18005550100');
    // google-ads-python examples/remarketing/add_customer_match_user_list.py: "+1 800 5550101".
    expect(norm('phone', '+1 800 5550101', 'google')).toBe('+18005550101');
    expect(norm('phone', '0044 844 412 4653', 'google')).toBe('+448444124653');
    expect(hashIdentifier('phone', '+1 800 5550102', 'google')).toEqual({ ok: true, hash: sha('+18005550102') });
    // Meta and Google hash the same number differently: Meta without the plus.
    expect(hashIdentifier('phone', '+1 800 5550102', 'meta')).toEqual({ ok: true, hash: sha('18005550102') });
  });

  it('lowercases names and sends country and postal code unhashed', () => {
    expect(norm('first_name', ' Alex ', 'google')).toBe('alex');
    expect(norm('last_name', 'Quinn', 'google')).toBe('quinn');
    expect(norm('country', 'us', 'google')).toBe('US');
    expect(norm('postal_code', ' 94045 ', 'google')).toBe('94045');
    expect(sentHashed('country', 'google')).toBe(false);
    expect(sentHashed('postal_code', 'google')).toBe(false);
    expect(sentHashed('first_name', 'google')).toBe(true);
    expect(hashIdentifier('country', 'US', 'google').ok).toBe(false);
  });

  it('refuses undocumented kinds and unusable values without quoting them', () => {
    expect(normalizeIdentifier('gender', 'f', 'google')).toEqual({
      ok: false,
      reason: 'gender is not an identifier Google accepts',
    });
    expect(normalizeIdentifier('date_of_birth', '1990-01-01', 'google').ok).toBe(false);
    const noAt = normalizeIdentifier('email', 'ada.example.com', 'google');
    expect(noAt).toEqual({ ok: false, reason: 'email is not an email address' });
    const letters = normalizeIdentifier('phone', 'n/a', 'google');
    expect(letters).toEqual({ ok: false, reason: 'phone has no digits' });
    const leadingZero = normalizeIdentifier('phone', '0800 555 0100', 'google');
    expect(leadingZero.ok).toBe(false);
  });
});
