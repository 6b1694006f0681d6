/**
 * One writer per folder (a run folder or a sweep folder): a `.lock` file created
 * exclusively, naming its holder (pid, host, since, command). A second process is refused
 * with those facts. A lock left by a process that is gone does not block: on the same host
 * a dead pid frees it at once; elsewhere (a shared file system) a lock whose holder stopped
 * refreshing it for STALE_MS is taken over.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../util/errors';
import { TEMPORARY_NAME } from '../util/path-checks';
import { writeError } from '../util/files';

export const LOCK_FILE = '.lock';
/** The holder refreshes the lock's time this often... */
const REFRESH_MS = 20_000;
/** ...so a lock not refreshed for this long has lost its holder. */
const STALE_MS = 120_000;

export interface LockHolder { pid: number; host: string; since: string; command: string }

/**
 * Removes what interrupted writes left in `dir` (a kill -9 while last.ckpt was written leaves its
 * 31 MB temporary): with the folder's lock held, no other process writes there, so every
 * temporary not of this process is stale.
 */
function removeStaleTemporaries(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    const m = TEMPORARY_NAME.exec(name);
    if (m && Number(m[1].split('-')[1]) !== process.pid) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why an existing lock no longer holds, or undefined while its holder is alive. */
function staleReason(file: string, holder: LockHolder | undefined): string | undefined {
  if (!holder) return 'it is unreadable';
  if (holder.host === os.hostname() && !alive(holder.pid)) return `process ${holder.pid} is gone`;
  const age = Date.now() - fs.statSync(file).mtimeMs;
  if (age > STALE_MS) return `it was last refreshed ${Math.round(age / 1000)} s ago`;
  return undefined;
}

function readHolder(file: string): LockHolder | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

export class FolderLock {
  private readonly timer: NodeJS.Timeout;
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(readonly file: string) {
    this.timer = setInterval(() => {
      const now = new Date();
      try {
        fs.utimesSync(this.file, now, now);
      } catch { /* the folder was removed: nothing to keep */ }
    }, REFRESH_MS).unref();
    process.on('exit', this.onExit);
  }

  /**
   * Takes the lock of `dir` for this process, or refuses naming the holder. `what` says what
   * the folder is, for the message ("run folder", "sweep folder").
   */
  static acquire(dir: string, what: string): FolderLock {
    const file = path.join(dir, LOCK_FILE);
    const me: LockHolder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), command: process.argv.slice(1).map((a) => path.basename(a)).join(' ') };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx' });
        removeStaleTemporaries(dir);
        return new FolderLock(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(err, file);
      }
      const holder = readHolder(file);
      if (holder?.pid === process.pid && holder.host === me.host) {
        throw new UserError(`${what} ${dir} is already in use by this process (pid ${process.pid})`);
      }
      const stale = staleReason(file, holder);
      if (!stale) {
        throw new UserError(`${what} ${dir} is in use by another process: pid ${holder!.pid} on ${holder!.host} since ` +
          `${holder!.since} (${holder!.command}). Wait for it to finish, or use another folder. ` +
          `(If that process is gone, the lock frees itself within ${STALE_MS / 60_000} minutes, or delete ${file}.)`);
      }
      fs.rmSync(file, { force: true }); // a dead holder's lock: take it over (another taker may win the race: try again)
    }
    throw new UserError(`${what} ${dir}: could not take its lock ${file}`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    process.off('exit', this.onExit);
    if (readHolder(this.file)?.pid === process.pid) fs.rmSync(this.file, { force: true });
  }
}
