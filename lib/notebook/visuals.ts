/**
 * Visual results as Plotly figures (shown interactively in the notebooks, or rendered to
 * SVG): a grid of test digits with predicted and true labels and top probabilities (wrong
 * ones marked), one digit's probabilities, the confusion matrix and the most confidently
 * wrong digits.
 */
import type { Figure } from '../util/html';

export interface Prediction {
  /** 28x28 bytes. */
  pixels: Uint8Array;
  label: number;
  probs: number[];
}

const argmax = (p: number[]) => p.indexOf(Math.max(...p));
const top = (p: number[], k: number) => p.map((v, d) => [d, v] as const).sort((a, b) => b[1] - a[1]).slice(0, k);

/** Rows of the image top to bottom, as Plotly's heatmap expects with a reversed y axis. */
function rows(pixels: Uint8Array): number[][] {
  return Array.from({ length: 28 }, (_, y) => Array.from(pixels.subarray(y * 28, (y + 1) * 28)));
}

/** A cols x rows grid of digits, each titled with its prediction; wrong predictions in red. */
export function digitGrid(samples: Prediction[], cols = 5, rowsN = 4, title = 'Test digits: predicted (probability), true label'): Figure {
  const data: Record<string, unknown>[] = [];
  const annotations: Record<string, unknown>[] = [];
  const layout: Record<string, unknown> = { title: { text: title }, width: 560, height: 130 * rowsN + 60, showlegend: false, margin: { l: 10, r: 10, t: 60, b: 10 } };
  const gap = 0.04;
  samples.slice(0, cols * rowsN).forEach((s, i) => {
    const [c, r] = [i % cols, Math.floor(i / cols)];
    const n = i + 1;
    const pred = argmax(s.probs);
    const wrong = pred !== s.label;
    const x0 = c / cols + gap / 2;
    const x1 = (c + 1) / cols - gap / 2;
    const y1 = 1 - r / rowsN - 0.06;
    const y0 = 1 - (r + 1) / rowsN + gap / 2;
    const suffix = n === 1 ? '' : String(n);
    data.push({
      type: 'heatmap', z: rows(s.pixels), colorscale: 'Greys', reversescale: false, showscale: false, zmin: 0, zmax: 255,
      xaxis: `x${suffix}`, yaxis: `y${suffix}`,
      hovertemplate: top(s.probs, 3).map(([d, p]) => `${d}: ${(100 * p).toFixed(1)}%`).join('<br>') + '<extra></extra>',
    });
    layout[`xaxis${suffix}`] = { domain: [x0, x1], visible: false, anchor: `y${suffix}` };
    layout[`yaxis${suffix}`] = { domain: [y0, y1], visible: false, autorange: 'reversed', scaleanchor: `x${suffix}`, anchor: `x${suffix}` };
    annotations.push({
      text: `${wrong ? '✗ ' : ''}${pred} (${(100 * s.probs[pred]).toFixed(0)}%) · true ${s.label}`, showarrow: false,
      x: (x0 + x1) / 2, y: y1 + 0.005, xref: 'paper', yref: 'paper', xanchor: 'center', yanchor: 'bottom',
      font: { size: 10, color: wrong ? '#c00' : '#222' },
    });
  });
  layout.annotations = annotations;
  return { data, layout };
}

/** One digit's probabilities: the predicted digit and the true one highlighted. */
export function probabilityBars(s: Prediction): Figure {
  const pred = argmax(s.probs);
  return {
    data: [{ type: 'bar', x: [...Array(10).keys()].map(String), y: s.probs.map((p) => 100 * p),
      marker: { color: s.probs.map((_, d) => (d === pred ? (pred === s.label ? '#54a24b' : '#e45756') : d === s.label ? '#4c78a8' : '#bbb')) } }],
    layout: { title: { text: `Predicted ${pred} (${(100 * s.probs[pred]).toFixed(1)}%), true ${s.label}` }, width: 480, height: 300,
      xaxis: { title: { text: 'digit' } }, yaxis: { title: { text: 'probability %' }, range: [0, 100] } },
  };
}

/** Counts of (true, predicted) pairs, with the counts written in the cells. */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>): Figure {
  const m = Array.from({ length: 10 }, () => new Array(10).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]][predictions[i]]++;
  const digits = [...Array(10).keys()].map(String);
  return {
    data: [{ type: 'heatmap', z: m, x: digits, y: digits, colorscale: 'Blues', reversescale: true, text: m.map((r) => r.map(String)), texttemplate: '%{text}', showscale: false }],
    layout: { title: { text: 'Confusion matrix (rows: true, columns: predicted)' }, width: 480, height: 460,
      xaxis: { title: { text: 'predicted' }, dtick: 1 }, yaxis: { title: { text: 'true' }, autorange: 'reversed', dtick: 1 } },
  };
}

/** The wrong predictions made with the highest confidence, most confident first. */
export function mostConfidentlyWrong(samples: Prediction[], k = 10): Prediction[] {
  return samples.filter((s) => argmax(s.probs) !== s.label).sort((a, b) => Math.max(...b.probs) - Math.max(...a.probs)).slice(0, k);
}
