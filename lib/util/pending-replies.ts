/**
 * Replies awaited from worker threads, by request id: the bookkeeping shared by the
 * DataLoader's worker pool and the compute threads. After a failure every waiting request
 * fails with it, and so does every new one.
 */
export interface Waiting<T, Info> { resolve: (value: T) => void; reject: (err: Error) => void; info: Info }

export class PendingReplies<T, Info = undefined> {
  private readonly waiting = new Map<number, Waiting<T, Info>>();
  private nextId = 0;
  /** The first failure; set once. */
  failure?: Error;

  /** Sends a request under a fresh id (`send(id)`) and returns the promise of its reply. */
  request(info: Info, send: (id: number) => void): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, info });
      send(id);
    });
  }

  /** The request waiting for reply `id`, no longer waiting (undefined if none). */
  take(id: number): Waiting<T, Info> | undefined {
    const w = this.waiting.get(id);
    this.waiting.delete(id);
    return w;
  }

  /** Fails every waiting request with the first failure. */
  failAll(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.values()) w.reject(this.failure);
    this.waiting.clear();
  }

  get size(): number {
    return this.waiting.size;
  }
}
