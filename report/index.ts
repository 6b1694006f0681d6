/** `mnist-profiling-lab/report`: the two deliverable PDFs and their parts (analysis, charts, model facts, rendering). */
export { architectureMarkdown, buildReports, ensureResults, profilingMarkdown } from './build';
export type { ReportOptions } from './build';
export { analyse, loaderTable } from './analysis';
export type { Analysis, LoaderRow, LoaderSide, PerWorkers } from './analysis';
export { curveFigure, epochTimeFigure, lineTimeFigure, timelineFigure, timelineWindow, waitFigure } from './charts';
export { renderSvgs } from '../lib/browser/plotly-svg';
export { diagramSvg, modelFacts } from './model-facts';
export type { LayerFacts, ModelFacts } from './model-facts';
export { findChromium } from '../lib/browser/chromium';
export { renderPdf } from './render';
