/**
 * A profiling session: kernprof's role beside the timing core. It turns recording on,
 * collects what was recorded in parts (an epoch each, in training), and hands back the
 * result as line_profiler's text, rows and loop-header waits. Training and notebooks drive
 * it; it knows nothing of them.
 */
import { formatText, LineRow, toRows } from './format';
import { FunctionStats, isProfiling, mergeStats, reset, restoreStats, setProfiling, snapshot, StoredStats, storeStats } from './runtime';

type Labels = Record<string, string | number>;

/** A session's parts as plain JSON. */
export interface StoredPart { labels: Labels; stats: StoredStats[] }

/** One wait of a loop header for its next item, with the part's labels. */
export interface WaitRow { function: string; line: number; seconds: number[]; [label: string]: string | number | number[] }

export class ProfileSession {
  private readonly parts: { stats: FunctionStats[]; labels: Labels }[] = [];
  private readonly wasOn = isProfiling();

  /** Turns recording on (until close) and starts from nothing. */
  constructor() {
    setProfiling(true);
    reset();
  }

  /** Starts a part: what was recorded before it is dropped. */
  begin(): void {
    reset();
  }

  /** Ends a part, keeping what it recorded under `labels` (e.g. { workers, epoch }). */
  end(labels: Labels = {}): void {
    this.parts.push({ stats: snapshot(), labels });
  }

  /** The parts so far, as plain JSON (to keep with a checkpoint). */
  storeParts(): StoredPart[] {
    return this.parts.map((p) => ({ labels: p.labels, stats: p.stats.map(storeStats) }));
  }

  /** Parts recorded earlier (e.g. before a run was interrupted), placed before the parts to come. */
  restoreParts(parts: StoredPart[]): void {
    this.parts.unshift(...parts.map((p) => ({ labels: p.labels, stats: p.stats.map(restoreStats) })));
  }

  /** The labels of every part, in order (e.g. which epochs the profile covers). */
  get labels(): Labels[] {
    return this.parts.map((p) => p.labels);
  }

  get partCount(): number {
    return this.parts.length;
  }

  /** Every part added up function by function. */
  stats(): FunctionStats[] {
    return mergeStats(this.parts.map((p) => p.stats));
  }

  /** line_profiler's text for all parts together. */
  text(): string {
    return formatText(this.stats());
  }

  /** One row per source line and part, with the part's labels. */
  rows(): LineRow[] {
    return this.parts.flatMap((p) => toRows(p.stats, p.labels));
  }

  /** Each wait of a loop header (e.g. for the next batch), per part. */
  waits(): WaitRow[] {
    return this.parts.flatMap((p) => p.stats.flatMap((s) => [...s.samples].map(([line, seconds]) =>
      ({ ...p.labels, function: s.meta.name, line, seconds }))));
  }

  /** Recording back to what it was before the session. */
  close(): void {
    setProfiling(this.wasOn);
  }
}
