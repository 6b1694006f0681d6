/**
 * The lab's public entry, `import { ... } from 'mnist-profiling-lab'`: what notebooks and
 * users' own scripts need, named by concept. Two subpaths keep heavy parts out of a plain
 * import: `mnist-profiling-lab/notebook` (display helpers for tslab, figures, Jupyter) and
 * `mnist-profiling-lab/report` (the PDF reports: analysis, charts, rendering).
 */

// Engine: which TensorFlow.js backend runs, and why.
export { BACKEND_REQUESTS, initBackend } from './engine/backend';
export type { BackendInfo, BackendRequest } from './engine/backend';

// Models and their summary (torchsummary's table).
export { createModel, MODEL_NAMES, MODELS, seedDropout } from './models';
export type { ModelEntry } from './models';
export { formatSummary, summarize } from './models/summary';
export type { LayerRow, ModelSummary } from './models/summary';

// Data sets and the DataLoader.
export { IMAGE_SIZE, limitTrain, loadData, loadEmbedded, loadFolder, MNIST_MEAN, MNIST_STD } from './data/dataset';
export type { DataChoice, Dataset, Split } from './data/dataset';
export { DataLoader } from './data/loader';
export type { Batch, LoaderOptions } from './data/loader';
export { downloadMnist } from './data/download';

// Training: the run, one epoch, one step, evaluation, optimizers, checkpoints, compute threads.
export { runTraining } from './training/run';
export type { RunResult } from './training/run';
export { DEFAULTS } from './training/options';
export type { TrainOptions } from './training/options';
export { trainEpoch, trainLogLine } from './training/epoch';
export type { EpochContext } from './training/epoch';
export { trainableVariables, trainStep } from './training/step';
export type { GradientReducer, Part, StepTarget } from './training/step';
export { evaluate } from './training/evaluate';
export type { TestResult } from './training/evaluate';
export { nllLoss } from './training/loss';
export { createOptimizer, learningRateAt, OPTIMIZERS, setLearningRate } from './training/optim';
export type { OptimizerName } from './training/optim';
export { loadCheckpoint, saveCheckpoint } from './training/checkpoint';
export type { Checkpoint, CheckpointMeta } from './training/checkpoint';
export { DataParallel, defaultComputeThreads } from './training/data-parallel';
export { createProgress, memoryProgress } from './training/progress';
export type { Progress } from './training/progress';

// Prediction with a trained checkpoint.
export { modelFromCheckpoint, predictDigit, predictSplit, readDigitPng } from './predict';

// Profiling: the decorator/wrapper, the session, line_profiler's table as text, rows and danfo.
export { formatText, isProfiling, profile, ProfileSession, reset as resetProfile, setProfiling, snapshot, toDataFrame, toRows } from './profiling';
export type { FunctionStats, LineRow, WaitRow } from './profiling';

// Runs and sweeps: the run folder, listing and comparing runs, the worker study.
export { RUN_FILES, RunFolder } from './runs/run-folder';
export type { BatchRecord, EpochMetrics, RunConfig } from './runs/run-folder';
export { compareRuns, findRuns, formatRunsTable, readRun } from './runs/list';
export { gatherSweep, linesByWorkers, readSweep, runSweep, sweepComplete } from './runs/sweep';
export type { SweepData, SweepOptions, SweepTables } from './runs/sweep';

// Where things are.
export { dataRoot, projectRoot, runsRoot } from './util/paths';
export { machineInfo } from './util/machine';
export type { MachineInfo } from './util/machine';
