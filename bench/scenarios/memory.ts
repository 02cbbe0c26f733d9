import { fork } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { round } from '../lib/measure.ts';
import { createProject, SYNC_ID } from '../lib/project.ts';
import type { Table } from '../lib/table.ts';
import type { MemoryChildReport } from './memory-child.ts';

export interface MemoryResults {
  readonly measuredAt: string;
  readonly rows: number;
  /** The model's page_size by default (the engine's). */
  readonly defaultPageSize: number;
  readonly seedMs: number;
  /** The end-to-end plan at the default page size: the figure the target is about. */
  readonly child: MemoryChildReport;
  /** Every child run: plan and read-only, at each page size. */
  readonly variants: readonly MemoryChildReport[];
}

/**
 * Plans a large model end to end in a child process, so the RSS measured is the plan's own: the
 * child loads the modules, connects to the DuckDB model and runs one planSync (every row new).
 * The same model is also only read (the source alone), and both again at other page sizes, to
 * tell what the engine holds from what the source holds.
 */
export async function memoryScenario(options: {
  rows: number;
  pageSizes: readonly number[];
  root: string;
  log: (line: string) => void;
}): Promise<MemoryResults> {
  const measuredAt = new Date().toISOString();
  options.log(`memory: seeding a ${options.rows.toLocaleString('en-US')}-row DuckDB model`);
  const started = performance.now();
  const project = await createProject(options.rows);
  const seedMs = round(performance.now() - started);
  const defaultPageSize = project.config.models[project.config.syncs[SYNC_ID]!.model]!.page_size;
  const childFile = path.join(options.root, 'bench', 'scenarios', 'memory-child.ts');
  try {
    const variants: MemoryChildReport[] = [];
    for (const pageSize of [defaultPageSize, ...options.pageSizes.filter((p) => p !== defaultPageSize)]) {
      for (const mode of ['plan', 'read'] as const) {
        options.log(
          `memory: ${mode === 'plan' ? 'planning' : 'only reading'} it in a child process, pages of ${pageSize}`,
        );
        variants.push(await runChild(childFile, [project.config.file, String(options.rows), mode, String(pageSize)]));
      }
    }
    return { measuredAt, rows: options.rows, defaultPageSize, seedMs, child: variants[0]!, variants };
  } finally {
    project.cleanup();
  }
}

function runChild(file: string, args: string[]): Promise<MemoryChildReport> {
  return new Promise((resolve, reject) => {
    // execArgv carries tsx's loader, so the child runs TypeScript as this process does.
    const child = fork(file, args, { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let report: MemoryChildReport | undefined;
    child.on('message', (message) => {
      report = message as MemoryChildReport;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (report) resolve(report);
      else reject(new Error(`the memory child exited with code ${code} without a report`));
    });
  });
}

export function memoryTables(result: MemoryResults): Table[] {
  const label = (c: MemoryChildReport) =>
    `${c.mode === 'plan' ? 'plan end to end' : 'source only (read the pages)'}, pages of ${c.pageSize.toLocaleString('en-US')}${c.pageSize === result.defaultPageSize ? ' (default)' : ''}`;
  return [
    {
      title: `Memory — a ${result.rows.toLocaleString('en-US')}-row model, each line its own child process`,
      headers: ['run', 'rows read', 'queued', 'wall s', 'RSS before MB', 'peak RSS MB', 'JS heap peak MB'],
      rows: (result.variants ?? [result.child]).map((c) => [
        label(c),
        c.extracted,
        c.queued,
        round(c.wallMs / 1000, 1),
        c.baselineRssMb,
        c.peakRssMb,
        c.heapPeakMb,
      ]),
      notes: [
        'Peak RSS is the child process\'s own (getrusage maxrss): Node, the modules, the embedded DuckDB engine, and the run. "RSS before" is after loading and connecting, before the first page.',
        'Plan: first run, every row new (the largest plan). State is an in-memory StateStore that stays empty (the plan only reads record states); the queue encodes each message as the SQS lane would, counts it and discards it.',
        '"Source only" pages through the same model with the DuckDB source and does nothing else: the difference to the plan line is the engine\'s share.',
      ],
    },
  ];
}
