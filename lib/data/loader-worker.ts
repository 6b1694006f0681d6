/**
 * A DataLoader worker thread: builds whole batches from sample indices, reading the
 * data set from memory shared with the main thread, and hands each batch back by
 * transferring its buffers (no copy either way).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { collate, CollateContext } from './transforms';
import { IMAGE_SIZE } from './dataset';

export interface WorkerInit {
  images: Uint8Array; // backed by a SharedArrayBuffer
  labels: Uint8Array;
}

export interface BatchRequest {
  id: number;
  indices: Int32Array;
  context: CollateContext;
}

export type BatchReply =
  | { id: number; images: Float32Array; labels: Int32Array }
  | { id: number; error: { message: string; stack?: string } };

const { images, labels } = workerData as WorkerInit;
const port = parentPort!;

port.on('message', (req: BatchRequest) => {
  try {
    const out = new Float32Array(req.indices.length * IMAGE_SIZE * IMAGE_SIZE);
    const outLabels = new Int32Array(req.indices.length);
    collate(images, labels, req.indices, out, outLabels, req.context);
    const reply: BatchReply = { id: req.id, images: out, labels: outLabels };
    port.postMessage(reply, [out.buffer, outLabels.buffer]);
  } catch (err) {
    const e = err as Error;
    const reply: BatchReply = { id: req.id, error: { message: e.message ?? String(err), stack: e.stack } };
    port.postMessage(reply);
  }
});
