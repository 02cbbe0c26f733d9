import { describe, expect, it } from 'vitest';
import type { Checkpoint, ReadRequest, RowPage, SourceConnection } from '#connectors/sdk/source';
import type { JsonValue, Row } from '#connectors/sdk/types';

/**
 * The keyset contract every source keeps, run against each source's real driver and server: all
 * copies of a key (or of a `(cursor, key)` pair) come in one page, a page's checkpoint follows a
 * complete key group, a continuation after any checkpoint reads exactly the rest, and rows without
 * a key are read once, first, without checkpoints.
 */

/** A row of the `keyset_rows` table each source test creates: `note` is unique, the rest repeats. */
export interface KeysetRow {
  readonly scenario: number;
  readonly id: number | null;
  /** UTC, `YYYY-MM-DD HH:MM:SS`; null for rows only full reads see. */
  readonly updated_at: string | null;
  readonly note: string;
}

/** Page sizes of the scenarios: each has its own rows in `keyset_rows`, `scenario` = the page size. */
export const PAGE_SIZES = [3, 4, 5] as const;

/**
 * Keys in key order for page size `n`: a pair ending exactly on the first page boundary (positions
 * n-1 and n), a pair straddling the second (positions 2n and 2n+1), a key with more copies than a
 * page (n+2), then single keys up to about 20 rows.
 */
function keysFor(n: number): number[] {
  const keys: number[] = [];
  let next = 1;
  const push = (copies: number) => {
    for (let i = 0; i < copies; i++) keys.push(next);
    next++;
  };
  while (keys.length < n - 2) push(1);
  push(2);
  while (keys.length < 2 * n - 1) push(1);
  push(2);
  push(n + 2);
  while (keys.length < 20) push(1);
  return keys;
}

/** Cursor value of the i-th distinct key: three keys share each second, so cursor values tie too. */
const stamp = (i: number): string => `2024-01-01 00:00:${String(Math.floor(i / 3)).padStart(2, '0')}`;

const scenarioRows = (n: number): KeysetRow[] => [
  ...keysFor(n).map((id, i) => ({ scenario: n, id, updated_at: stamp(id), note: `s${n}-k${id}-${i}` })),
  // More rows without a key than fit one page (sharing cursor values), and a keyed row without a cursor.
  ...Array.from({ length: n + 1 }, (_, i) => ({
    scenario: n,
    id: null,
    updated_at: stamp(i),
    note: `s${n}-null-${i}`,
  })),
  { scenario: n, id: 1000, updated_at: null, note: `s${n}-no-cursor` },
];

/** The rows of every scenario, shuffled: insertion order must not be what orders a read. */
export const KEYSET_ROWS: readonly KeysetRow[] = PAGE_SIZES.flatMap(scenarioRows)
  .map((row, i, all) => ({ row, sort: (i * 7919) % all.length }))
  .sort((a, b) => a.sort - b.sort)
  .map((x) => x.row);

async function pages(source: SourceConnection, request: ReadRequest): Promise<RowPage[]> {
  const all: RowPage[] = [];
  for await (const page of source.read(request)) all.push(page);
  return all;
}

const notes = (rows: readonly { readonly note?: unknown }[]): string[] => rows.map((r) => String(r.note)).sort();

/** The position a row stands at in a read's order, as text: rows with equal positions are one group. */
const positionOf = (row: Row, cursor: boolean): string =>
  JSON.stringify(cursor ? [row.updated_at ?? null, row.id ?? null] : [row.id ?? null]);

/**
 * Asserts the contract on the keyed pages of one read: every copy of a position in one page, each
 * checkpoint the page's last position, no page over `n` rows unless one position alone has more.
 */
function expectCompleteGroups(keyed: readonly RowPage[], n: number, cursor: boolean): void {
  const pageOf = new Map<string, number>();
  for (const [i, page] of keyed.entries()) {
    const last = page.rows.at(-1)!;
    const checkpoint: Checkpoint = cursor
      ? { cursor: last.updated_at ?? null, pk: last.id ?? null }
      : { pk: last.id ?? null };
    expect(page.checkpoint).toEqual(checkpoint);
    const counts = new Map<string, number>();
    for (const row of page.rows) {
      const position = positionOf(row, cursor);
      expect(pageOf.get(position) ?? i, `${position} split across pages ${pageOf.get(position)} and ${i}`).toBe(i);
      pageOf.set(position, i);
      counts.set(position, (counts.get(position) ?? 0) + 1);
    }
    if (page.rows.length > n) expect(Math.max(...counts.values())).toBeGreaterThan(n);
  }
}

/**
 * Registers the contract's cases. `source()` is the connected source; `model(n)` the SQL of
 * scenario `n` over the `keyset_rows` table loaded with {@link KEYSET_ROWS}; `random` the
 * dialect's random function (`random()`, `rand()`).
 */
export function describeKeysetReads(
  source: () => SourceConnection,
  model: (n: number) => string,
  random: string,
): void {
  describe('keyset contract', () => {
    for (const n of PAGE_SIZES) {
      const expected = KEYSET_ROWS.filter((r) => r.scenario === n);
      const keyed = expected.filter((r) => r.id !== null);

      it(`full read, page size ${n}: null keys first, then every row once with all copies of a key in one page`, async () => {
        const request = { sql: model(n), primaryKey: 'id', pageSize: n };
        const all = await pages(source(), request);
        const unkeyed = all.filter((p) => p.checkpoint === undefined);
        expect(all.slice(0, unkeyed.length)).toEqual(unkeyed);
        expect(unkeyed.every((p) => p.rows.length <= n)).toBe(true);
        expect(notes(unkeyed.flatMap((p) => p.rows))).toEqual(notes(expected.filter((r) => r.id === null)));
        const keyedPages = all.slice(unkeyed.length);
        const rows = keyedPages.flatMap((p) => p.rows);
        expect(notes(rows)).toEqual(notes(keyed));
        expect(rows.map((r) => r.id)).toEqual(keyed.map((r) => r.id).sort((a, b) => a! - b!));
        expectCompleteGroups(keyedPages, n, false);
        // Continuing after any checkpoint reads exactly the rows of the pages after it.
        for (const [i, page] of keyedPages.entries()) {
          const rest = await pages(source(), { ...request, after: page.checkpoint });
          expect(rest.every((p) => p.checkpoint !== undefined)).toBe(true);
          expect(notes(rest.flatMap((p) => p.rows))).toEqual(notes(keyedPages.slice(i + 1).flatMap((p) => p.rows)));
          expectCompleteGroups(rest, n, false);
        }
      });

      it(`incremental read, page size ${n}: (cursor, key) ties across page boundaries, each row once`, async () => {
        const request = { sql: model(n), primaryKey: 'id', cursor: 'updated_at', pageSize: n };
        const all = await pages(source(), request);
        expect(all.every((p) => p.checkpoint !== undefined)).toBe(true);
        const rows = all.flatMap((p) => p.rows);
        // Rows without a key have no (cursor, pk) position: only full reads report them.
        expect(notes(rows)).toEqual(notes(expected.filter((r) => r.updated_at !== null && r.id !== null)));
        expectCompleteGroups(all, n, true);
        for (const [i, page] of all.entries()) {
          const rest = await pages(source(), { ...request, after: page.checkpoint });
          expect(notes(rest.flatMap((p) => p.rows))).toEqual(notes(all.slice(i + 1).flatMap((p) => p.rows)));
          expectCompleteGroups(rest, n, true);
        }
        // A position without a key (stored by earlier versions) resumes at its cursor value, inclusive.
        const legacy = rows.find((r) => r.id === 6)!;
        const resumed = await pages(source(), { ...request, after: { cursor: legacy.updated_at ?? null, pk: null } });
        expect(notes(resumed.flatMap((p) => p.rows))).toEqual(
          notes(rows.filter((r) => String(r.updated_at) >= String(legacy.updated_at))),
        );
      });
    }

    it('reads rows without a key once each, even when the model returns rows in another order each time', async () => {
      const unkeyed = notes(KEYSET_ROWS.filter((r) => r.scenario === 5 && r.id === null));
      const sql = `select * from (${model(5)} order by ${random}) as shuffled`;
      for (let i = 0; i < 10; i++) {
        const all = await pages(source(), { sql, primaryKey: 'id', pageSize: 2 });
        const rows = all.filter((p) => p.checkpoint === undefined).flatMap((p) => p.rows);
        expect(notes(rows)).toEqual(unkeyed);
      }
    });

    it('stops early, in the rows without a key or in keyed pages, and the source goes on answering', async () => {
      for (let i = 0; i < 4; i++) {
        for (const after of [undefined, { pk: 1 }]) {
          for await (const page of source().read({ sql: model(3), primaryKey: 'id', pageSize: 1, after })) {
            expect(page.rows.length).toBeGreaterThan(0);
            break;
          }
        }
      }
      await expect(source().check()).resolves.toBeUndefined();
    });

    it('duplicateKeys: the non-null keys that occur more than once, at most `limit` of them', async () => {
      for (const n of PAGE_SIZES) {
        const counts = new Map<JsonValue, number>();
        for (const row of KEYSET_ROWS) {
          if (row.scenario === n && row.id !== null) counts.set(row.id, (counts.get(row.id) ?? 0) + 1);
        }
        const repeated = [...counts].filter(([, count]) => count > 1).map(([id]) => id);
        expect(repeated).toHaveLength(3);
        const found = await source().duplicateKeys(model(n), 'id', 100);
        expect([...found].sort((a, b) => Number(a) - Number(b))).toEqual(
          repeated.sort((a, b) => Number(a) - Number(b)),
        );
        const two = await source().duplicateKeys(model(n), 'id', 2);
        expect(two).toHaveLength(2);
        for (const key of two) expect(repeated).toContain(key);
      }
      await expect(
        source().duplicateKeys(`select * from (${model(3)}) as m where id = 1000`, 'id', 10),
      ).resolves.toEqual([]);
    });
  });
}
