import { describe, expect, it } from 'vitest';
import type { WriteBatch } from '#connectors/sdk/destination';
import { e164, formatRecord, formatValue, lossyPairing, withFormats } from '#connectors/sdk/formats';

describe('value formats declared by a connector', () => {
  const record = {
    key: '1',
    op: 'upsert' as const,
    match: 'a@x.io',
    fields: {
      born: '1990-02-03',
      seen: '2026-01-02T03:04:05.123Z',
      vip: true,
      tags: ['a', 'b'],
      mobile_phone: '0044 (20) 7946-0958',
      meta: { a: 1 },
      ltv: 12.5,
      cleared: null,
    },
  };
  const types = {
    born: 'date',
    seen: 'timestamp',
    vip: 'boolean',
    tags: 'json',
    mobile_phone: 'string',
    meta: 'json',
    ltv: 'number',
  } as const;

  it('leaves values alone by default', () => {
    expect(formatRecord(record, types, {}).fields).toEqual(record.fields);
  });

  it('formats dates, timestamps, booleans, arrays, phones and numbers as asked', () => {
    const formatted = formatRecord(record, types, {
      date: 'epoch-ms-midnight',
      timestamp: 'epoch-ms',
      boolean: 'string',
      array: 'semicolon',
      phone: 'e164',
      object: 'string',
      number: 'string',
    }).fields;
    expect(formatted).toEqual({
      born: Date.UTC(1990, 1, 3),
      seen: Date.UTC(2026, 0, 2, 3, 4, 5, 123),
      vip: 'true',
      tags: 'a;b',
      mobile_phone: '+442079460958',
      meta: '{"a":1}',
      ltv: '12.5',
      cleared: null,
    });
  });

  it('parses JSON text of json fields for SaaS APIs, then formats arrays and objects as declared', () => {
    const json = {
      key: '2',
      op: 'upsert' as const,
      match: 'b@x.io',
      fields: {
        tags: '["a", "b"]',
        meta: '{"big": 12345678901234567890, "n": null}',
        nothing: 'null',
        count: '42',
        plain: 'not json',
        text: '["kept", "as text"]',
      },
    };
    const jsonTypes = {
      tags: 'json',
      meta: 'json',
      nothing: 'json',
      count: 'json',
      plain: 'json',
      text: 'string',
    } as const;
    expect(formatRecord(json, jsonTypes, {}).fields).toEqual({
      tags: ['a', 'b'],
      // Parsed as a double: vendors' JSON APIs hold no more.
      meta: { big: 12345678901234567000, n: null },
      nothing: null,
      count: 42,
      plain: 'not json',
      text: '["kept", "as text"]',
    });
    expect(formatRecord(json, jsonTypes, { array: 'semicolon', object: 'string' }).fields).toMatchObject({
      tags: 'a;b',
      meta: '{"big":12345678901234567000,"n":null}',
    });
  });

  it('normalizes phone numbers to E.164 digits', () => {
    expect(e164(' +1 (415) 555-0100 ')).toBe('+14155550100');
    expect(e164('0033 1 23 45 67 89')).toBe('+33123456789');
  });
});

describe('formats chosen by the destination field’s type', () => {
  const hubspot = { date: 'epoch-ms-midnight', timestamp: 'iso' } as const;

  it('a timestamp column into a date property sends its UTC day, in the vendor’s date format', () => {
    expect(formatValue('2026-03-04T22:15:00.000Z', 'timestamp', hubspot, 'renewal', 'date')).toBe(
      Date.parse('2026-03-04T00:00:00Z'),
    );
  });

  it('a date column into a text property stays ISO text, never epoch milliseconds', () => {
    expect(formatValue('2026-03-04', 'date', hubspot, 'note', 'string')).toBe('2026-03-04');
    expect(formatValue('2026-03-04', 'date', hubspot, 'note')).toBe(Date.parse('2026-03-04T00:00:00Z'));
  });

  it('a date column into a timestamp field is its midnight UTC; numbers into text become text', () => {
    expect(formatValue('2026-03-04', 'date', {}, 'at', 'timestamp')).toBe('2026-03-04T00:00:00.000Z');
    expect(formatValue('2026-03-04', 'date', { timestamp: 'epoch-s' }, 'at', 'timestamp')).toBe(
      Date.parse('2026-03-04T00:00:00Z') / 1000,
    );
    expect(formatValue(42, 'integer', {}, 'code', 'string')).toBe('42');
    expect(formatValue('12.50', 'string', {}, 'ltv', 'number')).toBe(12.5);
    expect(formatValue('12.50', 'string', { number: 'string' }, 'ltv', 'number')).toBe('12.50');
  });

  it('a JSON column into a text field: a list joined as the vendor joins lists, an object as JSON text', () => {
    expect(formatValue('["gold","vip"]', 'json', { array: 'semicolon' }, 'Tags__c', 'string')).toBe('gold;vip');
    expect(formatValue('["gold","vip"]', 'json', {}, 'tags', 'string')).toBe('["gold","vip"]');
    expect(formatValue('{"a":1}', 'json', {}, 'note', 'string')).toBe('{"a":1}');
    expect(formatValue('12.5', 'json', {}, 'ltv', 'number')).toBe(12.5);
    expect(formatValue('["a"]', 'json', { array: 'semicolon' }, 'opts', 'json')).toBe('a');
  });

  it('names the pairings that lose something', () => {
    expect(lossyPairing('timestamp', 'date')).toMatch(/time of day/);
    expect(lossyPairing('date', 'string')).toBeUndefined();
    expect(lossyPairing('number', 'integer')).toMatch(/fractional/);
  });

  it('discovers the fields once per object and formats every batch from them', async () => {
    let discoveries = 0;
    const written: WriteBatch[] = [];
    const connection = withFormats(
      {
        check: async () => {},
        close: async () => {},
        fields: async () => {
          discoveries++;
          return [{ name: 'renewal', type: 'date', required: false, kind: 'custom', matchable: false }];
        },
        write: async (batch) => {
          written.push(batch);
          return [];
        },
      },
      hubspot,
    );
    const batch: WriteBatch = {
      object: 'contacts',
      matchField: 'email',
      fieldTypes: { renewal: 'timestamp' },
      records: [{ key: '1', op: 'upsert', match: 'a@x.test', fields: { renewal: '2026-03-04T22:15:00Z' } }],
    };
    await connection.write(batch);
    await connection.write(batch);
    expect(discoveries).toBe(1);
    expect(written[1]!.records[0]!.fields.renewal).toBe(Date.parse('2026-03-04T00:00:00Z'));
  });
});
