import { catalogue } from '#connectors/registry';
import type { Row } from '#connectors/sdk/types';
import { connectSource } from '#core/connect';
import { recordKey } from '#core/mapping';
import { ruleColumns, segmentModelName } from '#core/segments';
import { CHECK_TIMEOUT_MS, localSecrets, withTimeout } from '../connections.ts';
import { type CommandContext, pick, positionals } from '../context.ts';
import { openLocalState } from '../local-state.ts';
import { renderTable } from '../table.ts';

interface SegmentReport {
  readonly segment: string;
  readonly description?: string;
  /** Members now (rows of the segment with a primary key). */
  readonly size: number;
  /** The sync whose last delivered membership is compared, when a sync reads the segment. */
  readonly comparedWith?: string;
  /** Members not delivered by that sync yet: they enter on its next run. */
  readonly entering?: number;
  /** Delivered by that sync and no longer in the segment: they leave on its next run (mirror). */
  readonly leaving?: number;
  /** A few members, with the columns the rules read (all columns for a `where` or `sql` segment). */
  readonly sample: Row[];
  readonly columns: string[];
}

const SAMPLE = 5;

/**
 * `backflow segments [name]`: each segment's size now, who would enter and leave on the next run
 * of the sync that reads it (against what that sync last delivered), and a sample of members.
 */
export async function segments(ctx: CommandContext): Promise<number> {
  const [only] = positionals(ctx, 0, 1, 'a segment');
  const config = await ctx.config();
  const names = only ? [(pick('segment', only, config.segments), only)] : Object.keys(config.segments);
  const local = await openLocalState(config);
  const reports: SegmentReport[] = [];
  try {
    for (const name of names) {
      const segment = config.segments[name]!;
      const model = config.models[segmentModelName(name)]!;
      ctx.progress.update(`reading segment ${name}…`);
      const source = await withTimeout(
        connectSource(catalogue, config, model.source, localSecrets(config), 'backflow:segments'),
        CHECK_TIMEOUT_MS,
        `source ${model.source}`,
      );
      try {
        const keys = new Set<string>();
        for await (const page of source.readKeys(model.sql, model.primary_key, 10_000)) {
          for (const key of page) {
            const text = recordKey(key);
            if (text !== undefined) keys.add(text);
          }
        }
        const sample: Row[] = [];
        for await (const page of source.read({ sql: model.sql, primaryKey: model.primary_key, pageSize: SAMPLE })) {
          sample.push(...page.rows.filter((r) => r[model.primary_key] !== null).slice(0, SAMPLE - sample.length));
          if (sample.length >= SAMPLE) break;
        }
        const columns = segment.rules
          ? [model.primary_key, ...ruleColumns(segment.rules).filter((c) => c !== model.primary_key)]
          : Object.keys(sample[0] ?? {}).slice(0, 8);
        const sync = Object.values(config.syncs).find((s) => s.segment === name);
        let entering: number | undefined;
        let leaving: number | undefined;
        if (sync) {
          const delivered = new Set<string>();
          for await (const record of local.state.listRecords(sync.id)) {
            if (record.status === 'ok') delivered.add(record.key);
          }
          entering = [...keys].filter((k) => !delivered.has(k)).length;
          leaving = [...delivered].filter((k) => !keys.has(k)).length;
        }
        reports.push({
          segment: name,
          description: segment.description,
          size: keys.size,
          comparedWith: sync?.id,
          entering,
          leaving,
          columns,
          sample: sample.map((row) => Object.fromEntries(columns.map((c) => [c, row[c] ?? null]))),
        });
      } finally {
        await source.close().catch(() => {});
      }
    }
  } finally {
    ctx.progress.done();
    await local.stop();
  }

  if (ctx.json) {
    ctx.io.out(JSON.stringify({ segments: reports }, null, 2));
    return 0;
  }
  const { style } = ctx;
  if (reports.length === 0) {
    ctx.io.out(style.dim('the config has no segments (see docs/segments.md)'));
    return 0;
  }
  for (const [i, report] of reports.entries()) {
    if (i > 0) ctx.io.out('');
    ctx.io.out(
      `${style.bold(report.segment)}  ${report.size.toLocaleString('en-US')} member(s)${report.description ? style.dim(`  ${report.description}`) : ''}`,
    );
    if (report.comparedWith) {
      ctx.io.out(
        `  next run of ${report.comparedWith}: ${style.bold(`+${report.entering!.toLocaleString('en-US')}`)} entering, ${style.bold(`-${report.leaving!.toLocaleString('en-US')}`)} leaving ${style.dim('(against what it last delivered)')}`,
      );
    } else ctx.io.out(style.dim('  no sync reads this segment yet'));
    if (report.sample.length > 0) {
      ctx.io.out(
        renderTable(
          report.columns,
          report.sample.map((row) => report.columns.map((c) => (row[c] === null ? '' : String(row[c])))),
        )
          .split('\n')
          .map((line) => `  ${line}`)
          .join('\n'),
      );
    }
  }
  return 0;
}
