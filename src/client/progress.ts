// A transfer's progress on stderr: a bar redrawn in place on a terminal, or a plain line at every
// quarter when stderr is a file or a pipe (logs stay readable, CI output stays short).
import type { Writable } from 'node:stream';

const WIDTH = 30;

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** The bar alone, e.g. `[#######.......]  47%  1.2 MiB / 2.6 MiB`. */
export function progressBar(bytes: number, total: number | undefined): string {
  if (!total) return `${formatBytes(bytes)}`;
  const f = Math.min(1, bytes / total);
  const filled = Math.round(f * WIDTH);
  const pct = `${Math.floor(f * 100)}%`.padStart(4);
  return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${pct}  ${formatBytes(bytes)} / ${formatBytes(total)}`;
}

export class Progress {
  private readonly tty: boolean;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private lastQuarter = -1;
  private drawn = false;

  constructor(
    private readonly out: Writable & { isTTY?: boolean },
    private readonly label: string,
    private readonly now: () => number = Date.now,
  ) {
    this.tty = out.isTTY === true;
  }

  update(bytes: number, total: number | undefined): void {
    if (this.tty) {
      // At most ten redraws a second, and always the last one.
      const t = this.now();
      if (t - this.lastDraw < 100 && bytes !== total) return;
      this.lastDraw = t;
      this.out.write(`\r${this.label} ${progressBar(bytes, total)}\x1b[K`);
      this.drawn = true;
      return;
    }
    if (!total) return;
    const quarter = Math.floor((Math.min(bytes, total) / total) * 4);
    if (quarter === this.lastQuarter) return;
    this.lastQuarter = quarter;
    this.out.write(`${this.label}: ${progressBar(bytes, total)}\n`);
  }

  /** Ends the bar's line (on a terminal), so what follows starts on a new line. */
  done(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
