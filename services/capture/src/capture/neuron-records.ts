import { hashString, splitmix32 } from '@loupe/common';
import { TopWindows } from './top-windows.js';
import type { Window } from './windows.js';

/**
 * Per-neuron records over a dataset, in the style of OpenAI's neuron viewer: the top windows by max
 * activation, random windows, windows sampled from the quantiles of max activation, and statistics.
 *
 * One pass keeps, per neuron, the top-k windows with their token activations and running statistics;
 * and, for a shared uniform random sample of windows (a bottom-k sketch over a seeded hash of the window
 * index: deterministic, no RNG state to checkpoint), each neuron's max activation in those windows.
 * `plan()` then says which sample windows to read back (from the shards) for the random and quantile records and the
 * histogram, and `finish()` turns their activations into records.
 */
export interface RecordSettings {
  topK: number;
  randomCount: number;
  sampleSize: number;
  /** quantile bin edges of per-window max activation over the random sample, e.g. [0.5, 0.75, 0.9, 0.99, 1] */
  quantileEdges: number[];
  perQuantile: number;
  histogramBins: number;
  seed: number;
}

export const DEFAULT_RECORD_SETTINGS: RecordSettings = {
  topK: 20,
  randomCount: 20,
  sampleSize: 256,
  quantileEdges: [0.5, 0.75, 0.9, 0.99, 1],
  perQuantile: 5,
  histogramBins: 32,
  seed: 0,
};

export interface WindowActivations {
  window: number;
  /** activation of this neuron at each token of the window */
  values: number[];
}

/** Per-neuron summary of one window's activations. */
export interface WindowReduction {
  max: Float32Array;
  min: Float32Array;
  sum: Float32Array;
  nonZero: Float32Array;
  /** the window as [neuron, token], when the reducer provides it */
  columns?: Float32Array;
}

/** The plain reduction over a window's tokens: the reference the ONNX Runtime reducer is tested against. */
export function reduceWindow(activations: Float32Array, length: number, width: number): WindowReduction {
  const max = new Float32Array(width).fill(Number.NEGATIVE_INFINITY);
  const min = new Float32Array(width).fill(Number.POSITIVE_INFINITY);
  const sum = new Float32Array(width);
  const nonZero = new Float32Array(width);
  for (let t = 0; t < length; t++) {
    const row = t * width;
    for (let j = 0; j < width; j++) {
      const a = activations[row + j];
      if (a > max[j]) max[j] = a;
      if (a < min[j]) min[j] = a;
      sum[j] += a;
      if (a > 0) nonZero[j] += 1;
    }
  }
  return { max, min, sum, nonZero };
}

/** Every neuron's records of one hook, dense; see `finish`. */
export interface RecordSet {
  width: number;
  windowLength: number;
  settings: RecordSettings;
  tokens: number;
  max: Float64Array;
  min: Float64Array;
  mean: Float64Array;
  fractionNonZero: Float64Array;
  /** [neuron, bin] over [min, max] of that neuron */
  histogram: Int32Array;
  topWindows: Int32Array;
  topMax: Float32Array;
  topValues: Float32Array;
  /** the same random windows for every neuron */
  randomWindows: Int32Array;
  randomValues: Float32Array;
  quantileWindows: Int32Array;
  quantileValues: Float32Array;
}

/** One neuron's records as API consumers see them. */
export interface NeuronRecord {
  neuron: number;
  stats: { max: number; min: number; mean: number; fractionNonZero: number; tokens: number };
  histogram: { min: number; max: number; counts: number[] };
  top: WindowActivations[];
  random: WindowActivations[];
  quantiles: { from: number; to: number; windows: WindowActivations[] }[];
}

interface SampleSlot {
  window: number;
  priority: number;
  /** max activation of every neuron in this window */
  maxima: Float32Array;
}

export class NeuronRecordAccumulator {
  readonly top: TopWindows;
  readonly stats: {
    max: Float64Array;
    min: Float64Array;
    sum: Float64Array;
    nonZero: Float64Array;
    tokens: number;
  };
  sample: SampleSlot[] = [];
  windowsSeen = 0;

  constructor(
    readonly width: number,
    readonly windowLength: number,
    readonly settings: RecordSettings = DEFAULT_RECORD_SETTINGS,
  ) {
    this.top = new TopWindows(width, settings.topK, windowLength);
    this.stats = {
      max: new Float64Array(width).fill(Number.NEGATIVE_INFINITY),
      min: new Float64Array(width).fill(Number.POSITIVE_INFINITY),
      sum: new Float64Array(width),
      nonZero: new Float64Array(width),
      tokens: 0,
    };
  }

  /** The sample priority of a window: uniform in [0, 2^32), fixed by seed and index. */
  priority(window: number): number {
    return splitmix32(hashString(String(window), this.settings.seed >>> 0))();
  }

  /**
   * Adds one window's activations, [tokens, width] row-major. `reduction` (its per-neuron max, min, sum
   * and non-zero count) may be computed elsewhere, e.g. by ONNX Runtime for a whole shard at once; it
   * defaults to `reduceWindow`.
   */
  observe(
    window: Window,
    activations: Float32Array,
    reduction = reduceWindow(activations, window.ids.length, this.width),
  ): void {
    const n = this.width;
    const length = window.ids.length;
    const { stats } = this;
    const { min, max, sum, nonZero } = stats;
    const maxima = reduction.max;
    for (let j = 0; j < n; j++) {
      if (reduction.min[j] < min[j]) min[j] = reduction.min[j];
      if (maxima[j] > max[j]) max[j] = maxima[j];
      sum[j] += reduction.sum[j];
      nonZero[j] += reduction.nonZero[j];
    }
    stats.tokens += length;
    const { top } = this;
    for (let j = 0; j < n; j++) {
      if (!top.admits(j, maxima[j])) continue;
      top.insert(j, maxima[j], window.index, length, (values, at) => {
        if (reduction.columns) values.set(reduction.columns.subarray(j * length, (j + 1) * length), at);
        else for (let t = 0; t < length; t++) values[at + t] = activations[t * n + j];
      });
    }
    this.offerSample(window.index, Float32Array.from(maxima));
    this.windowsSeen++;
  }

  private offerSample(window: number, maxima: Float32Array): void {
    const priority = this.priority(window);
    const size = this.settings.sampleSize;
    if (this.sample.length >= size && priority >= this.sample[this.sample.length - 1].priority) return;
    const slot = { window, priority, maxima };
    const at = this.sample.findIndex((s) => s.priority > priority);
    if (at === -1) this.sample.push(slot);
    else this.sample.splice(at, 0, slot);
    if (this.sample.length > size) this.sample.pop();
  }

  /** Sample windows whose activations `finish` needs (random and quantile records, histogram): all of them. */
  plan(): number[] {
    return this.sample.map((s) => s.window);
  }

  /**
   * Builds every neuron's records from the pass's state and the activations of the sample
   * windows (window index → [tokens, width]), as dense arrays ready for one safetensors file: values
   * are [neuron, window, token], NaN past a window's end, window -1 where a slot is empty.
   */
  finish(sampleActivations: Map<number, Float32Array>): RecordSet {
    const n = this.width;
    const { settings, stats } = this;
    const L = this.windowLength;
    const bins = settings.quantileEdges.length - 1;
    const perBin = settings.perQuantile;
    const randomWindows = this.sample.slice(0, settings.randomCount).map((s) => s.window);
    const sampleActs = this.sample.map((slot) => {
      const acts = sampleActivations.get(slot.window);
      if (!acts) throw new Error(`sample window ${slot.window} was not provided`);
      return acts;
    });
    const actsOf = new Map(this.sample.map((slot, i) => [slot.window, sampleActs[i]]));
    const set: RecordSet = {
      width: n,
      windowLength: L,
      settings,
      tokens: stats.tokens,
      max: Float64Array.from(stats.max),
      min: Float64Array.from(stats.min),
      mean: Float64Array.from(stats.sum, (sum) => (stats.tokens ? sum / stats.tokens : 0)),
      fractionNonZero: Float64Array.from(stats.nonZero, (c) => (stats.tokens ? c / stats.tokens : 0)),
      histogram: new Int32Array(n * settings.histogramBins),
      topWindows: this.top.window.slice(),
      topMax: this.top.max.slice(),
      topValues: this.top.values.slice(),
      randomWindows: Int32Array.from(randomWindows),
      randomValues: new Float32Array(n * randomWindows.length * L).fill(Number.NaN),
      quantileWindows: new Int32Array(n * bins * perBin).fill(-1),
      quantileValues: new Float32Array(n * bins * perBin * L).fill(Number.NaN),
    };
    // Sample windows transposed once to [neuron, token], so every copy below is contiguous.
    const columns = new Map<number, Float32Array>();
    for (const [window, acts] of actsOf) columns.set(window, transpose(acts, acts.length / n, n));
    const copyColumn = (window: number, j: number, target: Float32Array, at: number) => {
      const column = columns.get(window)!;
      const length = column.length / n;
      target.set(column.subarray(j * length, (j + 1) * length), at);
    };
    for (let j = 0; j < n; j++) {
      for (const [r, window] of randomWindows.entries()) {
        copyColumn(window, j, set.randomValues, (j * randomWindows.length + r) * L);
      }
      for (const [b, windows] of this.quantileWindowsOf(j).entries()) {
        for (const [p, window] of windows.entries()) {
          const slot = (j * bins + b) * perBin + p;
          set.quantileWindows[slot] = window;
          copyColumn(window, j, set.quantileValues, slot * L);
        }
      }
      this.histogramOf(
        j,
        columns.values(),
        set.histogram.subarray(j * settings.histogramBins, (j + 1) * settings.histogramBins),
      );
    }
    return set;
  }

  /** Token activations of every sample window, binned between this neuron's dataset min and max. */
  private histogramOf(j: number, columns: Iterable<Float32Array>, counts: Int32Array): void {
    const n = this.width;
    const min = this.stats.min[j];
    const span = this.stats.max[j] - min;
    const bins = counts.length;
    for (const column of columns) {
      const length = column.length / n;
      for (let i = j * length; i < (j + 1) * length; i++) {
        const bin = span > 0 ? Math.floor(((column[i] - min) / span) * bins) : 0;
        counts[Math.min(bins - 1, Math.max(0, bin))] += 1;
      }
    }
  }

  /** Windows of the random sample binned by the quantiles of this neuron's max activation over the sample. */
  private quantileWindowsOf(j: number): number[][] {
    const { quantileEdges, perQuantile } = this.settings;
    const size = this.sample.length;
    // rank of each sample window by (max activation, priority); the sample is in priority order, so
    // ties on max fall back to index order
    const maxima = Float32Array.from(this.sample, (slot) => slot.maxima[j]);
    const order = Uint32Array.from({ length: size }, (_, i) => i).sort(
      (a, b) => maxima[a] - maxima[b] || a - b,
    );
    const rank = new Uint32Array(size);
    for (const [r, i] of order.entries()) rank[i] = r;
    const bins: number[][] = [];
    for (let b = 0; b + 1 < quantileEdges.length; b++) {
      const from = Math.floor(quantileEdges[b] * size);
      const to = Math.min(size, Math.ceil(quantileEdges[b + 1] * size));
      const members: number[] = [];
      for (let i = 0; i < size && members.length < perQuantile; i++) {
        if (rank[i] >= from && rank[i] < to) members.push(this.sample[i].window);
      }
      bins.push(members);
    }
    return bins;
  }
}

function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

/**
 * The accumulator's whole state as tensors, so a capture job can checkpoint it in a safetensors file
 * and a restarted job continues exactly where the snapshot was taken.
 */
export interface AccumulatorSnapshot {
  tensors: {
    name: string;
    dtype: 'F32' | 'F64' | 'I32';
    shape: number[];
    data: Float32Array | Float64Array | Int32Array;
  }[];
  metadata: Record<string, string>;
}

export function snapshotAccumulator(acc: NeuronRecordAccumulator): AccumulatorSnapshot {
  const { width: n, settings, windowLength } = acc;
  const k = settings.topK;
  const { max: topMax, window: topWindow, length: topLength, values: topValues } = acc.top;
  const s = acc.sample.length;
  const sampleMaxima = new Float32Array(s * n);
  for (const [i, slot] of acc.sample.entries()) sampleMaxima.set(slot.maxima, i * n);
  return {
    tensors: [
      { name: 'top.max', dtype: 'F32', shape: [n, k], data: topMax },
      { name: 'top.window', dtype: 'I32', shape: [n, k], data: topWindow },
      { name: 'top.length', dtype: 'I32', shape: [n, k], data: topLength },
      { name: 'top.values', dtype: 'F32', shape: [n, k, windowLength], data: topValues },
      { name: 'stats.max', dtype: 'F64', shape: [n], data: acc.stats.max },
      { name: 'stats.min', dtype: 'F64', shape: [n], data: acc.stats.min },
      { name: 'stats.sum', dtype: 'F64', shape: [n], data: acc.stats.sum },
      { name: 'stats.nonZero', dtype: 'F64', shape: [n], data: acc.stats.nonZero },
      { name: 'sample.window', dtype: 'I32', shape: [s], data: Int32Array.from(acc.sample, (x) => x.window) },
      {
        name: 'sample.priority',
        dtype: 'F64',
        shape: [s],
        data: Float64Array.from(acc.sample, (x) => x.priority),
      },
      { name: 'sample.maxima', dtype: 'F32', shape: [s, n], data: sampleMaxima },
    ],
    metadata: {
      tokens: String(acc.stats.tokens),
      windowsSeen: String(acc.windowsSeen),
      windowLength: String(windowLength),
      settings: JSON.stringify(settings),
    },
  };
}

export function restoreAccumulator(
  width: number,
  read: (name: string) => Float32Array | Float64Array | Int32Array,
  metadata: Record<string, string>,
): NeuronRecordAccumulator {
  const settings = JSON.parse(metadata.settings) as RecordSettings;
  const windowLength = Number(metadata.windowLength);
  const acc = new NeuronRecordAccumulator(width, windowLength, settings);
  acc.top.max.set(read('top.max'));
  acc.top.window.set(read('top.window'));
  acc.top.length.set(read('top.length'));
  acc.top.values.set(read('top.values'));
  acc.top.recount();
  acc.stats.max.set(read('stats.max'));
  acc.stats.min.set(read('stats.min'));
  acc.stats.sum.set(read('stats.sum'));
  acc.stats.nonZero.set(read('stats.nonZero'));
  acc.stats.tokens = Number(metadata.tokens);
  acc.windowsSeen = Number(metadata.windowsSeen);
  const windows = read('sample.window');
  const priorities = read('sample.priority');
  const maxima = read('sample.maxima');
  acc.sample = Array.from(windows, (window, i) => ({
    window,
    priority: priorities[i],
    maxima: Float32Array.from(maxima.subarray(i * width, (i + 1) * width)),
  }));
  return acc;
}
