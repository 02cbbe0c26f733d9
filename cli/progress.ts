import type { Io } from './io.ts';

const WIDTH = 24;
const EVERY_MS = 80;

/**
 * One self-rewriting progress line on stderr, on a terminal only: pipes, CI logs and `--json`
 * consumers never see it. With a total it draws a bar, without one a counter.
 */
export class Progress {
  private last = 0;
  private shown = false;

  constructor(private readonly io: Io) {}

  get active(): boolean {
    return this.io.stderrIsTTY;
  }

  update(label: string, done?: number, total?: number): void {
    if (!this.active) return;
    const now = Date.now();
    if (now - this.last < EVERY_MS && !(total !== undefined && done === total)) return;
    this.last = now;
    let line = label;
    if (done !== undefined && total !== undefined && total > 0) {
      const share = Math.min(1, done / total);
      const filled = Math.round(share * WIDTH);
      line = `${label} [${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`;
    } else if (done !== undefined) {
      line = `${label} ${done.toLocaleString('en-US')}`;
    }
    this.io.errRaw(`\r\u001b[K${line}`);
    this.shown = true;
  }

  /** Clears the line, so what follows starts on a clean one. */
  done(): void {
    if (this.shown) this.io.errRaw('\r\u001b[K');
    this.shown = false;
  }
}
