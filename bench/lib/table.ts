/** One printed table of the report: a title, aligned columns, and notes under it. */
export interface Table {
  readonly title: string;
  readonly headers: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  readonly notes?: readonly string[];
}

export type Cell = string | number | undefined;

export function formatCell(cell: Cell): string {
  if (cell === undefined) return '—';
  if (typeof cell === 'number') {
    if (!Number.isFinite(cell)) return '—';
    if (Number.isInteger(cell)) return cell.toLocaleString('en-US');
    const digits = Math.abs(cell) >= 100 ? 0 : Math.abs(cell) >= 1 ? 2 : 4;
    return cell.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }
  return cell;
}

const numeric = (cell: Cell) => typeof cell === 'number' || cell === undefined;

/** Plain text, for the terminal. */
export function renderText(table: Table): string {
  const cells = table.rows.map((row) => row.map(formatCell));
  const widths = table.headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (values: readonly string[], right: (i: number) => boolean) =>
    values.map((v, i) => (right(i) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ');
  const rightAligned = (i: number) => i > 0 && table.rows.every((row) => numeric(row[i]));
  const out = [
    table.title,
    line(table.headers, rightAligned),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...cells.map((row) => line(row, rightAligned)),
  ];
  for (const note of table.notes ?? []) out.push(`  · ${note}`);
  return out.join('\n');
}

/** GitHub-flavoured markdown, for docs/performance.md. */
export function renderMarkdown(table: Table): string {
  const cellText = (text: string) => text.replaceAll('|', '\\|');
  const rightAligned = (i: number) => i > 0 && table.rows.every((row) => numeric(row[i]));
  const out = [
    `**${table.title}**`,
    '',
    `| ${table.headers.map(cellText).join(' | ')} |`,
    `|${table.headers.map((_, i) => (rightAligned(i) ? '---:' : '---')).join('|')}|`,
    ...table.rows.map((row) => `| ${row.map((c) => cellText(formatCell(c))).join(' | ')} |`),
  ];
  if (table.notes?.length) out.push('', ...table.notes.map((n) => `- ${n}`));
  return out.join('\n');
}
