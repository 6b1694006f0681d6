/** The reference's test pass: average NLL and accuracy over a split, without dropout. */
import * as tf from '@tensorflow/tfjs';
import type { Split } from '../data/dataset';
import { DataLoader } from '../data/loader';
import { nllLoss } from './loss';

export interface TestResult { loss: number; correct: number; total: number; accuracy: number }

/** Summed NLL and correct predictions over a split (what each compute thread hands back for its part). */
export interface TestSums { lossSum: number; correct: number; count: number }

/** Average NLL and accuracy over a split, in batches of `batchSize` (no dropout). */
export async function evaluate(model: tf.LayersModel, split: Split, batchSize: number): Promise<TestResult> {
  return testResult(await evaluateSums(model, split, batchSize));
}

/** The average loss and accuracy of summed parts (one per compute thread). */
export function testResult(...parts: TestSums[]): TestResult {
  const lossSum = parts.reduce((n, p) => n + p.lossSum, 0);
  const correct = parts.reduce((n, p) => n + p.correct, 0);
  const total = parts.reduce((n, p) => n + p.count, 0);
  return { loss: lossSum / total, correct, total, accuracy: (100 * correct) / total };
}

/** Summed NLL and correct predictions over a split, in batches of `batchSize`. */
export async function evaluateSums(model: tf.LayersModel, split: Split, batchSize: number): Promise<TestSums> {
  const loader = new DataLoader(split, { batchSize });
  let lossSum = 0;
  let correct = 0;
  for await (const batch of loader) {
    const [l, c] = tf.tidy(() => {
      const data = tf.tensor4d(batch.images, [batch.size, 28, 28, 1]);
      const target = tf.tensor1d(batch.labels, 'int32');
      const out = model.apply(data, { training: false }) as tf.Tensor;
      return [nllLoss(out, target).mul(batch.size), out.argMax(1).equal(target).sum()];
    });
    lossSum += (await l.data())[0];
    correct += (await c.data())[0];
    tf.dispose([l, c]);
  }
  return { lossSum, correct, count: split.count };
}

/** The model's log-probabilities for every image of a split, [count × 10] row by row (no dropout). */
export async function predictLogProbs(model: tf.LayersModel, split: Split, batchSize: number): Promise<Float32Array> {
  const out = new Float32Array(split.count * 10);
  for await (const batch of new DataLoader(split, { batchSize })) {
    const logProbs = tf.tidy(() => model.apply(tf.tensor4d(batch.images, [batch.size, 28, 28, 1]), { training: false }) as tf.Tensor);
    out.set(await logProbs.data() as Float32Array, batch.index * batchSize * 10);
    logProbs.dispose();
  }
  return out;
}

/** Rows [start, start + count) of a split (copies: for another thread). */
export function splitPart(split: Split, start: number, count: number): Split {
  const px = 28 * 28;
  return { images: split.images.slice(start * px, (start + count) * px), labels: split.labels.slice(start, start + count), count };
}

/** `Test set: Average loss: 0.1124, Accuracy: 1935/2000 (96.75%)`, as the reference prints it. */
export function testLogLine(test: TestResult): string {
  return `\nTest set: Average loss: ${test.loss.toFixed(4)}, Accuracy: ${test.correct}/${test.total} (${test.accuracy.toFixed(2)}%)\n`;
}
