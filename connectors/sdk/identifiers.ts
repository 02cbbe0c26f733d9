import { createHash } from 'node:crypto';

/**
 * Normalising and hashing the identifiers of hashed audiences (Meta Custom Audiences, Google
 * Customer Match), each by the rules its vendor publishes. A raw identifier never leaves this
 * module in a reason: a value that cannot be normalised is refused with a reason that names the
 * kind of identifier, never the value ("email is not an email address").
 *
 * Meta — Customer File Custom Audiences, "Hashing and Normalizing Data"
 *   https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash
 *   and the official Business SDK that implements those rules for the `/users` edge
 *   (github:facebook/facebook-python-business-sdk facebook_business/adobjects/helpers/customaudiencemixin.py,
 *   `format_params` / `normalize_key`; github:facebook/facebook-nodejs-business-sdk
 *   src/objects/serverside/utils.js for the shared rules of gender, dates and phones).
 * Google — Customer Match, "Format user data" (the Data Manager API page that Google's Customer
 *   Match guides point to) https://developers.google.com/data-manager/api/devguides/concepts/formatting
 *   and the Google Ads API Customer Match guide
 *   https://developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match/get-started#hash-user-data
 *   (country code and postal code are sent unhashed; `UserIdentifier.hashed_phone_number` is
 *   "SHA-256 … after normalization (E164 standard)",
 *   https://developers.google.com/google-ads/api/reference/rpc/latest/UserIdentifier).
 */

export type IdentifierKind =
  | 'email'
  | 'phone'
  | 'first_name'
  | 'last_name'
  | 'city'
  | 'state'
  | 'zip'
  | 'postal_code'
  | 'country'
  | 'date_of_birth'
  | 'gender'
  | 'external_id';

export type IdentifierVendor = 'meta' | 'google';

/** The kinds `hash:` can normalise in a mapping (date_of_birth goes unhashed, as three keys). */
export const HASHABLE_IDENTIFIER_KINDS = [
  'email',
  'phone',
  'first_name',
  'last_name',
  'city',
  'state',
  'zip',
  'postal_code',
  'country',
  'gender',
  'external_id',
] as const satisfies readonly IdentifierKind[];

/** The identifier kinds each vendor documents for its hashed audiences. */
export const VENDOR_IDENTIFIER_KINDS: Readonly<Record<IdentifierVendor, readonly IdentifierKind[]>> = {
  // Meta's multi-key schema: EMAIL, PHONE, FN, LN, CT, ST, ZIP, COUNTRY, DOBY/DOBM/DOBD, GEN, EXTERN_ID.
  meta: [...HASHABLE_IDENTIFIER_KINDS, 'date_of_birth'],
  // Google's UserIdentifier: hashed_email, hashed_phone_number, address_info (hashed_first_name,
  // hashed_last_name, country_code, postal_code), third_party_user_id (CRM_ID lists).
  google: ['email', 'phone', 'first_name', 'last_name', 'country', 'zip', 'postal_code', 'external_id'],
};

export function isIdentifierKind(kind: string, vendor?: IdentifierVendor): kind is IdentifierKind {
  const kinds = vendor ? VENDOR_IDENTIFIER_KINDS[vendor] : VENDOR_IDENTIFIER_KINDS.meta;
  return (kinds as readonly string[]).includes(kind);
}

/**
 * Whether the vendor takes this kind hashed. Meta's EXTERN_ID is sent as it is (the SDK never
 * hashes it); Google's country_code, postal_code and third_party_user_id are sent unhashed
 * ("Don't hash country code / postal code").
 */
export function sentHashed(kind: IdentifierKind, vendor: IdentifierVendor): boolean {
  if (kind === 'external_id') return false;
  if (vendor === 'google') return !(kind === 'country' || kind === 'zip' || kind === 'postal_code');
  return true;
}

/** SHA-256 of the text's UTF-8 bytes, as 64 lowercase hex digits (what both vendors take). */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** A value already hashed: 64 hex digits (either case; both vendors take lowercase hex). */
export function isSha256Hex(value: string): boolean {
  return SHA256_HEX.test(value.trim());
}

export type Normalized =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly reason: string };
export type Hashed = { readonly ok: true; readonly hash: string } | { readonly ok: false; readonly reason: string };

const refuse = (reason: string): Normalized => ({ ok: false, reason });
const accept = (value: string): Normalized => ({ ok: true, value });

// Inferred (both vendors): an address is one @ with a non-empty local part and a dotted domain.
// The Meta Business SDK validates emails with `.+@.+\..+` (serverside/normalize.py, email_pattern).
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const WHITESPACE = /\s+/g;

/**
 * The normalised text of one identifier as the vendor documents it, before hashing; or a refusal
 * that names the identifier kind and never quotes the value. `vendor` defaults to Meta.
 */
export function normalizeIdentifier(
  kind: IdentifierKind,
  value: string,
  vendor: IdentifierVendor = 'meta',
): Normalized {
  if (!isIdentifierKind(kind, vendor)) return refuse(`${kind} is not an identifier ${vendorName(vendor)} accepts`);
  if (typeof value !== 'string') return refuse(`${kind} is not text`);
  return vendor === 'meta' ? normalizeMeta(kind, value) : normalizeGoogle(kind, value);
}

/**
 * The SHA-256 the vendor expects for one identifier: a value that is already a 64-hex SHA-256 is
 * kept (lowercased); anything else is normalised by the vendor's rules, then hashed. Kinds the
 * vendor takes unhashed (Meta's external_id; Google's country, postal code and external_id) are
 * refused: they are mapped without `hash:`. For the mapping option `hash:` (core).
 */
export function hashIdentifier(kind: IdentifierKind, value: string, vendor: IdentifierVendor): Hashed {
  if (!isIdentifierKind(kind, vendor))
    return { ok: false, reason: `${kind} is not an identifier ${vendorName(vendor)} accepts` };
  if (!sentHashed(kind, vendor)) {
    return { ok: false, reason: `${kind} is sent unhashed to ${vendorName(vendor)}: map it without hash` };
  }
  if (kind === 'date_of_birth') {
    return { ok: false, reason: 'date_of_birth is sent to Meta as three keys (year, month, day): map it without hash' };
  }
  if (typeof value === 'string' && isSha256Hex(value)) return { ok: true, hash: value.trim().toLowerCase() };
  const normalized = normalizeIdentifier(kind, value, vendor);
  return normalized.ok ? { ok: true, hash: sha256Hex(normalized.value) } : normalized;
}

function vendorName(vendor: IdentifierVendor): string {
  return vendor === 'meta' ? 'Meta' : 'Google';
}

// ---------------------------------------------------------------------------------------------
// Meta. Each rule quotes the Customer File Custom Audiences table ("Hashing and Normalizing Data")
// and names the SDK line that implements it.

/** Meta's date of birth split into the three documented keys: DOBY (YYYY), DOBM (MM), DOBD (DD). */
export function metaDateOfBirth(
  value: string,
): { ok: true; year: string; month: string; day: string } | { ok: false; reason: string } {
  const match = /^(\d{4})-(\d{1,2})-(\d{1,2})/.exec(value.trim());
  if (!match) return { ok: false, reason: 'date_of_birth is not a date (YYYY-MM-DD)' };
  const year = match[1]!;
  const month = match[2]!.padStart(2, '0');
  const day = match[3]!.padStart(2, '0');
  // "DOBY: YYYY format from 1900 to current year"; "DOBM: MM format: 01 to 12"; "DOBD: DD format: 01 to 31".
  const y = Number(year);
  if (y < 1900 || y > new Date().getUTCFullYear())
    return { ok: false, reason: 'date_of_birth has a year outside 1900 to this year' };
  if (Number(month) < 1 || Number(month) > 12) return { ok: false, reason: 'date_of_birth has no valid month' };
  if (Number(day) < 1 || Number(day) > 31) return { ok: false, reason: 'date_of_birth has no valid day' };
  return { ok: true, year, month, day };
}

/** Strips whitespace (\s covers \t \r \n and \x0B), NUL and periods from both ends. */
function stripEnds(text: string): string {
  const strip = (c: string) => c === '.' || c === String.fromCharCode(0) || /\s/.test(c);
  let start = 0;
  let end = text.length;
  while (start < end && strip(text[start]!)) start++;
  while (end > start && strip(text[end - 1]!)) end--;
  return text.slice(start, end);
}

function normalizeMeta(kind: IdentifierKind, raw: string): Normalized {
  // The SDK's first step for every multi-key value: `key.strip(" \t\r\n\0\x0B.").lower()`.
  const value = stripEnds(raw).toLowerCase();
  if (value === '') return refuse(`${kind} is empty`);
  switch (kind) {
    case 'email':
      // "EMAIL: Trim leading and trailing whitespace and convert all characters to lowercase."
      return EMAIL.test(value) ? accept(value) : refuse('email is not an email address');
    case 'phone': {
      // "PHONE: Remove symbols, letters, and any leading zeros. Phone numbers must include a
      // country code" (SDK: `re.sub(r'[^0-9]', '', key_value)`; CAPI SDK drops `^\+?0{0,2}`).
      const digits = value.replace(/\D/g, '').replace(/^0+/, '');
      if (digits === '') return refuse('phone has no digits');
      // Inferred: E.164 numbers have at most 15 digits; with a country code at least 7 (the
      // nodejs SDK refuses fewer than 7 or more than 16 characters).
      if (digits.length < 7 || digits.length > 15) return refuse('phone is not a phone number with its country code');
      return accept(digits);
    }
    case 'first_name':
    case 'last_name': {
      // "FN / LN: Use a-z only. Lower case only, no punctuation. Special characters in UTF-8
      // format." Letters are kept (accents included, UTF-8), everything else dropped.
      const letters = value.replace(/[^\p{L}]/gu, '');
      return letters ? accept(letters) : refuse(`${kind} has no letters`);
    }
    case 'city': {
      // "CT: Use a-z only. Lower case only, no punctuation, no special characters, and no white space."
      const letters = value.replace(/[^\p{L}]/gu, '');
      return letters ? accept(letters) : refuse('city has no letters');
    }
    case 'state': {
      // "ST: Use the 2-character ANSI abbreviation code in lowercase. Normalize states outside
      // the US in lowercase, no punctuation, no special characters, and no white space."
      const letters = value.replace(/[^\p{L}]/gu, '');
      return letters ? accept(letters) : refuse('state has no letters');
    }
    case 'zip':
    case 'postal_code': {
      // "ZIP: Use lowercase, and no white space. For the US, only use the first 5 digits."
      // (SDK: `re.split('-', key_value)[0]`: a ZIP+4 keeps its first part.)
      const compact = value.replace(WHITESPACE, '');
      const zip = /^\d{5}-?\d{4}$/.test(compact) ? compact.slice(0, 5) : compact.split('-')[0]!;
      return zip ? accept(zip) : refuse(`${kind} is empty`);
    }
    case 'country': {
      // "COUNTRY: Use lowercase, 2-letter country codes in ISO 3166-1 alpha-2."
      const letters = value.replace(/[^a-z]/g, '');
      return letters.length === 2 ? accept(letters) : refuse('country is not a 2-letter ISO 3166-1 code');
    }
    case 'gender':
      // "GEN: Use these values: m for male and f for female." (nodejs SDK normalizeGender)
      if (value === 'f' || value === 'female') return accept('f');
      if (value === 'm' || value === 'male') return accept('m');
      return refuse('gender is not f or m');
    case 'date_of_birth': {
      const dob = metaDateOfBirth(value);
      return dob.ok ? accept(`${dob.year}-${dob.month}-${dob.day}`) : refuse(dob.reason);
    }
    case 'external_id':
      // "EXTERN_ID": sent as it is; the SDK never hashes it. Whitespace trimmed, case kept.
      return accept(raw.trim());
  }
}

// ---------------------------------------------------------------------------------------------
// Google. Each rule quotes "Format user data" (Data Manager API) / the Customer Match guide.

const GOOGLE_MAIL = new Set(['gmail.com', 'googlemail.com']);

function normalizeGoogle(kind: IdentifierKind, raw: string): Normalized {
  const trimmed = raw.trim();
  if (trimmed === '') return refuse(`${kind} is empty`);
  switch (kind) {
    case 'email': {
      // "Convert to lowercase." "Trim leading, trailing and intermediate whitespace."
      const email = trimmed.replace(WHITESPACE, '').toLowerCase();
      if (!EMAIL.test(email)) return refuse('email is not an email address');
      const at = email.lastIndexOf('@');
      let local = email.slice(0, at);
      const domain = email.slice(at + 1);
      // "If the email address has the gmail.com or googlemail.com domain: Remove all periods (.)
      // before the @ symbol. Remove the plus sign (+) from the local part and remove all the
      // characters following it." Other domains keep their periods and plus signs.
      if (GOOGLE_MAIL.has(domain)) {
        local = local.split('+')[0]!.replace(/\./g, '');
        if (local === '') return refuse('email is not an email address');
      }
      return accept(`${local}@${domain}`);
    }
    case 'phone': {
      // "Use the E.164 format. Include the plus sign (+) and the country code. All characters
      // after the plus sign must be digits." Spaces and punctuation are dropped; `00` is the
      // international prefix. Inferred: a number without `+` or `00` already starts with its
      // country code (both vendors ask for it), so it gets the `+`.
      let text = trimmed.replace(/[\s\-()./]/g, '');
      if (text.startsWith('00')) text = `+${text.slice(2)}`;
      else if (!text.startsWith('+')) text = `+${text}`;
      const digits = text.slice(1);
      if (!/\d/.test(digits)) return refuse('phone has no digits');
      // E.164: at most 15 digits, the country code never starts with 0.
      if (!/^[1-9]\d{6,14}$/.test(digits)) return refuse('phone is not an E.164 number with its country code');
      return accept(`+${digits}`);
    }
    case 'first_name':
    case 'last_name':
      // given_name / family_name: "Convert to lowercase." "Trim leading and trailing whitespace."
      return accept(trimmed.toLowerCase());
    case 'country': {
      // region_code: "A two-character ISO-3166-1 alpha-2 code." Not hashed. Sent as Google's own
      // example writes it ("US").
      const code = trimmed.toUpperCase();
      return /^[A-Z]{2}$/.test(code) ? accept(code) : refuse('country is not a 2-letter ISO 3166-1 code');
    }
    case 'zip':
    case 'postal_code': {
      // postal_code: "US and international zip and postal codes are allowed. For US addresses,
      // use a 5-digit code or a 5-digit code followed by a 4-digit extension." Not hashed.
      const code = trimmed.replace(WHITESPACE, ' ');
      return code ? accept(code) : refuse(`${kind} is empty`);
    }
    case 'external_id':
      // third_party_user_id: "Advertiser-assigned user ID for Customer Match upload". Not hashed.
      return accept(trimmed);
    default:
      return refuse(`${kind} is not an identifier Google accepts`);
  }
}
