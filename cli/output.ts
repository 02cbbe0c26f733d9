import { createStyle, formatCount as n, type Style } from './io.ts';
import type { SyncSummary } from './local-runtime.ts';

/** The per-sync summary printed at the end of `backflow run` and local `backflow trigger`. */
export function formatSummary(summary: SyncSummary, style: Style = createStyle(false)): string {
  const { green, red, yellow, dim } = style;
  const { run } = summary;
  const mark = summary.status === 'succeeded' ? green('✔') : summary.status === 'stopped' ? yellow('■') : red('✘');
  const lines = [
    `${mark} ${summary.syncId}  ${summary.status} in ${(summary.durationMs / 1000).toFixed(1)}s${run ? dim(` (run ${run.runId}${run.full ? ', full read' : ', incremental'})`) : ''}`,
  ];
  if (summary.reason) lines.push(`  ${summary.reason}`);
  for (const notice of summary.notices ?? []) lines.push(yellow(`  ${notice}`));
  if (summary.deadLetteredMessages > 0) {
    lines.push(
      red(
        `  ${n(summary.deadLetteredMessages)} message(s) were dead-lettered by SQS after repeated failed receives (an export that kept crashing): backflow redrive <destination>`,
      ),
    );
  }
  if (run) {
    const c = run.counters;
    lines.push(
      `  extracted ${n(c.extracted)} · invalid ${n(c.invalid)} · unchanged ${n(c.unchanged)} · queued ${n(c.queued)}${c.deletesQueued ? ` + ${n(c.deletesQueued)} deletes` : ''}`,
      `  created ${n(c.created)} · updated ${n(c.updated)} · deleted ${n(c.deleted)} · rejected ${n(c.rejected)} · retried ${n(c.retried)} · dead-lettered ${n(c.deadLettered)}${c.messagesDeadLettered ? ` (in ${n(c.messagesDeadLettered)} message(s))` : ''}`,
    );
    if (c.queued + c.deletesQueued === 0 && summary.status === 'succeeded') {
      lines.push(dim('  nothing changed since the last run: nothing was sent'));
    }
    lines.push(...formatInvalidRows(c.invalid, run.invalidSamples, style));
    if (c.rejected > 0) lines.push(dim(`  see the refused records: backflow rejections ${summary.syncId}`));
    if (run.error && summary.status !== 'succeeded') lines.push(red(`  ${run.error}`));
  }
  return lines.join('\n');
}

/** How many invalid rows a summary lists: enough to see the reasons, not a listing. */
const LISTED_INVALID_ROWS = 5;

/**
 * The invalid rows of a run or a plan: a heading with the total and how many are listed, then
 * exactly those. The listed rows are the first samples the run kept, which are the first invalid
 * rows read; the run keeps a limited number of samples, so the total says how many there were.
 */
export function formatInvalidRows(
  invalid: number,
  samples: readonly { readonly key: string; readonly reason: string }[],
  style: Style = createStyle(false),
): string[] {
  // Never more rows than the counter says there are, should a sample have been appended twice.
  const listed = samples.slice(0, Math.min(LISTED_INVALID_ROWS, invalid));
  if (listed.length === 0) return [];
  const shown = listed.length === invalid ? 'all shown' : `showing the first ${n(listed.length)}`;
  return [
    `  invalid rows: ${n(invalid)} (${shown})`,
    ...listed.map((sample) => style.dim(`    ${sample.key}: ${sample.reason}`)),
  ];
}
