/** The machine a run happened on, for tables and reports (CPU, memory, versions, Slurm job). */
import fs from 'node:fs';
import os from 'node:os';
import { installedVersions } from './packages';

export interface MachineInfo {
  cpu_model: string;
  cpus: number;
  memory_gb: number;
  node: string;
  tfjs: string;
  slurm_job_id: string;
  slurm_cpus_per_task: string;
  hostname: string;
}

/** The CPUs Slurm allocated to this job's task (SLURM_CPUS_PER_TASK), when inside a job that sets it. */
export function slurmCpus(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const cpus = Number(env.SLURM_CPUS_PER_TASK);
  return env.SLURM_CPUS_PER_TASK && Number.isInteger(cpus) ? cpus : undefined;
}

/** The CPUs this process may use, and what said so. */
export interface CpuAllotment { cpus: number; source: string }

/**
 * CPUs this process may use: Slurm's allocation inside a job (SLURM_CPUS_PER_TASK), else the
 * smaller of the CPUs it may run on (affinity: taskset, cpusets) and a container's cgroup
 * CPU quota (cpu.max: 200000 100000 is 2 CPUs), which os.availableParallelism() does not read.
 */
export function cpuAllotment(env: NodeJS.ProcessEnv = process.env, cgroupCpuMax = '/sys/fs/cgroup/cpu.max'): CpuAllotment {
  const slurm = slurmCpus(env);
  if (slurm !== undefined && slurm > 0) return { cpus: slurm, source: `Slurm's --cpus-per-task ${slurm}` };
  const affinity = os.availableParallelism();
  const quota = cgroupQuota(cgroupCpuMax);
  if (quota !== undefined && quota < affinity) return { cpus: Math.max(1, Math.floor(quota)), source: `the cgroup CPU quota (${quota} CPUs, ${cgroupCpuMax})` };
  return { cpus: affinity, source: `${affinity} CPU${affinity === 1 ? '' : 's'} this process may run on` };
}

function cgroupQuota(file: string): number | undefined {
  try {
    const [quota, period] = fs.readFileSync(file, 'utf8').trim().split(/\s+/);
    if (quota === 'max') return undefined;
    const cpus = Number(quota) / Number(period);
    return Number.isFinite(cpus) && cpus > 0 ? cpus : undefined;
  } catch {
    return undefined; // cgroup v1, or not Linux
  }
}

export function machineInfo(): MachineInfo {
  return {
    cpu_model: os.cpus()[0]?.model?.trim() ?? 'unknown',
    cpus: os.availableParallelism(),
    memory_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    tfjs: tfjsVersions()['@tensorflow/tfjs'] ?? 'unknown',
    slurm_job_id: process.env.SLURM_JOB_ID ?? '',
    slurm_cpus_per_task: process.env.SLURM_CPUS_PER_TASK ?? '',
    hostname: os.hostname(),
  };
}

/** Versions of tfjs and the backend packages that are installed (for logs and reports). */
export function tfjsVersions(): Record<string, string> {
  return installedVersions(['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
}
