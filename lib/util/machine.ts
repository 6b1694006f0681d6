/** The machine a run happened on, for tables and reports (CPU, memory, versions, Slurm job). */
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
