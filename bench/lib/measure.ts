import { performance } from 'node:perf_hooks';

export const MB = 1024 * 1024;

/** Samples this process's resident set size while a phase runs. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private peakBytes = 0;
  readonly startBytes = process.memoryUsage.rss();

  constructor(intervalMs = 20) {
    this.peakBytes = this.startBytes;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): void {
    this.peakBytes = Math.max(this.peakBytes, process.memoryUsage.rss());
  }

  /** Stops sampling; peak and end RSS in MB. */
  stop(): { startMb: number; peakMb: number; endMb: number } {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    return {
      startMb: round(this.startBytes / MB, 1),
      peakMb: round(this.peakBytes / MB, 1),
      endMb: round(process.memoryUsage.rss() / MB, 1),
    };
  }
}

/** Wall and CPU time of a phase (CPU of the whole process, every thread: DuckDB and GC included). */
export class Stopwatch {
  private readonly wall = performance.now();
  private readonly cpu = process.cpuUsage();

  stop(): { wallMs: number; cpuMs: number } {
    const cpu = process.cpuUsage(this.cpu);
    return { wallMs: round(performance.now() - this.wall, 1), cpuMs: round((cpu.user + cpu.system) / 1000, 1) };
  }
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** `n` per second over `ms`, rounded; undefined when nothing was measured. */
export function perSecond(n: number, ms: number): number | undefined {
  return n > 0 && ms > 0 ? Math.round((n * 1000) / ms) : undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
