import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { Split } from '../../lib/data/dataset';
import { Batch, DataLoader } from '../../lib/data/loader';
import { projectRoot } from '../../lib/util/paths';

function syntheticSplit(count: number): Split {
  const images = new Uint8Array(count * 784);
  for (let i = 0; i < images.length; i++) images[i] = (i * 2654435761) >>> 24;
  return { images, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), count };
}

async function digest(loader: DataLoader, epoch: number): Promise<string[]> {
  loader.setEpoch(epoch);
  const out: string[] = [];
  for await (const b of loader) {
    out.push(`${b.index}:${b.size}:` + crypto.createHash('sha1').update(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength))
      .update(Buffer.from(b.labels.buffer, b.labels.byteOffset, b.labels.byteLength)).digest('hex'));
  }
  return out;
}

describe('DataLoader', () => {
  const split = syntheticSplit(300);
  const options = { batchSize: 32, shuffle: true, seed: 5, augment: { rotate: 15, shift: 2 } };

  it('gives byte-identical batches, augmentation included, with 0, 1, 2 and 8 workers', async () => {
    const reference = await digest(new DataLoader(split, { ...options, numWorkers: 0 }), 3);
    assert.equal(reference.length, 10); // 9 full batches and a last one of 12
    assert.match(reference[9], /^9:12:/);
    for (const numWorkers of [1, 2, 8]) {
      assert.deepEqual(await digest(new DataLoader(split, { ...options, numWorkers }), 3), reference, `${numWorkers} workers`);
    }
    // A different epoch reshuffles and re-augments.
    assert.notDeepEqual(await digest(new DataLoader(split, { ...options, numWorkers: 2 }), 4), reference);
  });

  it('normalises as the reference: (x/255 - 0.1307) / 0.3081, labels intact', async () => {
    const loader = new DataLoader(split, { batchSize: 4, numWorkers: 1 });
    const first = (await loader[Symbol.asyncIterator]().next()).value as Batch;
    assert.ok(Math.abs(first.images[5] - (split.images[5] / 255 - 0.1307) / 0.3081) < 1e-6);
    assert.deepEqual([...first.labels], [0, 1, 2, 3]);
    await loader.close();
  });

  it('keeps persistent workers across epochs (the same threads) with the same results', async () => {
    const loader = new DataLoader(split, { ...options, numWorkers: 2, persistentWorkers: true });
    const a = await digest(loader, 1);
    const threads = loader.workerThreadIds;
    assert.equal(threads.length, 2, 'two workers alive after the epoch');
    const b = await digest(loader, 1);
    assert.deepEqual(loader.workerThreadIds, threads, 'the same worker threads served the second epoch');
    assert.deepEqual(a, b);
    await loader.close();
    assert.deepEqual(loader.workerThreadIds, []);
  });

  it('ends non-persistent workers after each epoch and starts new ones for the next', async () => {
    const loader = new DataLoader(split, { ...options, numWorkers: 2 });
    const seen: number[][] = [];
    for (let e = 0; e < 2; e++) {
      for await (const b of loader) if (b.index === 0) seen.push(loader.workerThreadIds);
      assert.deepEqual(loader.workerThreadIds, [], `no workers left after epoch ${e + 1}`);
    }
    assert.equal(seen[0].length, 2);
    assert.ok(seen[0].every((id) => !seen[1].includes(id)), `new threads for the second epoch: ${seen[0]} then ${seen[1]}`);
  });

  it('rejects with the worker\'s error and stack when a worker throws, and does not hang', async () => {
    const sampler = Array.from({ length: 100 }, (_, i) => (i === 70 ? 9999 : i));
    const loader = new DataLoader(split, { batchSize: 10, numWorkers: 2, sampler });
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const b of loader) seen.push(b.index);
    }, (err: Error) => {
      assert.match(err.message, /DataLoader worker 1 failed on batch 7: sample index 9999 is out of range: the data set has 300 samples/);
      assert.match(err.stack!, /--- worker stack ---\nRangeError: sample index 9999[\s\S]*collate/);
      return true;
    });
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6]);
  });

  it('validates its options', () => {
    assert.throws(() => new DataLoader(split, { batchSize: 0 }), /batchSize must be a positive integer, got 0/);
    assert.throws(() => new DataLoader(split, { batchSize: 4, numWorkers: -1 }), /numWorkers must be an integer >= 0, got -1/);
  });

  // Each scenario runs in a fresh process that must exit by itself: leftover workers would keep it alive.
  const scenarios: Record<string, string> = {
    'a break out of the loop': 'for await (const b of loader) { if (b.index === 2) break; }',
    'an exception in the loop body': 'try { for await (const b of loader) { if (b.index === 2) throw new Error("step failed"); } } catch {}',
    'persistent workers never closed': 'const l2 = new DataLoader(split, { batchSize: 16, numWorkers: 3, persistentWorkers: true }); for await (const b of l2) {}',
    'a full epoch': 'for await (const b of loader) {}',
  };
  for (const [name, body] of Object.entries(scenarios)) {
    it(`ends its workers after ${name} (the process exits by itself)`, () => {
      const script = `
        const { DataLoader } = require(${JSON.stringify(path.join(projectRoot(), 'dist', 'lib', 'data', 'loader.js'))});
        const split = { images: new Uint8Array(200 * 784), labels: new Uint8Array(200), count: 200 };
        const loader = new DataLoader(split, { batchSize: 16, numWorkers: 4 });
        (async () => { ${body} console.log('done'); })();`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.signal, null, `process did not exit by itself (${name})`);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /done/);
    });
  }
});
