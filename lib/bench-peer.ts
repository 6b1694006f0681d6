/**
 * The PyTorch peer of `npm run bench -- --model all --peer`: the zoo's models trained the
 * same way by PyTorch on this machine (scripts/pytorch_peer.py), so that our speed is a
 * ratio measured in the same run, not a figure from another day. PyTorch is for measuring
 * only, never a dependency: where no Python here imports torch, the bench says why and
 * goes on without the peer.
 */
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { projectRoot } from './util/paths';
import { warmupSeconds } from './bench';

export interface PeerResult {
  model: string;
  parameters: number;
  threads: number;
  batch_size: number;
  train_step_ms: number;
  train_samples_per_s: number;
  /** torch.__version__ */
  torch: string;
  /** The BLAS library torch loaded (without OpenBLAS, Debian's torch is about 5x slower). */
  blas: string;
}

/** Where a peer was found, or why none was. */
export type PeerPython = { python: string } | { missing: string };

/** $MNIST_LAB_PEER_PYTHON when set (only it); else python3 on the PATH, then Debian's /usr/bin/python3. */
export function findPeerPython(env = process.env): PeerPython {
  const candidates = env.MNIST_LAB_PEER_PYTHON ? [env.MNIST_LAB_PEER_PYTHON] : ['python3', '/usr/bin/python3'];
  const tried: string[] = [];
  for (const python of [...new Set(candidates)]) {
    const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return { python };
    tried.push(`${python}: ${r.error ? r.error.message : (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`)}`);
  }
  return { missing: `no Python here imports torch (${tried.join('; ')}); install Debian's python3-torch and libopenblas0-pthread, or set MNIST_LAB_PEER_PYTHON` };
}

/** Trains `model` in PyTorch as the bench trains ours; the median step of `steps` after the same warm-up (3 steps, at least warmupSeconds()). */
export function runPeer(python: string, model: string, o: { threads: number; batchSize: number; steps: number }): PeerResult {
  const script = path.join(projectRoot(), 'scripts', 'pytorch_peer.py');
  const r = spawnSync(python, [script, model, '--threads', String(o.threads), '--batch-size', String(o.batchSize), '--steps', String(o.steps),
    '--warmup-seconds', String(warmupSeconds())],
    { encoding: 'utf8', timeout: 600_000 });
  const line = r.stdout?.trim().split('\n').pop();
  if (r.status !== 0 || !line) throw new Error(`the PyTorch peer failed on ${model} (${python} ${script}): ${r.error?.message ?? r.stderr.trim()}`);
  return JSON.parse(line) as PeerResult;
}
