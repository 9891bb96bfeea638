import { hashString, splitmix32 } from '@loupe/common';
import type { WindowReduction } from '@loupe/model';
import { TopWindows } from './top-windows.js';
import type { Window } from './windows/windows.js';

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

/** What a hook's database rows are made of: its records less the per-token values, which stay in the file. */
export type RecordRowsSource = Omit<RecordSet, 'topValues' | 'randomValues' | 'quantileValues'>;

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
    this.offerSample(window.index, maxima);
    this.windowsSeen++;
  }

  /**
   * Folds in the state of another accumulator that observed later windows of the same dataset (a capture
   * job's next work item). Top windows and the sample are exact whatever the split; the sums are
   * float64 additions, so a job always merges its items in the same order (item order) and a result
   * does not depend on how many workers shared the job.
   */
  merge(other: NeuronRecordAccumulator): void {
    if (other.width !== this.width || other.windowLength !== this.windowLength) {
      throw new Error('cannot merge records of different widths or window lengths');
    }
    if (JSON.stringify(other.settings) !== JSON.stringify(this.settings)) {
      throw new Error('cannot merge records made with different settings');
    }
    const [a, b] = [this.stats, other.stats];
    for (let j = 0; j < this.width; j++) {
      if (b.min[j] < a.min[j]) a.min[j] = b.min[j];
      if (b.max[j] > a.max[j]) a.max[j] = b.max[j];
      a.sum[j] += b.sum[j];
      a.nonZero[j] += b.nonZero[j];
    }
    a.tokens += b.tokens;
    this.top.mergeFrom(other.top);
    for (const slot of other.sample) this.offerSample(slot.window, slot.maxima, slot.priority);
    this.windowsSeen += other.windowsSeen;
  }

  private offerSample(window: number, maxima: Float32Array, priority = this.priority(window)): void {
    // (priority, window) orders the sample totally, so the kept set is the same in any arrival order
    const before = (s: SampleSlot) => s.priority > priority || (s.priority === priority && s.window > window);
    const full = this.sample.length >= this.settings.sampleSize;
    if (full && !before(this.sample[this.sample.length - 1])) return;
    // copied only when kept: a reduction's arrays may be views into a larger output
    const slot = { window, priority, maxima: Float32Array.from(maxima) };
    const at = this.sample.findIndex(before);
    if (at === -1) this.sample.push(slot);
    else this.sample.splice(at, 0, slot);
    if (this.sample.length > this.settings.sampleSize) this.sample.pop();
  }

  /** Sample windows whose activations `finish` needs (random and quantile records, histogram): all of them. */
  plan(): number[] {
    return this.sample.map((s) => s.window);
  }

  /**
   * Builds every neuron's records from the pass's state and the activations of the sample
   * windows (window index → [tokens, width]), as dense arrays ready for one safetensors file: values
   * are [neuron, window, token], NaN past a window's end, window -1 where a slot is empty.
   * `beginFinish` does the same one window at a time.
   */
  finish(sampleActivations: Map<number, Float32Array>): RecordSet {
    const finisher = this.beginFinish();
    for (const window of finisher.pending()) {
      const acts = sampleActivations.get(window);
      if (!acts) throw new Error(`sample window ${window} was not provided`);
      finisher.add(window, acts);
    }
    return finisher.result();
  }

  /**
   * The records, built from the sample windows' activations handed over one at a time in any order:
   * only the window being added is held, so memory does not grow with the sample (at SAE widths the
   * whole sample is gigabytes). Which windows each neuron's quantile records use depends only on the
   * sample maxima kept during the pass, so it is settled before any activations arrive.
   */
  beginFinish(): RecordFinisher {
    return new RecordFinisher(this);
  }

  /**
   * Windows of the random sample binned by the quantiles of each neuron's max activation over the
   * sample: per neuron and bin, up to `perQuantile` positions in the sample, [neuron, bin, p], -1 where
   * a bin has fewer.
   */
  quantileSlots(): Int32Array {
    const { quantileEdges, perQuantile } = this.settings;
    const n = this.width;
    const size = this.sample.length;
    const bins = quantileEdges.length - 1;
    const out = new Int32Array(n * bins * perQuantile).fill(-1);
    const ranges = Array.from({ length: bins }, (_, b) => [
      Math.floor(quantileEdges[b] * size),
      Math.min(size, Math.ceil(quantileEdges[b + 1] * size)),
    ]);
    // sample maxima neuron-major, so each neuron's are contiguous
    const maxima = new Float32Array(n * size);
    for (const [i, slot] of this.sample.entries()) {
      const m = slot.maxima;
      for (let j = 0; j < n; j++) maxima[j * size + i] = m[j];
    }
    const rank = new Uint32Array(size);
    const keys = new Float64Array(size);
    const bits = new Float32Array(1);
    const word = new Uint32Array(bits.buffer);
    const filled = new Int32Array(bins);
    for (let j = 0; j < n; j++) {
      const column = maxima.subarray(j * size, (j + 1) * size);
      // Rank of each sample window by (max activation, priority); the sample is in priority order, so
      // ties on max fall back to index order. Fast path: the float's bits mapped to an order-keeping
      // integer with the index packed below it, so a plain numeric sort (no comparator) does it.
      let packed = size <= INDEX_SPAN;
      for (let i = 0; packed && i < size; i++) {
        if (Number.isNaN(column[i])) packed = false;
        bits[0] = column[i] + 0; // -0 and 0 tie, as in the comparator below
        const u = word[0];
        keys[i] = (u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0) * INDEX_SPAN + i;
      }
      if (packed) {
        keys.sort();
        for (let r = 0; r < size; r++) rank[keys[r] % INDEX_SPAN] = r;
      } else {
        const order = Uint32Array.from({ length: size }, (_, i) => i).sort(
          (a, b) => column[a] - column[b] || a - b,
        );
        for (const [r, i] of order.entries()) rank[i] = r;
      }
      filled.fill(0);
      for (let i = 0; i < size; i++) {
        for (let b = 0; b < bins; b++) {
          if (rank[i] >= ranges[b][0] && rank[i] < ranges[b][1] && filled[b] < perQuantile) {
            out[(j * bins + b) * perQuantile + filled[b]] = i;
            filled[b]++;
          }
        }
      }
    }
    return out;
  }
}

/** Sample sizes up to this pack (max, index) into one float64 sort key (32 + 20 bits < 53). */
const INDEX_SPAN = 2 ** 20;

/**
 * Assembles a RecordSet from sample windows added one at a time (see `beginFinish`): each window's
 * values are copied into the random and quantile slots that show it and counted into the
 * histograms, and then it can be dropped.
 */
export class RecordFinisher {
  private readonly set: RecordSet;
  private readonly waiting: Set<number>;
  private readonly randomSlot = new Map<number, number>();
  /** window → pairs (neuron, slot of quantileValues) that show it */
  private readonly quantileUses = new Map<number, number[]>();
  /** bin = activation · histScale + histOffset: the neuron's [min, max] spread over the bins */
  private readonly histScale: Float64Array;
  private readonly histOffset: Float64Array;

  constructor(private readonly acc: NeuronRecordAccumulator) {
    const n = acc.width;
    const { settings, stats, sample } = acc;
    const L = acc.windowLength;
    const perNeuron = (settings.quantileEdges.length - 1) * settings.perQuantile;
    const randomWindows = sample.slice(0, settings.randomCount).map((s) => s.window);
    this.set = {
      width: n,
      windowLength: L,
      settings,
      tokens: stats.tokens,
      max: Float64Array.from(stats.max),
      min: Float64Array.from(stats.min),
      mean: Float64Array.from(stats.sum, (sum) => (stats.tokens ? sum / stats.tokens : 0)),
      fractionNonZero: Float64Array.from(stats.nonZero, (c) => (stats.tokens ? c / stats.tokens : 0)),
      histogram: new Int32Array(n * settings.histogramBins),
      topWindows: acc.top.window.slice(),
      topMax: acc.top.max.slice(),
      topValues: acc.top.values(),
      randomWindows: Int32Array.from(randomWindows),
      randomValues: new Float32Array(n * randomWindows.length * L).fill(Number.NaN),
      quantileWindows: new Int32Array(n * perNeuron).fill(-1),
      quantileValues: new Float32Array(n * perNeuron * L).fill(Number.NaN),
    };
    this.waiting = new Set(sample.map((s) => s.window));
    for (const [r, window] of randomWindows.entries()) this.randomSlot.set(window, r);
    const positions = acc.quantileSlots();
    for (let slot = 0; slot < positions.length; slot++) {
      if (positions[slot] < 0) continue;
      const window = sample[positions[slot]].window;
      this.set.quantileWindows[slot] = window;
      let uses = this.quantileUses.get(window);
      if (!uses) {
        uses = [];
        this.quantileUses.set(window, uses);
      }
      uses.push(Math.floor(slot / perNeuron), slot);
    }
    const bins = settings.histogramBins;
    this.histScale = Float64Array.from(stats.max, (max, j) =>
      max - stats.min[j] > 0 ? bins / (max - stats.min[j]) : 0,
    );
    this.histOffset = Float64Array.from(stats.min, (min, j) => -min * this.histScale[j]);
  }

  /** Sample windows not added yet, in sample order. */
  pending(): number[] {
    return [...this.waiting];
  }

  /**
   * One sample window's activations, [tokens, width]; a window outside the sample, or added before,
   * is ignored.
   */
  add(window: number, activations: Float32Array): void {
    if (!this.waiting.delete(window)) return;
    const n = this.acc.width;
    const L = this.acc.windowLength;
    const length = activations.length / n;
    const { set } = this;
    const copyColumn = (j: number, target: Float32Array, at: number) => {
      for (let t = 0, i = j; t < length; t++, i += n) target[at + t] = activations[i];
    };
    const r = this.randomSlot.get(window);
    if (r !== undefined) {
      const R = set.randomWindows.length;
      for (let j = 0; j < n; j++) copyColumn(j, set.randomValues, (j * R + r) * L);
    }
    const uses = this.quantileUses.get(window) ?? [];
    for (let u = 0; u < uses.length; u += 2) copyColumn(uses[u], set.quantileValues, uses[u + 1] * L);
    // every token's activation, binned between its neuron's dataset min and max (the last bin
    // includes the max; a neuron that never varies counts in bin 0). The hottest loop of the records
    // pass: one multiply-add per value, no division or Math calls.
    const top = this.acc.settings.histogramBins - 1;
    const bins = top + 1;
    const { histScale: scale, histOffset: offset } = this;
    const counts = set.histogram;
    for (let t = 0; t < length; t++) {
      const row = t * n;
      for (let j = 0; j < n; j++) {
        const v = activations[row + j] * scale[j] + offset[j];
        counts[j * bins + (v >= top ? top : v > 0 ? v | 0 : 0)]++;
      }
    }
  }

  /** The records, once every sample window was added. */
  result(): RecordSet {
    const [missing] = this.waiting;
    if (missing !== undefined) throw new Error(`sample window ${missing} was not provided`);
    return this.set;
  }
}

/**
 * The accumulator's whole state as tensors, so a capture job can checkpoint it in a safetensors file
 * and a restarted job continues exactly where the snapshot was taken. The tensors are copies: the
 * snapshot is written while later windows are observed.
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
  const { max: topMax, window: topWindow, length: topLength } = acc.top;
  const s = acc.sample.length;
  const sampleMaxima = new Float32Array(s * n);
  for (const [i, slot] of acc.sample.entries()) sampleMaxima.set(slot.maxima, i * n);
  return {
    tensors: [
      { name: 'top.max', dtype: 'F32', shape: [n, k], data: topMax.slice() },
      { name: 'top.window', dtype: 'I32', shape: [n, k], data: topWindow.slice() },
      { name: 'top.length', dtype: 'I32', shape: [n, k], data: topLength.slice() },
      { name: 'top.values', dtype: 'F32', shape: [n, k, windowLength], data: acc.top.values() },
      { name: 'stats.max', dtype: 'F64', shape: [n], data: acc.stats.max.slice() },
      { name: 'stats.min', dtype: 'F64', shape: [n], data: acc.stats.min.slice() },
      { name: 'stats.sum', dtype: 'F64', shape: [n], data: acc.stats.sum.slice() },
      { name: 'stats.nonZero', dtype: 'F64', shape: [n], data: acc.stats.nonZero.slice() },
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
  acc.top.restore({
    max: read('top.max') as Float32Array,
    window: read('top.window') as Int32Array,
    length: read('top.length') as Int32Array,
    values: read('top.values') as Float32Array,
  });
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
