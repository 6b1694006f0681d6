import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fromTraceFile, recordSpan, summarizeTimelines, takeTimeline, ThreadSummary, ThreadTimeline, toTraceFile, TraceEvent, TraceFile } from '../../lib/profiling/trace';
import { ProfileSession } from '../../lib/profiling/session';
import { runCli, tmpDir } from '../helpers';

/**
 * Checks a file against Chrome's trace-event format (JSON object form): the fields each
 * phase requires, one named track per thread, per-track times in order, and complete events
 * that nest (a span that starts inside another ends inside it).
 */
function validateTrace(file: TraceFile): Map<string, TraceEvent[]> {
  assert.ok(Array.isArray(file.traceEvents), 'traceEvents is an array');
  assert.equal(file.displayTimeUnit, 'ms');
  const names = new Map<number, string>();
  for (const e of file.traceEvents) {
    assert.equal(typeof e.name, 'string', JSON.stringify(e));
    assert.ok(['X', 'C', 'M'].includes(e.ph), `phase ${e.ph}`);
    assert.ok(Number.isInteger(e.pid) && Number.isInteger(e.tid), `pid/tid of ${JSON.stringify(e)}`);
    assert.ok(typeof e.ts === 'number' && Number.isFinite(e.ts) && e.ts >= 0, `ts of ${JSON.stringify(e)}`);
    if (e.ph === 'X') assert.ok(typeof e.dur === 'number' && e.dur >= 0, `dur of ${JSON.stringify(e)}`);
    if (e.ph === 'C') assert.ok(Object.values(e.args ?? {}).every((v) => typeof v === 'number'), 'counter values are numbers');
    if (e.ph === 'M' && e.name === 'thread_name') {
      assert.ok(!names.has(e.tid), `one name per track (tid ${e.tid})`);
      names.set(e.tid, String((e.args as { name: string }).name));
    }
  }
  assert.equal(new Set(names.values()).size, names.size, 'one track per thread');
  const tracks = new Map<string, TraceEvent[]>();
  for (const [tid, name] of names) {
    const events = file.traceEvents.filter((e) => e.tid === tid && e.ph !== 'M');
    const spans = events.filter((e) => e.ph === 'X');
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i].ts >= spans[i - 1].ts, `${name}: span times in order at ${i}`);
    const counters = events.filter((e) => e.ph === 'C');
    for (let i = 1; i < counters.length; i++) assert.ok(counters[i].ts >= counters[i - 1].ts, `${name}: counter times in order`);
    // Nesting: each span ends inside the span it starts in (a stack of open spans).
    const open: TraceEvent[] = [];
    const eps = 0.002; // µs, rounding
    for (const s of spans) {
      while (open.length && s.ts >= open[open.length - 1].ts + open[open.length - 1].dur! - eps) open.pop();
      const parent = open[open.length - 1];
      if (parent) {
        assert.ok(s.ts + s.dur! <= parent.ts + parent.dur! + eps,
          `${name}: '${s.name}' at ${s.ts} (${s.dur} µs) overlaps the end of '${parent.name}' at ${parent.ts} (${parent.dur} µs)`);
      }
      open.push(s);
    }
    tracks.set(name, events);
  }
  return tracks;
}

describe('every thread on a timeline (Chrome trace-event format)', () => {
  it('records a span per tagged stretch, merging a tag that runs on over consecutive lines', () => {
    takeTimeline('main');
    recordSpan('build', 10, 12);
    recordSpan('build', 12, 15); // continues: one span
    recordSpan('handover', 15, 16);
    recordSpan('build', 20, 21); // after a gap: a new one
    const t = takeTimeline('loader worker 1');
    assert.deepEqual(t.spans.map((s) => [s.name, s.start, s.end]), [['build', 10, 15], ['handover', 15, 16], ['build', 20, 21]]);
    assert.equal(takeTimeline('main').spans.length, 0, 'taking starts a new record');
  });

  it('summarises each thread over the training epochs: busy and waiting shares, batches, build time, queue', () => {
    const main: ThreadTimeline = {
      thread: 'main',
      spans: [{ name: 'epoch 1', start: 0, end: 100 }, { name: 'data', start: 0, end: 10 }, { name: 'step', start: 10, end: 50 },
        { name: 'data', start: 50, end: 55 }, { name: 'step', start: 55, end: 100 }, { name: 'test', start: 100, end: 130 }],
      counters: [{ name: 'queue', at: 0, values: { ready: 0, wanted_ready: 0 } }, { name: 'queue', at: 50, values: { ready: 2, wanted_ready: 1 } }],
    };
    const worker: ThreadTimeline = {
      thread: 'loader worker 1',
      spans: [{ name: 'build', start: 0, end: 8 }, { name: 'handover', start: 8, end: 9 }, { name: 'idle', start: 9, end: 40 },
        { name: 'build', start: 40, end: 52 }, { name: 'handover', start: 52, end: 53 }, { name: 'build', start: 110, end: 114 }],
      counters: [],
    };
    const compute: ThreadTimeline = {
      thread: 'compute thread 1',
      spans: [{ name: 'forward', start: 12, end: 30 }, { name: 'allreduce', start: 30, end: 45 }, { name: 'optimizer', start: 45, end: 48 }],
      counters: [],
    };
    const byThread = new Map(summarizeTimelines([worker, compute, main]).map((s) => [s.thread, s]));
    assert.deepEqual([...byThread.keys()], ['main', 'compute thread 1', 'loader worker 1'], 'main, compute threads, loader workers');
    const m = byThread.get('main')!;
    assert.equal(m.window_s, 0.1);
    assert.ok(Math.abs(m.waiting_share - 0.15) < 1e-12 && Math.abs(m.busy_share - 0.85) < 1e-12);
    assert.equal(m.mean_queue_ready, 1);
    assert.equal(m.wanted_ready_share, 0.5);
    assert.equal(m.asks, 2);
    assert.equal(m.steps, 2);
    const w = byThread.get('loader worker 1')!;
    assert.equal(w.batches_built, 2, 'the build during the test pass is outside the training window');
    assert.equal(w.mean_build_ms, 10);
    assert.ok(Math.abs(w.busy_share - 0.22) < 1e-12, `busy ${w.busy_share}`);
    assert.ok(Math.abs(w.busy_share + w.waiting_share - 1) < 1e-12);
    const c = byThread.get('compute thread 1')!;
    assert.ok(Math.abs(c.busy_share - 0.21) < 1e-12, 'forward and optimizer are work; the all-reduce is not');
  });

  it('a session around a loop of one\'s own (no epochs) summarises the threads over that loop\'s time, not over 0 s', () => {
    const session = new ProfileSession();
    const t0 = performance.now();
    while (performance.now() - t0 < 40); // the loop: busy on this thread
    session.end();
    const [main] = session.threadSummary();
    session.close();
    assert.equal(main.thread, 'main');
    assert.ok(main.window_s >= 0.035 && main.window_s < 2, `window ${main.window_s} s`);
    assert.ok(main.busy_share > 0.99, `busy ${main.busy_share}`);
    assert.doesNotMatch(session.text(), /Threads over 0\.000 s/);
  });

  it('writes the tracks as trace events and reads them back', () => {
    const records: ThreadTimeline[] = [
      { thread: 'loader worker 2', spans: [{ name: 'build', start: 1000.5, end: 1001.25 }], counters: [] },
      { thread: 'main', spans: [{ name: 'epoch 1', start: 1000, end: 1010 }, { name: 'data', start: 1000, end: 1002 }], counters: [{ name: 'queue', at: 1000, values: { ready: 1 } }] },
      { thread: 'loader worker 1', spans: [{ name: 'build', start: 1000.25, end: 1000.75 }], counters: [] },
    ];
    const file = toTraceFile(records, 'test');
    const tracks = validateTrace(file);
    assert.deepEqual([...tracks.keys()], ['main', 'loader worker 1', 'loader worker 2']);
    assert.deepEqual(tracks.get('main')!.filter((e) => e.ph === 'X').map((e) => [e.name, e.ts, e.dur]), [['epoch 1', 0, 10000], ['data', 0, 2000]]);
    const back = fromTraceFile(JSON.parse(JSON.stringify(file)));
    assert.deepEqual(back.map((t) => t.thread), ['main', 'loader worker 1', 'loader worker 2']);
    assert.deepEqual(back[2].spans, [{ name: 'build', start: 1000.5, end: 1001.25 }]);
  });

  it('handles a long run: 300,000 spans on one track (more than a function call takes as arguments)', () => {
    const spans = Array.from({ length: 300_000 }, (_, i) => ({ name: 'build', start: 1000 + i, end: 1000.5 + i }));
    const file = toTraceFile([{ thread: 'loader worker 1', spans, counters: [] }], 'long');
    assert.equal(file.otherData.origin_ms, 1000);
    const back = fromTraceFile(file);
    assert.equal(back[0].spans.length, 300_000);
    assert.equal(summarizeTimelines(back)[0].thread, 'loader worker 1');
  });

  it('a profiled run writes trace.json with every thread, and threads.json; a resumed run keeps the earlier epochs', () => {
    const out = path.join(tmpDir('trace-'), 'run');
    const args = ['--workers', '2', '--compute-threads', '2', '--limit', '256', '--backend', 'wasm', '--profile', '--plain', '--out', out];
    let r = runCli('train', [...args, '--epochs', '1']);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    r = runCli('train', [...args, '--epochs', '2', '--resume', out]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const file = JSON.parse(fs.readFileSync(path.join(out, 'trace.json'), 'utf8')) as TraceFile;
    const tracks = validateTrace(file);
    assert.deepEqual([...tracks.keys()], ['main', 'compute thread 1', 'loader worker 1', 'loader worker 2']);
    const names = (t: string) => new Set(tracks.get(t)!.filter((e) => e.ph === 'X').map((e) => e.name));
    for (const n of ['epoch 1', 'epoch 2', 'test', 'data', 'scatter', 'step', 'forward', 'loss', 'backward', 'allreduce', 'optimizer']) assert.ok(names('main').has(n), `main: ${n}`);
    for (const n of ['forward', 'backward', 'allreduce', 'optimizer']) assert.ok(names('compute thread 1').has(n), `compute thread 1: ${n}`);
    for (const n of ['build', 'handover', 'idle']) assert.ok(names('loader worker 1').has(n), `loader worker 1: ${n}`);
    // 256 samples in batches of 64: 4 steps per epoch, 8 in the two epochs (the first from before the resume).
    const count = (t: string, n: string) => tracks.get(t)!.filter((e) => e.ph === 'X' && e.name === n).length;
    assert.equal(count('main', 'step'), 8);
    assert.equal(count('compute thread 1', 'optimizer'), 8);
    assert.equal(count('loader worker 1', 'build') + count('loader worker 2', 'build'), 8);
    assert.equal(tracks.get('main')!.filter((e) => e.ph === 'C' && e.name === 'queue').length, 8, 'the queue each time the loop asked');
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'threads.json'), 'utf8')) as ThreadSummary[];
    assert.deepEqual(summary.map((s) => s.thread), ['main', 'compute thread 1', 'loader worker 1', 'loader worker 2']);
    assert.equal(summary.filter((s) => s.kind === 'loader').reduce((n, s) => n + s.batches_built, 0), 8);
    for (const s of summary) assert.ok(s.busy_share > 0 && s.busy_share <= 1 && Math.abs(s.busy_share + s.waiting_share - 1) < 1e-9, JSON.stringify(s));
    assert.match(r.stdout, /Thread +Busy +Waiting +Batches +Build ms +Queue\n=+\nmain /);
  });
});
