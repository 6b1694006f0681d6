/**
 * Facts about a model, derived from its layers (never written by hand): kernel, stride,
 * padding, output shape, parameters, multiply-adds and activation memory per sample,
 * receptive field (size, jump, start) and a sentence on each layer's role.
 */
import * as tf from '@tensorflow/tfjs';
import { summarize } from '../lib/models/summary';
import { escapeHtml } from '../lib/util/html';

export interface LayerFacts {
  name: string;
  type: string;
  kernel: string;
  stride: string;
  padding: string;
  activation: string;
  /** PyTorch order: [C, H, W] or [F] (no batch). */
  outputShape: number[];
  params: number;
  macs: number;
  activationBytes: number;
  /** Receptive field on the input image; null once every unit sees the whole image. */
  rf: { size: number; jump: number; start: number } | null;
  role: string;
}

export interface ModelFacts {
  name: string;
  inputShape: number[];
  layers: LayerFacts[];
  totalParams: number;
  totalMacs: number;
  totalActivationBytes: number;
}

type Config = Record<string, unknown>;
const first = (v: unknown): number => (Array.isArray(v) ? Number(v[0]) : Number(v));
const fmt = (n: number) => n.toLocaleString('en-US');
const shapeText = (s: number[]) => s.length === 3 ? `${s[0]}×${s[1]}×${s[2]}` : `${s[0]}`;

function samePad(kernel: number): number {
  return Math.floor((kernel - 1) / 2);
}

export function modelFacts(model: tf.LayersModel, name: string): ModelFacts {
  const summary = summarize(model);
  let inShape = summary.inputShape.slice(1); // [C, H, W]
  let rf: LayerFacts['rf'] = { size: 1, jump: 1, start: 0.5 };
  const layers: LayerFacts[] = [];
  for (const row of summary.rows) {
    const layer = row.layer;
    const config = layer.getConfig() as Config;
    const out = row.outputShape.slice(1);
    const cls = layer.getClassName();
    let kernel = '';
    let stride = '';
    let padding = '';
    let macs = 0;
    let k = 1;
    let s = 1;
    let p = 0;
    const activation = cls === 'ReLU' ? 'ReLU' : cls === 'LogSoftmax' ? 'log-softmax' : '';
    let role = '';
    const [inC, inH, inW] = inShape;
    if (cls === 'Conv2D' || cls === 'Conv2d') {
      k = first(config.kernelSize);
      s = first(config.strides ?? 1);
      p = config.padding === 'same' ? samePad(k) : 0;
      kernel = `${k}×${k}`;
      stride = String(s);
      padding = String(p);
      macs = out[0] * out[1] * out[2] * k * k * inC;
      const bias = row.params - k * k * inC * out[0];
      role = `learns ${out[0]} filters of ${k}×${k} over ${inC} input channel${inC > 1 ? 's' : ''} ` +
        `(${k}·${k}·${inC}·${out[0]}${bias ? ` + ${bias}` : ''} = ${fmt(row.params)} parameters). ` +
        `With stride ${s} and padding ${p} the ${inH}×${inW} input gives ${out[1]}×${out[2]}: ` +
        `(${inH} + 2·${p} − ${k})/${s} + 1 = ${out[1]}${out[1] === inH ? ', so the size is kept' : ''}.`;
    } else if (cls === 'MaxPooling2D' || cls === 'AveragePooling2D') {
      k = first(config.poolSize);
      s = first(config.strides ?? k);
      kernel = `${k}×${k}`;
      stride = String(s);
      padding = '0';
      const what = cls === 'MaxPooling2D' ? 'maximum' : 'average';
      role = `takes the ${what} of each ${k}×${k} window with stride ${s}: ⌊(${inH} − ${k})/${s}⌋ + 1 = ${out[1]}, ` +
        `so ${inH}×${inW} becomes ${out[1]}×${out[2]}${out[1] * 2 === inH ? ' (halved)' : ''}; no parameters.`;
    } else if (cls === 'GlobalAveragePooling2D') {
      k = inH;
      s = 1;
      kernel = `${inH}×${inW}`;
      role = `averages each of the ${inC} maps over all ${inH}×${inW} positions, one value per channel; no parameters.`;
    } else if (cls === 'Flatten') {
      role = `lays the ${inC}×${inH}×${inW} maps out as one vector of ${inH}·${inW}·${inC} = ${fmt(out[0])} values; no parameters.`;
    } else if (cls === 'Dense') {
      const inF = inShape.reduce((a, b) => a * b, 1);
      macs = inF * out[0];
      role = `connects all ${fmt(inF)} inputs to ${fmt(out[0])} outputs (${fmt(inF)}·${fmt(out[0])} + ${fmt(out[0])} = ` +
        `${fmt(row.params)} parameters, ${((100 * row.params) / summary.totalParams).toFixed(1)}% of the model).`;
    } else if (cls === 'ReLU') {
      role = 'keeps positive values and zeroes the rest, which makes the network non-linear; no parameters, shape unchanged.';
    } else if (cls === 'Dropout' || cls === 'SeededDropout') {
      const rate = Number(config.rate);
      role = `during training zeroes each of the ${shapeText(out)} values with probability ${rate} and scales the rest by ` +
        `${(1 / (1 - rate)).toFixed(1)}, so that units cannot rely on each other; the identity at test time.`;
    } else if (cls === 'LogSoftmax') {
      role = `turns the ${out[0]} scores into log-probabilities; with the negative log-likelihood loss this is cross-entropy.`;
    } else if (cls === 'BatchNormalization' || cls === 'BatchNorm2d') {
      role = `normalises each of the ${inC} channels with the batch's mean and variance (running averages at test time), then scales and shifts them.`;
    } else {
      role = `${cls} layer.`;
    }
    // Receptive field arithmetic: size r += (k−1)·j, jump j ·= s, start += ((k−1)/2 − p)·j.
    if (rf && (cls === 'Flatten' || cls === 'Dense' || cls === 'GlobalAveragePooling2D')) rf = null;
    else if (rf && k > 1) rf = { size: rf.size + (k - 1) * rf.jump, jump: rf.jump * s, start: rf.start + ((k - 1) / 2 - p) * rf.jump };
    else if (rf && s > 1) rf = { ...rf, jump: rf.jump * s };
    layers.push({
      name: row.name, type: row.type, kernel, stride, padding, activation, outputShape: out, params: row.params, macs,
      activationBytes: out.reduce((a, b) => a * b, 1) * 4, rf: rf && { ...rf }, role,
    });
    inShape = out;
  }
  return {
    name, inputShape: summary.inputShape.slice(1), layers, totalParams: summary.totalParams,
    totalMacs: layers.reduce((n, l) => n + l.macs, 0),
    totalActivationBytes: layers.reduce((n, l) => n + l.activationBytes, 0),
  };
}

const escape = escapeHtml;

/** The network as an SVG: one box per layer, top to bottom, with its output shape. */
export function diagramSvg(facts: ModelFacts, width = 560): string {
  const rowH = 34;
  const boxH = 24;
  const top = 30;
  const height = top + (facts.layers.length + 1) * rowH + 10;
  const colour: Record<string, string> = {
    Conv2d: '#4c78a8', MaxPool2d: '#72b7b2', AvgPool2d: '#72b7b2', AdaptiveAvgPool2d: '#72b7b2', Linear: '#f58518',
    ReLU: '#b0b0b0', Dropout: '#e45756', Flatten: '#9d755d', LogSoftmax: '#54a24b', BatchNorm2d: '#b279a2',
  };
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
    `<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="4" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>`];
  const boxW = 300;
  const x = 20;
  const label = (i: number, text: string, shape: string, fill: string) => {
    const y = top + i * rowH;
    parts.push(`<rect x="${x}" y="${y}" width="${boxW}" height="${boxH}" rx="4" fill="${fill}" fill-opacity="0.85"/>`,
      `<text x="${x + 8}" y="${y + 16}" fill="#fff">${escape(text)}</text>`,
      `<text x="${x + boxW + 14}" y="${y + 16}" fill="#222">${escape(shape)}</text>`);
    if (i > 0) parts.push(`<line x1="${x + 40}" y1="${y - rowH + boxH}" x2="${x + 40}" y2="${y - 2}" stroke="#555" marker-end="url(#arrow)"/>`);
  };
  parts.push(`<text x="${x}" y="18" font-weight="bold">${escape(facts.name)}: ${fmt(facts.totalParams)} parameters</text>`);
  label(0, 'Input', shapeText(facts.inputShape), '#333');
  facts.layers.forEach((l, i) => {
    const detail = l.kernel ? ` ${l.kernel}${l.stride && l.stride !== '1' ? ` /${l.stride}` : ''}` : '';
    const size = l.type === 'Conv2d' ? `, ${l.outputShape[0]}` : l.type === 'Linear' ? ` → ${l.outputShape[0]}` : '';
    label(i + 1, `${l.name}${detail}${size}`, `${shapeText(l.outputShape)}${l.params ? ` · ${fmt(l.params)} params` : ''}`, colour[l.type] ?? '#666');
  });
  parts.push('</svg>');
  return parts.join('\n');
}
