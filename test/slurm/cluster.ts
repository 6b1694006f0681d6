/**
 * A throw-away single-node Slurm on localhost for the tests (Debian's slurm-wlm and
 * munge, as root): its own munge key and socket, config, state and spool folders under a
 * temporary directory, daemons in the foreground as our children, stopped by pid.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';

const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();

/** Why a local Slurm cannot run here, or null when it can. */
export function slurmUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (slurmd and munged need root here)';
  const missing = ['slurmctld', 'slurmd', 'munged', 'sbatch', 'scontrol'].filter((c) => !which(c) && !fs.existsSync(`/usr/sbin/${c}`));
  return missing.length ? `missing ${missing.join(', ')} (apt-get install slurm-wlm munge)` : null;
}

export interface JobState { id: string; state: string; exitCode: string; raw: string }

export class LocalSlurm {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slurm-'));
  readonly env: NodeJS.ProcessEnv;
  private readonly daemons: ChildProcess[] = [];
  private readonly host = os.hostname().split('.')[0];

  constructor() {
    this.env = { ...process.env, SLURM_CONF: path.join(this.dir, 'slurm.conf') };
  }

  private bin(name: string): string {
    return which(name) || `/usr/sbin/${name}`;
  }

  async start(): Promise<void> {
    const d = this.dir;
    for (const sub of ['munge', 'state', 'spool', 'log']) fs.mkdirSync(path.join(d, sub), { recursive: true });
    fs.chmodSync(path.join(d, 'munge'), 0o755);
    fs.writeFileSync(path.join(d, 'munge.key'), crypto.randomBytes(1024), { mode: 0o400 });
    const socket = path.join(d, 'munge', 'munge.socket.2');
    const port = 20000 + Math.floor(Math.random() * 20000);
    const memMb = Math.floor(os.totalmem() / 2 ** 20) - 1024;
    fs.writeFileSync(path.join(d, 'slurm.conf'), [
      'ClusterName=mnistlab', `SlurmctldHost=${this.host}(127.0.0.1)`, 'SlurmUser=root', 'SlurmdUser=root',
      `SlurmctldPort=${port}`, `SlurmdPort=${port + 1}`,
      'AuthType=auth/munge', 'CredType=cred/munge', `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${d}/state`, `SlurmdSpoolDir=${d}/spool`,
      `SlurmctldPidFile=${d}/slurmctld.pid`, `SlurmdPidFile=${d}/slurmd.pid`,
      `SlurmctldLogFile=${d}/log/slurmctld.log`, `SlurmdLogFile=${d}/log/slurmd.log`,
      'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'SelectType=select/cons_tres', 'SelectTypeParameters=CR_CPU',
      'EnforcePartLimits=ALL', 'SchedulerParameters=batch_sched_delay=0', 'MailProg=/bin/true', 'ReturnToService=2',
      'MinJobAge=600', 'KillWait=10', 'OverTimeLimit=0', 'InactiveLimit=0', 'JobAcctGatherType=jobacct_gather/none',
      `NodeName=${this.host} NodeAddr=127.0.0.1 CPUs=${os.availableParallelism()} RealMemory=${memMb} State=UNKNOWN`,
      `PartitionName=debug Nodes=${this.host} Default=YES MaxTime=INFINITE State=UP`,
    ].join('\n') + '\n');
    this.daemon(this.bin('munged'), ['--foreground', '--force', `--socket=${socket}`, `--key-file=${d}/munge.key`,
      `--pid-file=${d}/munge/munged.pid`, `--log-file=${d}/log/munged.log`, `--seed-file=${d}/munge/seed`]);
    await this.until(() => fs.existsSync(socket), 10_000, 'munged socket');
    this.daemon(this.bin('slurmctld'), ['-D', '-i', '-f', path.join(d, 'slurm.conf')]);
    this.daemon(this.bin('slurmd'), ['-D', '-f', path.join(d, 'slurm.conf')]);
    await this.until(() => /idle/.test(this.run('sinfo', ['-h', '-o', '%T'], true)), 30_000, 'an idle node');
  }

  private daemon(bin: string, args: string[]): void {
    const child = spawn(bin, args, { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (b) => fs.appendFileSync(path.join(this.dir, 'log', `${path.basename(bin)}.stderr`), b));
    this.daemons.push(child);
  }

  private async until(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (ok()) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    const logs = fs.readdirSync(path.join(this.dir, 'log')).map((f) => `--- ${f}\n${fs.readFileSync(path.join(this.dir, 'log', f), 'utf8').slice(-2000)}`);
    throw new Error(`local Slurm: no ${what} after ${timeoutMs / 1000} s\n${logs.join('\n')}`);
  }

  /** Runs a Slurm client command; returns stdout (or '' when allowed to fail). */
  run(cmd: string, args: string[], allowFail = false, extraEnv: NodeJS.ProcessEnv = {}, cwd?: string): string {
    const r = spawnSync(this.bin(cmd), args, { env: { ...this.env, ...extraEnv }, encoding: 'utf8', timeout: 60_000, cwd });
    if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.status === 0 ? r.stdout : '';
  }

  /** sbatch from `cwd`; returns the job id, or throws with sbatch's message when refused. */
  submit(args: string[], env: NodeJS.ProcessEnv, cwd: string): string {
    const r = spawnSync(this.bin('sbatch'), ['--parsable', ...args], { env: { ...this.env, ...env }, encoding: 'utf8', cwd, timeout: 60_000 });
    if (r.status !== 0) throw new Error(`sbatch refused: ${r.stderr.trim()}`);
    return r.stdout.trim().split(';')[0];
  }

  job(id: string): JobState {
    const raw = this.run('scontrol', ['show', 'job', '-o', id], true);
    const field = (k: string) => raw.match(new RegExp(`\\b${k}=(\\S+)`))?.[1] ?? '';
    return { id, state: field('JobState'), exitCode: field('ExitCode'), raw };
  }

  /** Waits until the job has ended (any final state). */
  async wait(id: string, timeoutMs = 600_000): Promise<JobState> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const j = this.job(id);
      if (/^(COMPLETED|FAILED|TIMEOUT|CANCELLED|OUT_OF_MEMORY|NODE_FAIL|BOOT_FAIL|DEADLINE|PREEMPTED)/.test(j.state)) return j;
      if (Date.now() > end) {
        this.run('scancel', [id], true);
        throw new Error(`job ${id} still ${j.state} after ${timeoutMs / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  stop(): void {
    for (const d of [...this.daemons].reverse()) {
      try {
        d.kill('SIGTERM');
      } catch { /* already gone */ }
    }
    const deadline = Date.now() + 5000;
    while (this.daemons.some((d) => d.exitCode === null && d.signalCode === null) && Date.now() < deadline) execFileSync('sleep', ['0.2']);
    for (const d of this.daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
  }
}
