import seedrandom from 'seedrandom';

/**
 * Seeded random streams. Every stream is derived from (seed, purpose, epoch) so a
 * resumed run draws the same numbers as an uninterrupted one without saving RNG state.
 */
export function rng(seed: number, ...parts: (string | number)[]): () => number {
  return seedrandom([seed, ...parts].join(':'));
}

/** A permutation of 0..n-1 (Fisher-Yates) from the given generator. */
export function permutation(n: number, random: () => number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

/** A 31-bit integer seed from a generator, for tf ops that take a numeric seed. */
export function intSeed(random: () => number): number {
  return Math.floor(random() * 0x7fffffff);
}
