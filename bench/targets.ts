import type { Table } from './lib/table.ts';
import type { BenchReport } from './run.ts';

/** The issue's targets, checked against what was measured (timings are reported, never asserted in tests). */
export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

/**
 * Commit 9265fa7, before each function got a bundle of its own: every function bundled every
 * connector (5.74 MB), and importing the export bundle took this long (--enable-source-maps as on
 * Lambda; median of 15 fresh processes, imported in turn with this branch's bundles through
 * --bundles-baseline, load average 3.7 on the 2-core bench machine). Used when a run has no
 * baseline of its own.
 */
export const BUNDLE_BASELINE = { commit: '9265fa7', exportImportMs: 659, bundleMb: 5.74 } as const;

export function targetChecks(report: BenchReport): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const delivery = report.delivery;
  if (delivery) {
    for (const run of delivery.runs.filter((r) => !r.stateInMemory)) {
      checks.push({
        target: `delivery ≥ 90% of the limit, 429s < 1% of requests (${run.label})`,
        measured: `${(run.ofLimit * 100).toFixed(1)}% of the limit, ${run.requests.pct429}% 429s`,
        met: run.ofLimit >= 0.9 && run.requests.pct429 < 1,
      });
    }
    // Reports from before this check have no count: they do not count as lost.
    const lost = delivery.runs.reduce(
      (n, r) => n + (Number.isFinite(r.receiverMismatches) ? r.receiverMismatches : 0),
      0,
    );
    checks.push({
      target: "every record delivered with the model's values (every delivery run)",
      measured: `${lost} missing or different over ${delivery.runs.length} runs`,
      met: lost === 0,
    });
    const rerun = delivery.runs.find((r) => r.rerun)?.rerun;
    if (rerun) {
      checks.push({
        target: 'an unchanged rerun sends zero destination requests',
        measured: `${rerun.destinationRequests} requests (full re-diff of ${rerun.extracted.toLocaleString('en-US')} rows through the local runtime)`,
        met: rerun.destinationRequests === 0,
      });
    }
  }
  const plan = report.plan;
  if (plan) {
    const unchanged = plan.phases.filter((p) => p.name.startsWith('rerun'));
    const messages = unchanged.reduce((n, p) => n + p.messages, 0);
    checks.push({
      target: 'an unchanged rerun queues nothing (plan scenario)',
      measured: `${messages} messages queued over ${unchanged.length} reruns`,
      met: messages === 0,
    });
    const fullReads = plan.phases.filter((p) => p.full && p.modelStatements !== undefined && p.extracted > 0);
    if (fullReads.length > 0) {
      const most = Math.max(...fullReads.map((p) => p.modelStatements!.reads));
      checks.push({
        target: 'a full read runs the model once per plan invocation, however many pages',
        measured: `at most ${most} statement(s) reading the model per full read (${fullReads.length} full reads of ${plan.rows.toLocaleString('en-US')} rows in pages of ${plan.pageSize.toLocaleString('en-US')})`,
        met: most === 1,
      });
    }
    checks.push({
      target: 'map + hash ≥ 100,000 rows/s on one core',
      measured: `${plan.mapHash.mapAndHash.best.toLocaleString('en-US')} rows/s (best pass; median ${plan.mapHash.mapAndHash.median.toLocaleString('en-US')})`,
      met: plan.mapHash.mapAndHash.best >= 100_000,
    });
  }
  const memory = report.memory;
  if (memory) {
    checks.push({
      target: `peak RSS of the ${memory.rows.toLocaleString('en-US')}-row plan < 300 MB`,
      measured: `${memory.child.peakRssMb} MB`,
      met: memory.rows >= 1_000_000 ? memory.child.peakRssMb < 300 : undefined,
    });
  }
  const peer = report.peer;
  if (peer) {
    const full = peer.runs.find((r) => r.name === 'full sync');
    const incremental = peer.runs.find((r) => r.name === 'incremental sync');
    if (full) {
      checks.push({
        target: `peer: full sync of ${peer.rows.toLocaleString('en-US')} rows ≤ 27 s (≥ 50× Grouparoo), peak RSS < 300 MB`,
        measured: `${full.seconds} s (${full.timesFaster}×), ${full.peakRssMb} MB, ${full.matching.toLocaleString('en-US')} rows equal`,
        met: full.seconds <= 27 && full.peakRssMb < 300 && full.matching === peer.rows,
      });
    }
    if (incremental) {
      checks.push({
        target: `peer: incremental sync of ${peer.changed.toLocaleString('en-US')} changed rows ≤ 1.1 s (≥ 50× Grouparoo)`,
        measured: `${incremental.seconds} s (${incremental.timesFaster}×), ${incremental.peakRssMb} MB, ${incremental.matching.toLocaleString('en-US')} rows equal`,
        met: incremental.seconds <= 1.1 && incremental.matching === peer.rows,
      });
    }
  }
  const bundles = report.bundles;
  const lane = bundles?.functions.find((f) => f.function.startsWith('export'));
  if (bundles && lane) {
    const mb = lane.bundleBytes / (1024 * 1024);
    const before = bundles.baseline?.functions.find((f) => f.function === lane.function);
    checks.push({
      target: "a HubSpot lane's export bundle ≤ 1.5 MB",
      measured: `${mb.toFixed(2)} MB (${before ? `baseline ${(before.bundleBytes / (1024 * 1024)).toFixed(2)} MB` : `${BUNDLE_BASELINE.commit}: ${BUNDLE_BASELINE.bundleMb} MB`})`,
      met: mb <= 1.5,
    });
    // Against the baseline measured in turn in this run when there is one: timings move with the load.
    const beforeMs = before?.importMs.median ?? BUNDLE_BASELINE.exportImportMs;
    const share = lane.importMs.median / beforeMs;
    checks.push({
      target: `its cold import ≤ 40% of the baseline's`,
      measured: `${lane.importMs.median} ms median, ${(share * 100).toFixed(0)}% of ${beforeMs} ms (${before ? 'baseline bundles, imported in turn' : `${BUNDLE_BASELINE.commit}, measured apart: load differs`})`,
      met: share <= 0.4,
    });
  }
  return checks;
}

export function targetTable(checks: readonly TargetCheck[]): Table {
  return {
    title: 'Targets',
    headers: ['target', 'measured', 'met'],
    rows: checks.map((c) => [c.target, c.measured, c.met === undefined ? 'n/a (smaller size)' : c.met ? 'yes' : 'NO']),
  };
}
