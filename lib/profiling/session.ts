/**
 * A profiling session: kernprof's role beside the timing core. It turns recording on,
 * collects what was recorded in parts (an epoch each, in training), and hands back the
 * result as line_profiler's text, rows and loop-header waits, plus every thread's timeline
 * (trace.ts): the main thread's and those the loader workers and compute threads handed
 * over. Training and notebooks drive it; it knows nothing of them.
 */
import { formatText, LineRow, toRows } from './format';
import {
  FunctionStats, gatheredRecords, isProfiling, mergeStats, reset, restoreStats, setProfiling, snapshot, StoredStats, storeStats, ThreadRecord,
} from './runtime';
import {
  clock, EPOCH_SPAN, formatThreadSummary, kindOf, PART_SPAN, summarizeTimelines, takeTimeline, ThreadSummary, ThreadTimeline, toTraceFile, TraceFile,
} from './trace';

type Labels = Record<string, string | number>;

/** A session's parts as plain JSON. */
export interface StoredPart { labels: Labels; stats: StoredStats[]; threads?: ThreadRecord[] }

/** One wait of a loop header for its next item, with the part's labels. */
export interface WaitRow { function: string; line: number; seconds: number[]; [label: string]: string | number | number[] }

interface Part { stats: FunctionStats[]; labels: Labels; threads: ThreadRecord[] }

export class ProfileSession {
  private readonly parts: Part[] = [];
  private readonly wasOn = isProfiling();

  /** When the current part began: its window, for a part that records no epochs of its own. */
  private partStart = clock();

  /** Turns recording on (until close) and starts from nothing. */
  constructor() {
    setProfiling(true);
    reset();
  }

  /** Starts a part: what was recorded before it is dropped. */
  begin(): void {
    reset();
    this.partStart = clock();
  }

  /**
   * Ends a part, keeping what it recorded under `labels` (e.g. { workers, epoch }): this
   * thread's line stats and timeline, and the records other threads handed over.
   */
  end(labels: Labels = {}): void {
    const main = takeTimeline('main');
    // Training marks its epochs; a loop of one's own is timed from begin() (or the session's start) to here.
    if (!main.spans.some((s) => EPOCH_SPAN.test(s.name))) main.spans.push({ name: PART_SPAN, start: this.partStart, end: clock() });
    this.parts.push({ stats: snapshot(), labels, threads: [{ ...main, stats: [] }, ...gatheredRecords()] });
    reset();
    this.partStart = clock();
  }

  /** The parts so far, as plain JSON (to keep with a checkpoint). */
  storeParts(): StoredPart[] {
    return this.parts.map((p) => ({ labels: p.labels, stats: p.stats.map(storeStats), threads: p.threads }));
  }

  /** Parts recorded earlier (e.g. before a run was interrupted), placed before the parts to come. */
  restoreParts(parts: StoredPart[]): void {
    this.parts.unshift(...parts.map((p) => ({ labels: p.labels, stats: p.stats.map(restoreStats), threads: p.threads ?? [] })));
  }

  /** The labels of every part, in order (e.g. which epochs the profile covers). */
  get labels(): Labels[] {
    return this.parts.map((p) => p.labels);
  }

  get partCount(): number {
    return this.parts.length;
  }

  /** Every part added up function by function (this thread's functions). */
  stats(): FunctionStats[] {
    return mergeStats(this.parts.map((p) => p.stats));
  }

  /** The loader workers' functions, added up over every worker and part (line_profiler's view of the worker side). */
  workerStats(): FunctionStats[] {
    return mergeStats(this.parts.flatMap((p) => p.threads.filter((t) => kindOf(t.thread) === 'loader').map((t) => t.stats.map(restoreStats))));
  }

  /** Loader workers that handed over a record (over all parts). */
  get loaderWorkers(): number {
    return new Set(this.parts.flatMap((p) => p.threads.filter((t) => kindOf(t.thread) === 'loader').map((t) => t.thread))).size;
  }

  /**
   * line_profiler's text for all parts together: this thread's functions, then the loader
   * workers' (merged across workers) and the per-thread summary of the timeline.
   */
  text(): string {
    const out = [formatText(this.stats())];
    const workers = this.workerStats();
    if (workers.length) {
      out.push(`Loader workers: ${this.loaderWorkers} thread${this.loaderWorkers === 1 ? '' : 's'}, merged (per-worker rows in line-profile.json)\n`,
        formatText(workers));
    }
    const summary = this.threadSummary();
    if (summary.length) out.push(formatThreadSummary(summary));
    return out.join('\n');
  }

  /**
   * One row per source line, part and thread, with the part's labels and a `thread` column
   * ('main', 'loader worker 1', 'compute thread 2', ...).
   */
  rows(): LineRow[] {
    return this.parts.flatMap((p) => [
      ...toRows(p.stats, { ...p.labels, thread: 'main' }),
      ...p.threads.filter((t) => t.stats.length).flatMap((t) => toRows(t.stats.map(restoreStats), { ...p.labels, thread: t.thread })),
    ]);
  }

  /** Each wait of a loop header (e.g. for the next batch), per part (this thread's loops). */
  waits(): WaitRow[] {
    return this.parts.flatMap((p) => p.stats.flatMap((s) => [...s.samples].map(([line, seconds]) =>
      ({ ...p.labels, function: s.meta.name, line, seconds }))));
  }

  /** Every thread's timeline over all parts. */
  timelines(): ThreadTimeline[] {
    return this.parts.flatMap((p) => p.threads);
  }

  /** The timelines as a Chrome trace-event file. */
  trace(process: string, otherData: Record<string, unknown> = {}): TraceFile {
    return toTraceFile(this.timelines(), process, { ...otherData, parts: this.labels });
  }

  /** Busy share, waits, batches built and queue depth per thread. */
  threadSummary(): ThreadSummary[] {
    return summarizeTimelines(this.timelines());
  }

  /** Recording back to what it was before the session. */
  close(): void {
    setProfiling(this.wasOn);
  }
}
