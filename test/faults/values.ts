/**
 * Exact value handling for the fault checker: every value read back from a destination (SQL text,
 * raw webhook bodies) and every reference value is turned into one canonical text, so comparisons
 * are exact: decimals by value at any precision, JSON numbers without a round trip through a
 * double, doubles with the sign of zero, text code unit by code unit.
 */

/** A row of the model as the checker writes it into the source: every value as SQL input text. */
export interface RowValues {
  readonly email: string;
  readonly txt: string | null;
  /** `numeric` input text. */
  readonly amount: string | null;
  /** `jsonb` input text. */
  readonly doc: string | null;
  /** `double precision` input text (`-0` keeps its sign: a JSON schedule cannot hold -0 as a number). */
  readonly dbl: string | null;
}

/** The destination fields the syncs map, in a fixed order. */
export const FIELDS = ['email', 'txt', 'amount', 'doc', 'dbl'] as const;
export type Field = (typeof FIELDS)[number];

/** A record as held by a destination, canonical: field → canonical text (or null). */
export type Canonical = Readonly<Record<Field, string | null>>;

/** `[-]digits[.digits][e±digits]` by value: `1.50` → `1.5`, `1e2` → `100`, `-0.0` → `0`. */
export function canonicalDecimal(text: string): string {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) return text.trim();
  const [, sign, whole, fraction = '', exponent = '0'] = match;
  let digits = `${whole}${fraction}`.replace(/^0+/, '');
  let scale = Number(exponent) - fraction.length;
  if (digits === '') return '0';
  const trailing = /0+$/.exec(digits)?.[0].length ?? 0;
  digits = digits.slice(0, digits.length - trailing);
  scale += trailing;
  let out: string;
  if (scale >= 0) out = digits + '0'.repeat(scale);
  else if (-scale < digits.length) out = `${digits.slice(0, scale)}.${digits.slice(scale)}`;
  else out = `0.${'0'.repeat(-scale - digits.length)}${digits}`;
  return sign === '-' ? `-${out}` : out;
}

/** A double by value, `-0` kept apart from `0`. */
export function canonicalDouble(text: string): string {
  const value = Number(text);
  return Object.is(value, -0) ? '-0' : String(value);
}

/**
 * Canonical text of a JSON document, parsed without ever turning a number into a double: numbers
 * by decimal value, object keys sorted (jsonb reorders them), strings decoded.
 */
export function canonicalJsonText(text: string): string {
  const parser = new LosslessJson(text);
  const value = parser.value();
  parser.end();
  return serialize(value);
}

/** A JSON tree whose numbers are kept as their source text. */
export type Lossless =
  | null
  | boolean
  | string
  | { readonly number: string }
  | readonly Lossless[]
  | { readonly object: ReadonlyMap<string, Lossless> };

export function parseLossless(text: string): Lossless {
  const parser = new LosslessJson(text);
  const value = parser.value();
  parser.end();
  return value;
}

/** Canonical text of a lossless JSON value (see canonicalJsonText). */
export function serialize(value: Lossless): string {
  if (value === null || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`;
  if ('number' in value) return canonicalDecimal(value.number);
  const object = (value as { object: ReadonlyMap<string, Lossless> }).object;
  const keys = [...object.keys()].sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${serialize(object.get(k)!)}`).join(',')}}`;
}

class LosslessJson {
  private at = 0;
  constructor(private readonly text: string) {}

  value(): Lossless {
    this.space();
    const c = this.text[this.at];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return value;
      }
    }
    const number = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.at))?.[0];
    if (!number) throw new Error(`not JSON at offset ${this.at}: ${this.text.slice(this.at, this.at + 20)}`);
    this.at += number.length;
    return { number };
  }

  end(): void {
    this.space();
    if (this.at !== this.text.length) throw new Error(`trailing text after JSON at offset ${this.at}`);
  }

  private object(): Lossless {
    this.at++;
    const object = new Map<string, Lossless>();
    this.space();
    if (this.text[this.at] === '}') {
      this.at++;
      return { object };
    }
    for (;;) {
      this.space();
      const key = this.string();
      this.expect(':');
      object.set(key, this.value());
      this.space();
      if (this.text[this.at] === '}') {
        this.at++;
        return { object };
      }
      this.expect(',');
    }
  }

  private array(): Lossless {
    this.at++;
    const items: Lossless[] = [];
    this.space();
    if (this.text[this.at] === ']') {
      this.at++;
      return items;
    }
    for (;;) {
      items.push(this.value());
      this.space();
      if (this.text[this.at] === ']') {
        this.at++;
        return items;
      }
      this.expect(',');
    }
  }

  private string(): string {
    const match = /^"(?:[^"\\]|\\.)*"/s.exec(this.text.slice(this.at));
    if (!match) throw new Error(`expected a JSON string at offset ${this.at}`);
    this.at += match[0].length;
    return JSON.parse(match[0]) as string;
  }

  private expect(c: string): void {
    this.space();
    if (this.text[this.at] !== c) throw new Error(`expected "${c}" at offset ${this.at}`);
    this.at++;
  }

  private space(): void {
    while (/\s/.test(this.text[this.at] ?? '')) this.at++;
  }
}

/** The reference value a destination must hold for a row: what the source holds, canonical. */
export function canonicalRow(row: RowValues): Canonical {
  return {
    email: row.email,
    txt: row.txt,
    amount: row.amount === null ? null : canonicalDecimal(row.amount),
    doc: row.doc === null ? null : canonicalJsonText(row.doc),
    dbl: row.dbl === null ? null : canonicalDouble(row.dbl),
  };
}

/** A destination's fields as received on the wire (a lossless JSON object), canonical. */
export function canonicalFields(fields: Lossless): Canonical {
  const object =
    fields !== null && typeof fields === 'object' && 'object' in fields ? fields.object : new Map<string, Lossless>();
  const text = (name: Field): string | null => {
    const value = object.get(name) ?? null;
    if (value === null) return null;
    if (typeof value === 'string') return value;
    return serialize(value);
  };
  const number = (name: Field, canonical: (text: string) => string): string | null => {
    const value = object.get(name) ?? null;
    if (value === null) return null;
    if (typeof value === 'string') return canonical(value);
    if (typeof value === 'object' && 'number' in value) return canonical(value.number);
    return `not a number: ${serialize(value)}`;
  };
  const doc = object.get('doc');
  return {
    email: text('email'),
    txt: text('txt'),
    amount: number('amount', canonicalDecimal),
    doc: doc === undefined || doc === null ? null : serialize(doc),
    dbl: number('dbl', canonicalDouble),
  };
}

/** One line for a report: a canonical record, or `absent`. */
export function showCanonical(value: Canonical | undefined): string {
  if (value === undefined) return 'absent';
  return `{ ${FIELDS.map((f) => `${f}: ${value[f] === null ? 'null' : show(value[f]!)}`).join(', ')} }`;
}

/**
 * A string for humans and shells alike: JSON-quoted, every character outside printable ASCII
 * escaped (`\uFFFE`, `\u200F`, `\uD83D\uDE00`), long text shortened with its length.
 */
export function show(text: string, max = 60): string {
  const quote = (s: string) =>
    JSON.stringify(s).replace(
      /[^\x20-\x7e]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`,
    );
  if (text.length <= max) return quote(text);
  return `${quote(text.slice(0, 24))}…(${text.length} chars)`;
}

/** JSON with every character outside printable ASCII escaped, and no `'`: safe inside shell single quotes. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[^\x20-\x7e]|'/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`,
  );
}
