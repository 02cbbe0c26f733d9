import { type Style, visibleLength } from './io.ts';

export interface ColumnSpec {
  readonly header: string;
  /** Numbers read best right-aligned; default: right when every cell is a number. */
  readonly align?: 'left' | 'right';
}

export type Cell = string | number | boolean | null | undefined;

export interface TableOptions {
  /** Prefix of every line (e.g. two spaces under a heading). */
  readonly indent?: string;
  readonly style?: Style;
  /** Space between columns. */
  readonly gap?: number;
}

function text(cell: Cell): string {
  if (cell === null || cell === undefined) return '';
  if (typeof cell === 'number') return cell.toLocaleString('en-US');
  if (typeof cell === 'boolean') return cell ? 'yes' : 'no';
  return cell;
}

/** An aligned plain-text table: a header line, then one line per row; no trailing spaces. */
export function renderTable(
  columns: readonly (string | ColumnSpec)[],
  rows: readonly Cell[][],
  options: TableOptions = {},
): string {
  const specs = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  const cells = rows.map((row) => specs.map((_, i) => text(row[i])));
  const widths = specs.map((spec, i) =>
    Math.max(visibleLength(spec.header), ...cells.map((row) => visibleLength(row[i] ?? ''))),
  );
  const aligns = specs.map(
    (spec, i) =>
      spec.align ??
      (rows.length > 0 && rows.every((row) => typeof row[i] === 'number' || row[i] === null || row[i] === undefined)
        ? 'right'
        : 'left'),
  );
  const gap = ' '.repeat(options.gap ?? 2);
  const indent = options.indent ?? '';
  const line = (values: readonly string[]) =>
    `${indent}${values
      .map((value, i) => {
        const pad = ' '.repeat(Math.max(0, widths[i]! - visibleLength(value)));
        return aligns[i] === 'right' ? pad + value : i === values.length - 1 ? value : value + pad;
      })
      .join(gap)}`.trimEnd();
  const dim = options.style?.dim ?? ((s: string) => s);
  const header = line(specs.map((s) => s.header));
  return [dim(header), ...cells.map(line)].join('\n');
}

/** `key  value` lines with the keys padded to one width. */
export function renderPairs(pairs: readonly (readonly [string, string])[], options: TableOptions = {}): string {
  const width = Math.max(0, ...pairs.map(([k]) => visibleLength(k)));
  const dim = options.style?.dim ?? ((s: string) => s);
  return pairs
    .map(([k, v]) => `${options.indent ?? ''}${dim(k)}${' '.repeat(width - visibleLength(k))}  ${v}`.trimEnd())
    .join('\n');
}
