/**
 * A convolution's filter gradient (and, beside it, its bias's) on webgpu as a tiled matrix
 * product split along its long reduction.
 *
 * dW[k, co] = Σ_m X[m, k] · dY[m, co], with m over every output position of the batch
 * (n, oy, ox) and k over the filter's (fy, fx, ci): for the Net's second convolution a
 * [800 x 64] result summed over 12,544 rows at batch 64 (200,704 at 1024). tfjs-webgpu's
 * Conv2DBackpropFilter gives each of the 51,200 outputs one thread that walks all those rows
 * alone (800 threads for the first convolution): half of a Net step on lavapipe, and a GPU
 * left nearly idle. Here a workgroup computes a 64 x 16/32/64 tile of the result over one slice
 * of the rows, staging X (im2col on the fly) and dY through workgroup memory; the slices' partial
 * tiles are then summed by a second dispatch in slice order, so the result is the same from
 * run to run. The bias's gradient Σ_m dY[m, co] rides along in the first pass (the workgroups
 * of the first k-tile already hold dY's rows), so a convolution's filter and bias gradients
 * take the two dispatches that tfjs's kernel and a column sum took.
 */
import * as tf from '@tensorflow/tfjs';
import { KernelArgs, KernelFunc, replaceWebgpuKernel, uniformParams, WgslKernel, webgpuBackend, workgroupsFor } from './dispatch';

export const CONV2D_BACKPROP_FILTER_BIAS = 'Conv2DBackpropFilterBias';

/** Rows of the reduction staged per step, and the result tile's side along k. */
const ROWS = 16;
const TILE_K = 64;
/** Staged X rows each thread loads (64 columns, 4 rows of them per pass of the 256 threads). */
const X_ROWS_PER_THREAD = (ROWS * TILE_K) / 256;
const WORKGROUP = 256;
/** Workgroups to aim for: a large GPU holds about a thousand of these at once. */
const TARGET_WORKGROUPS = 1024;
/** The fewest rows a slice sums: fewer would make the partial tiles cost more than they save. */
const MIN_SLICE_ROWS = 8 * ROWS;
/** The most memory the partial tiles may take (bytes); past it, longer slices. */
const MAX_PARTIAL_BYTES = 64 << 20;

/** The result tile's side along the output channels: the smallest of 16, 32, 64 that holds them, else 64. */
const tileChannels = (co: number): 16 | 32 | 64 => (co <= 16 ? 16 : co <= 32 ? 32 : 64);

const PARAMS = `struct Params { n: u32, h: u32, w: u32, ci: u32, outH: u32, outW: u32, co: u32, fw: u32,
  strideH: u32, strideW: u32, padT: u32, padL: u32, k: u32, m: u32, slice: u32, tilesK: u32, stride: u32, withBias: u32 }`;

/**
 * The first pass for result tiles of 64 (k) x `tc` (co): thread (tx, ty) of 16 x 16 accumulates
 * the outputs k0 + 4ty + i (i < 4, one vec4 of the staged X row), c0 + (tc/16)tx + j in registers. As loaders, the
 * threads fill the staged rows of X (column t % 64, rows t / 64 + 4q) and of dY (column t % tc);
 * neighbouring threads read neighbouring addresses. Each X loader keeps its rows' (b, oy, ox)
 * and steps them on by ROWS per round instead of dividing (integer division is slow on GPUs,
 * and lavapipe runs it lane by lane).
 */
function partialTilesKernel(tc: number): WgslKernel {
  const rc = tc / 16;
  const dyRowsPerPass = WORKGROUP / tc;
  return new WgslKernel(`Conv2DBackpropFilterTiles${tc}`, /* wgsl */ `
${PARAMS}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> xs: array<array<vec4<f32>, ${TILE_K / 4}>, ${ROWS}>;
var<workgroup> dys: array<array<f32, ${tc}>, ${ROWS}>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let kTile = g.x % p.tilesK;
  let k0 = kTile * ${TILE_K}u;
  let c0 = (g.x / p.tilesK) * ${tc}u;
  let mStart = g.y * p.slice;
  let mEnd = min(mStart + p.slice, p.m);
  let tx = t % 16u;
  let ty = t / 16u;
  // The X loader's filter position (fy, fx, ci) of column k0 + t % 64, in tfjs's [fh, fw, ci, co] order.
  let xCol = t % ${TILE_K}u;
  let xRow = t / ${TILE_K}u;
  let kk = k0 + xCol;
  let kIn = kk < p.k;
  let ci = kk % p.ci;
  let fx = i32((kk / p.ci) % p.fw) - i32(p.padL);
  let fy = i32(kk / (p.ci * p.fw)) - i32(p.padT);
  var pos: array<vec3<u32>, ${X_ROWS_PER_THREAD}>; // (b, oy, ox) of rows m0 + xRow + 4q
  for (var q = 0u; q < ${X_ROWS_PER_THREAD}u; q++) {
    let m = mStart + xRow + 4u * q;
    pos[q] = vec3<u32>(m / (p.outW * p.outH), (m / p.outW) % p.outH, m % p.outW);
  }
  let dyCol = t % ${tc}u;
  let dyRow = t / ${tc}u;
  let cc = c0 + dyCol;
  var acc: array<vec4<f32>, ${rc}>; // acc[j][i]: k0 + 4ty + i, c0 + ${rc}tx + j
  var bias: array<f32, ${rc}>;
  let sumsBias = p.withBias != 0u && kTile == 0u && ty == 0u;
  for (var m0 = mStart; m0 < mEnd; m0 += ${ROWS}u) {
    for (var q = 0u; q < ${X_ROWS_PER_THREAD}u; q++) {
      let r = xRow + 4u * q;
      var v = 0.0;
      let at = pos[q];
      let iy = i32(at.y * p.strideH) + fy;
      let ix = i32(at.z * p.strideW) + fx;
      if (m0 + r < mEnd && kIn && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
        v = x[((at.x * p.h + u32(iy)) * p.w + u32(ix)) * p.ci + ci];
      }
      xs[r][xCol / 4u][xCol % 4u] = v;
      var next = at + vec3<u32>(0u, 0u, ${ROWS}u);
      while (next.z >= p.outW) { next.z -= p.outW; next.y += 1u; }
      while (next.y >= p.outH) { next.y -= p.outH; next.x += 1u; }
      pos[q] = next;
    }
    for (var q = 0u; q < ${Math.max(1, (ROWS * tc) / WORKGROUP)}u; q++) {
      let r = dyRow + ${dyRowsPerPass}u * q;
      let m = m0 + r;
      var v = 0.0;
      if (m < mEnd && cc < p.co) { v = dy[m * p.co + cc]; }
      dys[r][dyCol] = v;
    }
    workgroupBarrier();
    for (var r = 0u; r < ${ROWS}u; r++) {
      let a = xs[r][ty];
      for (var j = 0u; j < ${rc}u; j++) {
        let b = dys[r][${rc}u * tx + j];
        acc[j] += a * b;
        if (sumsBias) { bias[j] += b; }
      }
    }
    workgroupBarrier();
  }
  let base = g.y * p.stride;
  for (var i = 0u; i < 4u; i++) {
    let k = k0 + 4u * ty + i;
    for (var j = 0u; j < ${rc}u; j++) {
      let c = c0 + ${rc}u * tx + j;
      if (k < p.k && c < p.co) { partial[base + k * p.co + c] = acc[j][i]; }
    }
  }
  if (sumsBias) {
    for (var j = 0u; j < ${rc}u; j++) {
      let c = c0 + ${rc}u * tx + j;
      if (c < p.co) { partial[base + p.k * p.co + c] = bias[j]; }
    }
  }
}`);
}
const partialTiles = new Map<number, WgslKernel>([16, 32, 64].map((tc) => [tc, partialTilesKernel(tc)]));

// The slices' partial results summed in slice order: the filter's gradient, then the bias's.
const sumSlices = (withBias: boolean) => new WgslKernel(withBias ? 'Conv2DBackpropFilterBiasSum' : 'Conv2DBackpropFilterSum', /* wgsl */ `
struct Params { filterSize: u32, total: u32, slices: u32, row: u32 }
@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> dw: array<f32>;
${withBias ? '@group(0) @binding(2) var<storage, read_write> db: array<f32>;' : ''}
@group(0) @binding(${withBias ? 3 : 2}) var<uniform> p: Params;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * p.row;
  if (i >= p.total) { return; }
  var s = 0.0;
  for (var j = 0u; j < p.slices; j++) { s += partial[j * p.total + i]; }
  ${withBias ? 'if (i < p.filterSize) { dw[i] = s; } else { db[i - p.filterSize] = s; }' : 'dw[i] = s;'}
}`);
const sumFilterSlices = sumSlices(false);
const sumFilterBiasSlices = sumSlices(true);

interface Shapes { x: number[]; dy: number[]; filter: number[]; strides: [number, number]; pad: { top: number; left: number } }

/** How the reduction of `m` rows is cut for `tiles` result tiles of `total` values each. */
function slicing(m: number, tiles: number, total: number): { slice: number; slices: number } {
  const wanted = Math.max(1, Math.floor(TARGET_WORKGROUPS / tiles));
  const fitting = Math.max(1, Math.floor(MAX_PARTIAL_BYTES / (4 * total)));
  const slices = Math.min(wanted, fitting, Math.ceil(m / MIN_SLICE_ROWS));
  const slice = Math.ceil(Math.ceil(m / slices) / ROWS) * ROWS;
  return { slice, slices: Math.ceil(m / slice) };
}

/**
 * dW (and db when `withBias`) of a stride/padding convolution, dilation 1, NHWC, as the
 * tensors of the backend; the partial tiles' buffer is released once the GPU has used it.
 */
function filterGradient(gpu: ReturnType<typeof webgpuBackend>, x: tf.TensorInfo, dy: tf.TensorInfo, s: Shapes, withBias: boolean): tf.TensorInfo[] {
  const [n, h, w, ci] = s.x;
  const [, outH, outW, co] = s.dy;
  const [fh, fw] = s.filter;
  const k = fh * fw * ci;
  const m = n * outH * outW;
  const filterSize = k * co;
  const total = filterSize + (withBias ? co : 0);
  const tc = tileChannels(co);
  const tilesK = Math.ceil(k / TILE_K);
  const tiles = tilesK * Math.ceil(co / tc);
  const { slice, slices } = slicing(m, tiles, total);
  const dw = gpu.makeTensorInfo(s.filter, 'float32');
  const db = withBias ? gpu.makeTensorInfo([co], 'float32') : null;
  const direct = slices === 1 && !withBias; // the one slice is the result
  const partial = direct ? dw : gpu.makeTensorInfo([slices * total], 'float32');
  partialTiles.get(tc)!.dispatch(gpu, [x, dy, partial], uniformParams([n, h, w, ci, outH, outW, co, fw, s.strides[0], s.strides[1],
    s.pad.top, s.pad.left, k, m, slice, tilesK, total, withBias ? 1 : 0]), [tiles, slices]);
  if (direct) return [dw];
  const groups = workgroupsFor(total, WORKGROUP);
  const params = uniformParams([filterSize, total, slices, groups[0] * WORKGROUP]);
  if (db) sumFilterBiasSlices.dispatch(gpu, [partial, dw, db], params, groups);
  else sumFilterSlices.dispatch(gpu, [partial, dw], params, groups);
  gpu.disposeData(partial.dataId);
  return db ? [dw, db] : [dw];
}

interface FilterGradAttrs { strides: number | [number, number]; pad: 'same' | 'valid' | number; dataFormat?: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] }

/** The shapes of a channels-last, dilation-1 float32 convolution, or null for any other. */
function shapesOf(x: tf.TensorInfo, dy: tf.TensorInfo, attrs: FilterGradAttrs): Shapes | null {
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  return { x: x.shape, dy: dy.shape, filter: attrs.filterShape, strides: [info.strideHeight, info.strideWidth], pad: info.padInfo };
}

function filterBiasKernel({ inputs: { x, dy }, attrs, backend }: KernelArgs): tf.TensorInfo[] {
  const shapes = shapesOf(x, dy, attrs as unknown as FilterGradAttrs);
  if (!shapes) throw new Error(`${CONV2D_BACKPROP_FILTER_BIAS}: only NHWC float32 convolutions of dilation 1`);
  return filterGradient(webgpuBackend(backend), x, dy, shapes, true);
}

/** tfjs's Conv2DBackpropFilter, with channels-last, dilation-1 float32 convolutions tiled as above. */
function filterKernel(tfjs: KernelFunc): KernelFunc {
  return (args) => {
    const shapes = shapesOf(args.inputs.x, args.inputs.dy, args.attrs as unknown as FilterGradAttrs);
    return shapes ? filterGradient(webgpuBackend(args.backend), args.inputs.x, args.inputs.dy, shapes, false)[0] : tfjs(args);
  };
}

let installed = false;

/** Registers the filter-and-bias kernel and puts the tiled one over tfjs's; once, after tfjs's own are registered. */
export function installFilterGradientKernels(): void {
  if (installed) return;
  installed = true;
  tf.registerKernel({ kernelName: CONV2D_BACKPROP_FILTER_BIAS, backendName: 'webgpu', kernelFunc: filterBiasKernel as unknown as tf.KernelFunc });
  replaceWebgpuKernel('Conv2DBackpropFilter', filterKernel);
}
