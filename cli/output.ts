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
    if (run.invalidSamples.length > 0) {
      lines.push(`  invalid rows (first ${run.invalidSamples.length} of ${n(c.invalid)}):`);
      for (const sample of run.invalidSamples.slice(0, 5)) lines.push(dim(`    ${sample.key}: ${sample.reason}`));
    }
    if (c.rejected > 0) lines.push(dim(`  see the refused records: backflow rejections ${summary.syncId}`));
    if (run.error && summary.status !== 'succeeded') lines.push(red(`  ${run.error}`));
  }
  return lines.join('\n');
}
