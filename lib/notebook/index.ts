/** `mnist-profiling-lab/notebook`: display helpers for tslab notebooks, figures of results, and Jupyter itself. */
export { grayPng, htmlTable, notebookProgress, plotlyBundle, showPlot, showTable } from './display';
export { confusionMatrix, digitGrid, mostConfidentlyWrong, probabilityBars } from './visuals';
export type { Prediction } from './visuals';
export { executeNotebook, findJupyterPython, installKernel, jupyterPath, PLOTLY_NBEXTENSION } from './jupyter';
export type { Figure } from '../util/html';
export { lineProfileHtml, lineProfileStats, lineProfileText, lprun, resetLineProfile, showLineProfile } from './lprun';
export type { FunctionRef } from './lprun';
