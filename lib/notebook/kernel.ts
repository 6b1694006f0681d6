/**
 * The project's Jupyter kernel: tslab's TypeScript kernel with the line profiler hooked
 * into its cell compiler (notebook/cell-profiler.ts). `npm run kernel` / `npm run jupyter`
 * install a kernelspec that starts this file. It also announces each execution with its count
 * (notebook/execute-input.ts), which tslab does not. The stock tslab kernel keeps whole-function
 * timing for functions written in cells.
 */
import { installCellProfiler } from './cell-profiler';
import { installExecuteInput } from './execute-input';

installCellProfiler();
installExecuteInput(); // execution counts in executed notebooks
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('tslab/dist/main') as { main(): void }).main();
