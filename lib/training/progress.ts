/**
 * Training output: on a terminal a progress bar (loss, samples/s) with log lines above
 * it; anywhere else (a log file, Slurm's output) plain lines only.
 */
import cliProgress from 'cli-progress';
import type { ProfileSession } from '../profiling/session';

export interface Progress {
  /** A line of the run's log (always printed). */
  line(text: string): void;
  /** Starts a bar for an epoch of `total` samples. */
  start(label: string, total: number): void;
  update(done: number, loss: number, samplesPerSecond: number): void;
  stop(): void;
  /**
   * The run's line profile at its end. Optional: without it the text goes to line(); a
   * notebook shows it whole as its own output (its progress display keeps the last lines only).
   */
  lineProfile?(session: ProfileSession): void;
}

class PlainProgress implements Progress {
  constructor(private readonly write: (s: string) => void) {}
  line(text: string): void { this.write(`${text}\n`); }
  start(): void {}
  update(): void {}
  stop(): void {}
}

class BarProgress implements Progress {
  private readonly multi = new cliProgress.MultiBar({
    format: ' {label} [{bar}] {value}/{total} | loss {loss} | {speed} samples/s | eta {eta_formatted}',
    hideCursor: true, clearOnComplete: true, stopOnComplete: false,
  }, cliProgress.Presets.shades_classic);
  private bar?: cliProgress.SingleBar;
  line(text: string): void {
    if (this.bar) this.multi.log(`${text}\n`);
    else process.stdout.write(`${text}\n`);
  }
  start(label: string, total: number): void {
    this.bar = this.multi.create(total, 0, { label, loss: '-', speed: '-' });
  }
  update(done: number, loss: number, samplesPerSecond: number): void {
    this.bar?.update(done, { loss: Number.isNaN(loss) ? '-' : loss.toFixed(4), speed: samplesPerSecond.toFixed(0) });
    this.multi.update(); // redraw now: a synchronous training step starves the bar's timer
  }
  stop(): void {
    if (!this.bar) return;
    this.multi.remove(this.bar);
    this.bar = undefined;
    this.multi.stop();
  }
}

/** A bar on a TTY unless `plain`; plain lines otherwise. */
export function createProgress(plain = false): Progress {
  return !plain && process.stdout.isTTY ? new BarProgress() : new PlainProgress((s) => process.stdout.write(s));
}

/** Collects lines in memory (tests, notebooks). */
export function memoryProgress(lines: string[]): Progress {
  return new PlainProgress((s) => lines.push(s.replace(/\n$/, '')));
}
