/**
 * The timeline of every thread while profiling, written in Chrome's trace-event format
 * (JSON object form: `traceEvents` of complete `X` events, `C` counters and `M` thread
 * names; opens in Perfetto and chrome://tracing), and summarised per thread.
 *
 * Each thread records its own spans on one clock shared by all threads of the process
 * (performance.timeOrigin + performance.now(), in ms): the main thread's profiled lines
 * that carry an `@phase` tag, each loader worker's batch building and hand-over, each
 * compute thread's part of the step. The main thread gathers the other threads' records
 * (data/loader.ts, training/data-parallel.ts) through the profiler's runtime.
 */

/** One stretch of time on a thread, in ms on the shared clock. */
export interface Span { name: string; start: number; end: number; args?: Record<string, string | number> }
/** A sampled value (e.g. the loader's queue when the training loop asks for a batch). */
export interface CounterSample { name: string; at: number; values: Record<string, number> }
/** What one thread recorded. `thread` names its track: 'main', 'compute thread 2', 'loader worker 1', ... */
export interface ThreadTimeline { thread: string; spans: Span[]; counters: CounterSample[] }

/** The clock every thread records on: ms since the Unix epoch, sub-microsecond resolution. */
export const clock = (): number => performance.timeOrigin + performance.now();

let spans: Span[] = [];
let counters: CounterSample[] = [];

/**
 * Records a span on this thread (callers check that profiling is on). A span that
 * continues one of the same name without a gap (two consecutive lines with the same tag)
 * extends it, so that one batch's building is one span.
 */
export function recordSpan(name: string, start: number, end: number, args?: Span['args']): void {
  const last = spans[spans.length - 1];
  if (last && last.name === name && last.end === start && !args && !last.args) {
    last.end = end;
    return;
  }
  spans.push(args ? { name, start, end, args } : { name, start, end });
}

export function recordCounter(name: string, values: Record<string, number>, at = clock()): void {
  counters.push({ name, at, values });
}

/** This thread's record since the last take, under a track name; starts a new one. */
export function takeTimeline(thread: string): ThreadTimeline {
  const out = { thread, spans, counters };
  spans = [];
  counters = [];
  return out;
}

export function clearTimeline(): void {
  spans = [];
  counters = [];
}

// ---- Chrome's trace-event format -------------------------------------------------------

export interface TraceEvent {
  name: string;
  cat?: string;
  ph: 'X' | 'C' | 'M';
  /** Microseconds since the trace's origin. */
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

export interface TraceFile {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown> & { origin_ms: number };
}

/** Track order: the main thread, the compute threads, then the loader workers. */
function trackRank(thread: string): number {
  const n = Number(/(\d+)$/.exec(thread)?.[1] ?? 0);
  if (thread === 'main') return 0;
  if (thread.startsWith('compute')) return 100 + n;
  if (thread.startsWith('loader')) return 200 + n;
  return 1000 + n;
}

/** The thread records of a run (several per thread when it ran in parts) merged per track. */
export function mergeTimelines(records: ThreadTimeline[]): ThreadTimeline[] {
  const byThread = new Map<string, ThreadTimeline>();
  for (const r of records) {
    let t = byThread.get(r.thread);
    if (!t) byThread.set(r.thread, (t = { thread: r.thread, spans: [], counters: [] }));
    // Loops, not push(...): a long run's track holds more spans than a call may take arguments.
    for (const s of r.spans) t.spans.push(s);
    for (const c of r.counters) t.counters.push(c);
  }
  return [...byThread.values()].sort((a, b) => trackRank(a.thread) - trackRank(b.thread));
}

/**
 * The trace-event file of a run's timelines. Spans become complete (`X`) events sorted
 * by start per thread (a span before those it contains), counters `C` events; each track
 * is named (`thread_name`, `thread_sort_index`).
 */
export function toTraceFile(records: ThreadTimeline[], process: string, otherData: Record<string, unknown> = {}): TraceFile {
  const threads = mergeTimelines(records);
  let origin = Infinity; // the earliest event (a loop: Math.min(...) fails on a long run's events)
  for (const t of threads) {
    for (const s of t.spans) origin = Math.min(origin, s.start);
    for (const c of t.counters) origin = Math.min(origin, c.at);
  }
  if (origin === Infinity) origin = 0;
  const us = (ms: number) => Math.round((ms - origin) * 1000 * 1000) / 1000; // µs, to the ns
  const pid = 1;
  const events: TraceEvent[] = [{ name: 'process_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: process } }];
  threads.forEach((t, i) => {
    const tid = i + 1;
    events.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid, args: { name: t.thread } });
    events.push({ name: 'thread_sort_index', ph: 'M', ts: 0, pid, tid, args: { sort_index: tid } });
    const sorted = [...t.spans].sort((a, b) => a.start - b.start || b.end - a.end);
    for (const s of sorted) {
      events.push({ name: s.name, cat: kindOf(t.thread), ph: 'X', ts: us(s.start), dur: us(s.end) - us(s.start), pid, tid, ...(s.args ? { args: s.args } : {}) });
    }
    for (const c of [...t.counters].sort((a, b) => a.at - b.at)) {
      events.push({ name: c.name, ph: 'C', ts: us(c.at), pid, tid, args: c.values });
    }
  });
  return { traceEvents: events, displayTimeUnit: 'ms', otherData: { ...otherData, origin_ms: origin } };
}

/** The tracks of a trace file back as timelines (ms on the shared clock). */
export function fromTraceFile(file: TraceFile): ThreadTimeline[] {
  const names = new Map<number, string>();
  for (const e of file.traceEvents) if (e.ph === 'M' && e.name === 'thread_name') names.set(e.tid, String((e.args as { name: string }).name));
  const origin = file.otherData.origin_ms;
  const byTid = new Map<number, ThreadTimeline>();
  const track = (tid: number) => {
    let t = byTid.get(tid);
    if (!t) byTid.set(tid, (t = { thread: names.get(tid) ?? `thread ${tid}`, spans: [], counters: [] }));
    return t;
  };
  for (const e of file.traceEvents) {
    if (e.ph === 'X') track(e.tid).spans.push({ name: e.name, start: origin + e.ts / 1000, end: origin + (e.ts + (e.dur ?? 0)) / 1000, ...(e.args ? { args: e.args as Span['args'] } : {}) });
    if (e.ph === 'C') track(e.tid).counters.push({ name: e.name, at: origin + e.ts / 1000, values: e.args as Record<string, number> });
  }
  return [...byTid.values()].sort((a, b) => trackRank(a.thread) - trackRank(b.thread));
}

export type ThreadKind = 'main' | 'compute' | 'loader' | 'other';
export function kindOf(thread: string): ThreadKind {
  return thread === 'main' ? 'main' : thread.startsWith('compute') ? 'compute' : thread.startsWith('loader') ? 'loader' : 'other';
}

// ---- Per-thread summary ----------------------------------------------------------------

/** The main thread's span of one training epoch ('epoch N'): the window shares are taken over. */
export const EPOCH_SPAN = /^epoch \d+$/;
/**
 * The window of a session part without epochs (a loop of one's own): from begin() (or the
 * session's start) to end(). The thread summary's shares are of the epochs, or else of these.
 */
export const PART_SPAN = 'profiled';
/** What counts as work: the step's phases and the loader's building and hand-over; not the all-reduce (mostly waiting for the other threads). */
const WORK = new Set(['scatter', 'forward', 'loss', 'backward', 'optimizer', 'build', 'handover']);

export interface ThreadSummary {
  thread: string;
  kind: ThreadKind;
  /** Training time the shares are of (the main thread's epoch spans), seconds. */
  window_s: number;
  /**
   * Working within the window, seconds: the main thread all but its wait for a batch (building
   * it itself with 0 workers is work); the other threads their step phases or batch building.
   */
  busy_s: number;
  busy_share: number;
  /** The rest of the window: waiting for a batch (main), in the all-reduce or for the next step (compute), idle (loader). */
  waiting_s: number;
  waiting_share: number;
  /** Batches built within the window and the mean time to build one (loader workers, or the main thread with 0 workers). */
  batches_built: number;
  mean_build_ms: number;
  mean_handover_ms: number;
  /** Main thread: batches already built, waiting in the queue, when the loop asked for the next one (mean), and how often the one it wanted was ready. */
  mean_queue_ready: number;
  wanted_ready_share: number;
  /** Times the loop asked worker threads for the next batch (the queue's samples; 0 without workers). */
  asks: number;
  /** Steps in the window (the main thread's step lines; a compute thread's optimizer updates). */
  steps: number;
}

const overlap = (s: Span, windows: Span[]) => windows.reduce((n, w) => n + Math.max(0, Math.min(s.end, w.end) - Math.max(s.start, w.start)), 0);

/** Busy share, waits, batches built, build time and queue depth per thread, over the training epochs. */
export function summarizeTimelines(records: ThreadTimeline[]): ThreadSummary[] {
  const threads = mergeTimelines(records);
  const main = threads.find((t) => t.thread === 'main');
  const epochs = (main?.spans ?? []).filter((s) => EPOCH_SPAN.test(s.name));
  const windows = epochs.length ? epochs : (main?.spans ?? []).filter((s) => s.name === PART_SPAN);
  const window = windows.reduce((n, w) => n + w.end - w.start, 0);
  const meanOf = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  return threads.map((t) => {
    const kind = kindOf(t.thread);
    const within = (name: string) => t.spans.filter((s) => s.name === name && overlap(s, windows) > 0);
    const timeIn = (name: string) => within(name).reduce((n, s) => n + overlap(s, windows), 0);
    const builds = within('build');
    const busy = kind === 'main' ? window - timeIn('data') + timeIn('build') : [...WORK].reduce((n, name) => n + timeIn(name), 0);
    const queue = t.counters.filter((c) => c.name === 'queue');
    return {
      thread: t.thread, kind, window_s: window / 1000, busy_s: busy / 1000, busy_share: window > 0 ? busy / window : 0,
      waiting_s: (window - busy) / 1000, waiting_share: window > 0 ? 1 - busy / window : 0,
      batches_built: builds.length, mean_build_ms: meanOf(builds.map((s) => s.end - s.start)),
      mean_handover_ms: meanOf(within('handover').map((s) => s.end - s.start)),
      mean_queue_ready: meanOf(queue.map((c) => c.values.ready ?? 0)),
      wanted_ready_share: meanOf(queue.map((c) => c.values.wanted_ready ?? 0)),
      asks: queue.length,
      steps: within(kind === 'main' ? 'step' : 'optimizer').length,
    };
  });
}

/** The per-thread summary as a fixed-width table (for the training output and line-profile.txt). */
export function formatThreadSummary(rows: ThreadSummary[]): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const header = ['Thread', 'Busy', 'Waiting', 'Batches', 'Build ms', 'Queue'];
  const body = rows.map((r) => [r.thread, pct(r.busy_share), pct(r.waiting_share),
    r.batches_built ? String(r.batches_built) : '', r.batches_built ? r.mean_build_ms.toFixed(2) : '',
    r.asks ? `${r.mean_queue_ready.toFixed(2)} (${pct(r.wanted_ready_share)} ready)` : '']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  const window = rows[0]?.window_s ?? 0;
  return [`Threads over ${window.toFixed(3)} s of training (busy: working; waiting: main for a batch, compute threads in the all-reduce or for the next step, loader workers idle;`,
    'queue: batches built and waiting when the loop asked for the next one, and how often that one was ready)', '',
    line(header), '='.repeat(line(header).length), ...body.map(line)].join('\n') + '\n';
}
