/**
 * A DataLoader worker thread: builds whole batches from sample indices, reading the
 * data set from memory shared with the main thread, and hands each batch back by
 * transferring its buffers (no copy either way).
 *
 * While the main thread profiles, so does the worker: `buildBatch` is line-profiled, its
 * tagged lines and the idle time between batches go on the worker's timeline, and the
 * main thread collects both ('collect') before the worker ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { collate, CollateContext } from './transforms';
import { IMAGE_SIZE } from './dataset';
import { profile } from '../profiling';
import { isProfiling, setProfiling, takeThreadRecord, ThreadRecord } from '../profiling/runtime';
import { clock, recordSpan } from '../profiling/trace';

export interface WorkerInit {
  images: Uint8Array; // backed by a SharedArrayBuffer
  labels: Uint8Array;
  /** The worker's track name on the timeline ('loader worker 1', ...). */
  thread: string;
}

export type BatchRequest =
  | { type: 'batch'; id: number; indices: Int32Array; context: CollateContext; batch: number; profile: boolean }
  | { type: 'collect'; id: number };

export type BatchReply =
  | { id: number; images: Float32Array; labels: Int32Array; builtAt?: number }
  | { id: number; record: ThreadRecord }
  | { id: number; error: { message: string; stack?: string } };

const { images, labels, thread } = workerData as WorkerInit;
const port = parentPort!;
/** When the last batch was handed over (the worker has been idle since). */
let lastDone: number | undefined;

/** Builds one batch and hands it to the main thread. */
const buildBatch = profile(function buildBatch(req: Extract<BatchRequest, { type: 'batch' }>): void {
  const out = new Float32Array(req.indices.length * IMAGE_SIZE * IMAGE_SIZE); // @phase build: allocate, decode, augment and normalise
  const outLabels = new Int32Array(req.indices.length); // @phase build
  collate(images, labels, req.indices, out, outLabels, req.context); // @phase build
  const reply: BatchReply = { id: req.id, images: out, labels: outLabels, builtAt: req.profile ? clock() : undefined }; // @phase handover
  port.postMessage(reply, [out.buffer, outLabels.buffer]); // @phase handover: the buffers move to the main thread
});

port.on('message', (req: BatchRequest) => {
  if (req.type === 'collect') {
    // Idle from the last batch to the end of the epoch (the main thread collects when it has taken every batch).
    if (lastDone !== undefined && isProfiling()) recordSpan('idle', lastDone, clock());
    const reply: BatchReply = { id: req.id, record: takeThreadRecord(thread) };
    port.postMessage(reply);
    lastDone = undefined;
    return;
  }
  try {
    if (req.profile !== isProfiling()) setProfiling(req.profile);
    if (req.profile) {
      const now = clock();
      if (lastDone !== undefined && now > lastDone) recordSpan('idle', lastDone, now);
    }
    buildBatch(req);
    if (req.profile) lastDone = clock();
  } catch (err) {
    const e = err as Error;
    const reply: BatchReply = { id: req.id, error: { message: e.message ?? String(err), stack: e.stack } };
    port.postMessage(reply);
  }
});
