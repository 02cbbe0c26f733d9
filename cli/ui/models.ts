import { catalogue } from '#connectors/registry';
import { lossyPairing } from '#connectors/sdk/formats';
import type { FieldType, JsonValue, Row } from '#connectors/sdk/types';
import type { Config } from '#core/config/load';
import { connectSource } from '#core/connect';
import { readSample } from '../commands/preview.ts';
import { CHECK_TIMEOUT_MS, localSecrets, withTimeout } from '../connections.ts';
import { pick } from '../context.ts';
import type { ColumnStats, ModelReport } from './types.ts';

/** Rows the column statistics are computed over: the first ones in primary key order. */
export const STATS_ROWS = 10_000;
const SAMPLE_ROWS = 20;

/**
 * A model's columns (types from the source's own `describe`), with null share, distinct count and
 * min/max over the first rows, and a sample; with `keys`, the rows with those primary keys
 * (`backflow preview --key`'s read: one WHERE on the key).
 */
export async function modelReport(config: Config, name: string, keys: readonly string[]): Promise<ModelReport> {
  const model = pick('model', name, config.models);
  const source = await withTimeout(
    connectSource(catalogue, config, model.source, localSecrets(config), 'backflow:ui'),
    CHECK_TIMEOUT_MS,
    `source ${model.source}`,
  );
  try {
    const columns = await source.describe(model.sql);
    const rows: Row[] =
      keys.length > 0
        ? await readSample(source, model, columns, keys, keys.length)
        : await readSample(source, model, columns, [], STATS_ROWS + 1);
    const capped = rows.length > STATS_ROWS;
    const counted = rows.slice(0, STATS_ROWS);
    return {
      model: name,
      primaryKey: model.primary_key,
      rowsRead: counted.length,
      capped,
      columns: columns.map((c) => columnStats(c.name, c.type, c.nativeType, counted)),
      sample: counted.slice(0, keys.length > 0 ? keys.length : SAMPLE_ROWS),
    };
  } finally {
    await source.close().catch(() => {});
  }
}

function columnStats(name: string, type: FieldType, nativeType: string, rows: readonly Row[]): ColumnStats {
  let nulls = 0;
  const distinct = new Set<string>();
  let min: JsonValue | undefined;
  let max: JsonValue | undefined;
  for (const row of rows) {
    const value = row[name] as JsonValue | undefined;
    if (value === null || value === undefined) {
      nulls++;
      continue;
    }
    const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
    distinct.add(text);
    if (typeof value === 'object') continue;
    if (min === undefined || compare(value, min) < 0) min = value;
    if (max === undefined || compare(value, max) > 0) max = value;
  }
  return {
    name,
    type,
    nativeType,
    nullShare: rows.length === 0 ? 0 : nulls / rows.length,
    distinct: distinct.size,
    ...(min !== undefined ? { min } : {}),
    ...(max !== undefined ? { max } : {}),
  };
}

function compare(a: JsonValue, b: JsonValue): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), 'en', { numeric: true });
}

/** Whether a model column of type `from` can feed a destination field of type `to`, and what it loses. */
export function feeds(from: FieldType, to: FieldType): { ok: boolean; note?: string } {
  if (from === to || to === 'string' || to === 'json') return { ok: true };
  const lossy = lossyPairing(from, to);
  if (lossy) return { ok: true, note: lossy };
  const fits: Partial<Record<FieldType, FieldType[]>> = {
    number: ['integer'],
    timestamp: ['date'],
    date: ['timestamp'],
  };
  return { ok: (fits[to] ?? []).includes(from) };
}
