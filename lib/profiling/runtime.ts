/**
 * The timing core of the line profiler: per-function, per-line hits and wall-clock
 * time. The build's transformer (profiling/transformer.ts) rewrites each profiled
 * function so that it calls `enter` once per call and `frame.line(n)` before each
 * statement; the time between two events is charged to the earlier line, as
 * line_profiler does, awaits included.
 */

export interface FunctionMeta {
  /** Unique key, "file:line:name". */
  id: string;
  /** Source path relative to the project root (TypeScript, not compiled output). */
  file: string;
  name: string;
  /** 1-based line of the function's first line. */
  line: number;
  /** The function's source lines, from `line` on. */
  source: string[];
  /** Whole-function timing only (code that the build did not instrument). */
  wholeFunction?: boolean;
  /** What a line is, by line number (`@phase` tags; `loop` for other loop headers). */
  tags?: Record<number, string>;
  /** Said above a whole-function table instead of the default note. */
  note?: string;
}

import { clearTimeline, recordSpan, takeTimeline, ThreadTimeline } from './trace';

export interface LineCounts { hits: number; seconds: number }

export class FunctionStats {
  readonly lines = new Map<number, LineCounts>();
  /** Loop-header lines (for/for-await): each wait is also kept, for distributions. */
  readonly samples = new Map<number, number[]>();
  calls = 0;
  seconds = 0;
  constructor(readonly meta: FunctionMeta) {}

  add(line: number, seconds: number, hit: boolean): void {
    let c = this.lines.get(line);
    if (!c) this.lines.set(line, (c = { hits: 0, seconds: 0 }));
    c.seconds += seconds;
    if (hit) c.hits++;
    if (!hit && seconds > 0) this.samples.get(line)?.push(seconds);
  }

  markHeader(line: number): void {
    if (!this.samples.has(line)) this.samples.set(line, []);
  }
}

const now = () => performance.now() / 1000;
const ORIGIN_MS = performance.timeOrigin;

/** One call of a profiled function. */
export class Frame {
  private current = -1;
  private t = 0;
  private readonly started: number;
  private open = true;

  constructor(readonly stats: FunctionStats) {
    this.started = this.t = now();
    stats.calls++;
  }

  /** The time since the last event goes to the current line; a tagged line also gets a span on the thread's timeline. */
  private charge(t: number): void {
    this.stats.add(this.current, t - this.t, false);
    const tag = this.stats.meta.tags?.[this.current];
    if (tag) recordSpan(tag, ORIGIN_MS + this.t * 1000, ORIGIN_MS + t * 1000);
  }

  /** Line `n` starts: the time since the previous event goes to the previous line. */
  line(n: number): void {
    if (!this.open) return;
    const t = now();
    if (this.current >= 0) this.charge(t);
    this.stats.add(n, 0, true);
    this.current = n;
    this.t = t;
  }

  /**
   * Back in the enclosing statement after an inline callback returned (e.g. the body of
   * tf.variableGrads): charges the callback's last line, then the enclosing line again,
   * without a new hit.
   */
  resume(n: number): void {
    if (!this.open) return;
    const t = now();
    if (this.current >= 0) this.charge(t);
    this.current = n;
    this.t = t;
  }

  exit(): void {
    if (!this.open) return;
    const t = now();
    if (this.current >= 0) this.charge(t);
    this.stats.seconds += t - this.started;
    this.open = false;
  }
}

/** The frame every profiled function gets while profiling is off: does nothing. */
class NoopFrame extends Frame {
  override line(): void {}
  override resume(): void {}
  override exit(): void {}
}
const NOOP = new NoopFrame(new FunctionStats({ id: 'noop', file: '', name: '', line: 0, source: [] }));

const registry = new Map<string, FunctionMeta>();
let stats = new Map<string, FunctionStats>();
let enabled = ['1', 'true', 'yes'].includes((process.env.LINE_PROFILE ?? '').toLowerCase());

export function isProfiling(): boolean {
  return enabled;
}

/** Turns recording on or off for this process (LINE_PROFILE=1 turns it on at start). */
export function setProfiling(on: boolean): void {
  enabled = on;
}

/** Whether a profiled function is still defined (a notebook cell's function is no longer once a later cell redefines it). */
export function isRegistered(id: string): boolean {
  return registry.has(id);
}

/** Whether a function was defined in a notebook cell (`<cell N>`, notebook/cell-profiler.ts). */
const inCell = (meta: FunctionMeta) => meta.file.startsWith('<cell ');

/**
 * Called once per profiled function when its module (or notebook cell) loads. A cell that
 * defines a function of the same name as an earlier cell's replaces it: its stats start over.
 */
export function register(meta: FunctionMeta): void {
  if (inCell(meta)) {
    for (const [id, old] of registry) {
      if (id !== meta.id && inCell(old) && old.name === meta.name) {
        registry.delete(id);
        stats.delete(id);
      }
    }
  }
  registry.set(meta.id, meta);
}

function statsFor(id: string): FunctionStats {
  let s = stats.get(id);
  if (!s) {
    const meta = registry.get(id);
    if (!meta) throw new Error(`line profiler: function ${id} was not registered`);
    stats.set(id, (s = new FunctionStats(meta)));
  }
  return s;
}

/** Starts one call of a profiled function. */
export function enter(id: string): Frame {
  return enabled ? new Frame(statsFor(id)) : NOOP;
}

/**
 * Wraps the iterable of a `for`/`for await` loop so that every request for the next
 * item is a hit of the loop's header line: the wait for the next batch is charged to
 * `for await (const batch of loader)`, as line_profiler charges Python's `for` line.
 */
export function iter<T>(frame: Frame, line: number, iterable: AsyncIterable<T> | Iterable<T>): AsyncIterable<T> | Iterable<T> {
  if (frame === NOOP) return iterable;
  frame.stats.markHeader(line);
  if (Symbol.asyncIterator in iterable) {
    return { [Symbol.asyncIterator]: () => countNext(frame, line, (iterable as AsyncIterable<T>)[Symbol.asyncIterator]()) };
  }
  return { [Symbol.iterator]: () => countNext(frame, line, (iterable as Iterable<T>)[Symbol.iterator]()) };
}

/** The same iterator, with every next() a hit of the loop header's line. */
function countNext<I extends Iterator<unknown> | AsyncIterator<unknown>>(frame: Frame, line: number, it: I): I {
  return {
    next: (...a: [] | [unknown]) => { frame.line(line); return it.next(...a); },
    return: it.return ? (v?: unknown) => it.return!(v) : undefined,
    throw: it.throw ? (e?: unknown) => it.throw!(e) : undefined,
  } as unknown as I;
}

/** What was recorded since the last reset, one entry per function that ran. */
export function snapshot(): FunctionStats[] {
  return [...stats.values()].map((s) => {
    const copy = new FunctionStats(s.meta);
    copy.calls = s.calls;
    copy.seconds = s.seconds;
    for (const [line, c] of s.lines) copy.lines.set(line, { ...c });
    for (const [line, xs] of s.samples) copy.samples.set(line, [...xs]);
    return copy;
  });
}

/** What other threads (loader workers, compute threads) recorded since the last reset, gathered by this one. */
export interface ThreadRecord extends ThreadTimeline { stats: StoredStats[] }
let gathered: ThreadRecord[] = [];

/** Keeps another thread's record (its line stats and timeline), until the next reset. */
export function absorb(record: ThreadRecord): void {
  if (enabled) gathered.push(record);
}

/** The other threads' records gathered since the last reset. */
export function gatheredRecords(): ThreadRecord[] {
  return [...gathered];
}

/** This thread's record since the last reset (in a worker thread: what it hands to the main thread), under a track name. */
export function takeThreadRecord(thread: string): ThreadRecord {
  const record = { ...takeTimeline(thread), stats: snapshot().map(storeStats) };
  stats = new Map();
  return record;
}

export function reset(): void {
  stats = new Map();
  gathered = [];
  clearTimeline();
}

/** Records a whole call of a function the build did not instrument. */
export function recordWholeCall(id: string, seconds: number): void {
  if (!enabled) return;
  const s = statsFor(id);
  s.calls++;
  s.seconds += seconds;
  s.add(s.meta.line, seconds, true);
}

/** A FunctionStats as plain JSON (kept in a run folder, so that a resumed run's profile covers every epoch). */
export interface StoredStats { meta: FunctionMeta; calls: number; seconds: number; lines: [number, number, number][]; samples: [number, number[]][] }

export function storeStats(s: FunctionStats): StoredStats {
  return { meta: s.meta, calls: s.calls, seconds: s.seconds, lines: [...s.lines].map(([line, c]) => [line, c.hits, c.seconds]), samples: [...s.samples] };
}

export function restoreStats(stored: StoredStats): FunctionStats {
  const s = new FunctionStats(stored.meta);
  s.calls = stored.calls;
  s.seconds = stored.seconds;
  for (const [line, hits, seconds] of stored.lines) s.lines.set(line, { hits, seconds });
  for (const [line, xs] of stored.samples) s.samples.set(line, [...xs]);
  return s;
}

/** Adds up several snapshots (e.g. one per epoch) function by function. */
export function mergeStats(parts: FunctionStats[][]): FunctionStats[] {
  const merged = new Map<string, FunctionStats>();
  for (const part of parts) {
    for (const s of part) {
      let m = merged.get(s.meta.id);
      if (!m) merged.set(s.meta.id, (m = new FunctionStats(s.meta)));
      m.calls += s.calls;
      m.seconds += s.seconds;
      for (const [line, c] of s.lines) {
        const into = m.lines.get(line) ?? { hits: 0, seconds: 0 };
        into.hits += c.hits;
        into.seconds += c.seconds;
        m.lines.set(line, into);
      }
      for (const [line, xs] of s.samples) m.samples.set(line, [...(m.samples.get(line) ?? []), ...xs]);
    }
  }
  return [...merged.values()];
}
