import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { neuronRecord, readNeuronRecord, writeRecordFile } from './record-file.js';
import {
  DEFAULT_RECORD_SETTINGS,
  type NeuronRecord,
  NeuronRecordAccumulator,
  type RecordSet,
  type RecordSettings,
  reduceWindow,
  restoreAccumulator,
  snapshotAccumulator,
} from './unit-records.js';
import type { Window } from './windows/windows.js';

const WIDTH = 6;
const LENGTH = 8;
const settings: RecordSettings = {
  ...DEFAULT_RECORD_SETTINGS,
  topK: 5,
  randomCount: 4,
  sampleSize: 16,
  perQuantile: 2,
};

function dataset(count: number, seed = 3): { window: Window; acts: Float32Array }[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, index) => {
    const length = index % 7 === 0 ? LENGTH - 3 : LENGTH; // some short tails
    const acts = Float32Array.from({ length: length * WIDTH }, () =>
      rng.nextUniform() < 0.4 ? 0 : rng.nextNormal(),
    );
    return { window: { index, documentId: 'd', start: 0, ids: new Array(length).fill(1) }, acts };
  });
}

function columnOf(acts: Float32Array, j: number): number[] {
  const out: number[] = [];
  for (let i = j; i < acts.length; i += WIDTH) out.push(acts[i]);
  return out;
}

describe('neuron records', () => {
  const data = dataset(200);
  const byIndex = new Map(data.map((d) => [d.window.index, d.acts]));

  function records(acc: NeuronRecordAccumulator): NeuronRecord[] {
    const set = acc.finish(new Map(acc.plan().map((w) => [w, byIndex.get(w)!])));
    return Array.from({ length: WIDTH }, (_, j) => neuronRecord(set, j));
  }

  function run(items = data): NeuronRecordAccumulator {
    const acc = new NeuronRecordAccumulator(WIDTH, LENGTH, settings);
    for (const { window, acts } of items) acc.observe(window, acts);
    return acc;
  }

  it('keeps exactly the top-k windows by max activation, with their token values (brute force)', () => {
    const result = records(run());
    for (let j = 0; j < WIDTH; j++) {
      const expected = data
        .map(({ window, acts }) => ({ window: window.index, max: Math.max(...columnOf(acts, j)) }))
        .sort((a, b) => b.max - a.max || a.window - b.window)
        .slice(0, settings.topK);
      expect(result[j].top.map((t) => t.window)).toEqual(expected.map((e) => e.window));
      for (const t of result[j].top) expect(t.values).toEqual(columnOf(byIndex.get(t.window)!, j));
    }
  });

  it('computes statistics exactly and a histogram over the sample that covers every sampled token', () => {
    const acc = run();
    const result = records(acc);
    for (let j = 0; j < WIDTH; j++) {
      const all = data.flatMap(({ acts }) => columnOf(acts, j));
      const s = result[j].stats;
      expect(s.max).toBeCloseTo(Math.max(...all), 6);
      expect(s.min).toBeCloseTo(Math.min(...all), 6);
      // window sums are float32 (as ONNX Runtime reduces them): ~1e-7 relative per window sum
      expect(s.mean).toBeCloseTo(all.reduce((a, b) => a + b, 0) / all.length, 6);
      expect(s.fractionNonZero).toBeCloseTo(all.filter((a) => a > 0).length / all.length, 12);
      const sampled = acc.plan().reduce((n, w) => n + byIndex.get(w)!.length / WIDTH, 0);
      expect(result[j].histogram.counts.reduce((a, b) => a + b, 0)).toBe(sampled);
    }
  });

  it('draws a uniform sample that does not depend on how the stream was split, and quantile bins within it', () => {
    const acc = run();
    expect(acc.plan()).toHaveLength(settings.sampleSize);
    // the sample is the windows with the smallest hash priorities: recompute independently
    const expected = data
      .map(({ window }) => ({ w: window.index, p: acc.priority(window.index) }))
      .sort((a, b) => a.p - b.p)
      .slice(0, settings.sampleSize)
      .map((x) => x.w);
    expect(acc.plan()).toEqual(expected);
    for (const record of records(acc)) {
      expect(record.random.map((r) => r.window)).toEqual(expected.slice(0, settings.randomCount));
      const maxOf = (w: number) => Math.max(...columnOf(byIndex.get(w)!, record.neuron));
      const sampleMaxima = expected.map(maxOf).sort((a, b) => a - b);
      const top = record.quantiles.at(-1)!;
      expect(top.windows.length).toBeGreaterThan(0);
      for (const w of top.windows)
        expect(maxOf(w.window)).toBeGreaterThanOrEqual(sampleMaxima[Math.floor(0.99 * sampleMaxima.length)]);
    }
  });

  it('restores from a snapshot mid-stream and ends identical to an uninterrupted pass', () => {
    const first = run(data.slice(0, 77));
    const snap = snapshotAccumulator(first);
    const byName = new Map(snap.tensors.map((t) => [t.name, t.data]));
    const resumed = restoreAccumulator(WIDTH, (name) => byName.get(name)!, snap.metadata);
    for (const { window, acts } of data.slice(77)) resumed.observe(window, acts);
    expect(records(resumed)).toEqual(records(run()));
  });

  it('merges the states of split work (through snapshots) into the records of one pass', () => {
    const cuts = [0, 13, 14, 77, 150, 200];
    const parts = cuts.slice(1).map((end, i) => {
      const snap = snapshotAccumulator(run(data.slice(cuts[i], end)));
      const byName = new Map(snap.tensors.map((t) => [t.name, t.data]));
      return () => restoreAccumulator(WIDTH, (name) => byName.get(name)!, snap.metadata);
    });
    const whole = records(run());
    const inOrder = parts[0]();
    for (const part of parts.slice(1)) inOrder.merge(part());
    const merged = records(inOrder);
    // windows chosen (top, random, quantile) and their values are exact; the mean is a float64 sum of
    // float32 partial sums, so it may differ from one pass in the last bits
    expect(merged.map(({ stats: { mean: _, ...rest }, ...r }) => ({ ...r, rest }))).toEqual(
      whole.map(({ stats: { mean: _, ...rest }, ...r }) => ({ ...r, rest })),
    );
    for (const [j, r] of merged.entries()) expect(r.stats.mean).toBeCloseTo(whole[j].stats.mean, 12);
    // top windows and the sample do not depend on the order of the merge either
    const reversed = parts.at(-1)!();
    for (const part of parts.slice(0, -1).reverse()) reversed.merge(part());
    expect(reversed.top.window).toEqual(inOrder.top.window);
    expect(reversed.top.values()).toEqual(inOrder.top.values());
    expect(reversed.sample.map((x) => x.window)).toEqual(inOrder.sample.map((x) => x.window));
    expect(() => inOrder.merge(new NeuronRecordAccumulator(WIDTH + 1, LENGTH, settings))).toThrow(
      /different widths/,
    );
  });

  it('gives the same records when reductions (with neuron-major columns) come from elsewhere', () => {
    const acc = new NeuronRecordAccumulator(WIDTH, LENGTH, settings);
    for (const { window, acts } of data) {
      const length = window.ids.length;
      const columns = Float32Array.from(
        { length: acts.length },
        (_, i) => acts[(i % length) * WIDTH + Math.floor(i / length)],
      );
      acc.observe(window, acts, { ...reduceWindow(acts, length, WIDTH), columns });
    }
    expect(records(acc)).toEqual(records(run()));
  });

  it('reads one neuron back from the record file exactly as built in memory', async () => {
    const acc = run();
    const set = acc.finish(new Map(acc.plan().map((w) => [w, byIndex.get(w)!])));
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-records-')), 'records.safetensors');
    await writeRecordFile(file, set, { hook: 'test' });
    for (const j of [0, 3, WIDTH - 1]) expect(await readNeuronRecord(file, j)).toEqual(neuronRecord(set, j));
    // every window keeps its own length: values stop at the window's last token
    for (let j = 0; j < WIDTH; j++) {
      const record = await readNeuronRecord(file, j);
      const all = [...record.top, ...record.random, ...record.quantiles.flatMap((q) => q.windows)];
      for (const w of all) expect(w.values).toHaveLength(w.window % 7 === 0 ? LENGTH - 3 : LENGTH);
    }
  });

  it('builds the same records one window at a time, in any order, as from all sample windows at once', () => {
    // ties on max (zeros, -0) exercise the quantile ranks' tie-break by sample order
    const rng = new Rng(5);
    const tied = data.map(({ window, acts }) => ({
      window,
      acts: acts.map((a) => (a < 1.5 ? (rng.nextUniform() < 0.5 ? -0 : 0) : Math.round(a * 4) / 4)),
    }));
    for (const items of [data, tied]) {
      const acc = run(items);
      const byWindow = new Map(items.map((d) => [d.window.index, d.acts]));
      const expected = referenceFinish(acc, byWindow);
      expect(acc.finish(new Map(acc.plan().map((w) => [w, byWindow.get(w)!])))).toEqual(expected);
      const finisher = acc.beginFinish();
      expect(() => finisher.result()).toThrow(/sample window \d+ was not provided/);
      // in reverse, with windows outside the sample and repeats mixed in: those are ignored
      for (const { window, acts } of [...items].reverse()) finisher.add(window.index, acts);
      finisher.add(
        acc.plan()[0],
        byWindow.get(acc.plan()[0])!.map(() => 99),
      );
      expect(finisher.result()).toEqual(expected);
    }
  });
});

/**
 * The records as first written (all sample windows transposed at once, each neuron's quantile bins
 * by a comparator sort): the reference the streaming finish must match exactly.
 */
function referenceFinish(acc: NeuronRecordAccumulator, acts: Map<number, Float32Array>): RecordSet {
  const n = acc.width;
  const { settings, stats, sample } = acc;
  const L = acc.windowLength;
  const bins = settings.quantileEdges.length - 1;
  const perBin = settings.perQuantile;
  const randomWindows = sample.slice(0, settings.randomCount).map((s) => s.window);
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
    topWindows: acc.top.window.slice(),
    topMax: acc.top.max.slice(),
    topValues: acc.top.values(),
    randomWindows: Int32Array.from(randomWindows),
    randomValues: new Float32Array(n * randomWindows.length * L).fill(Number.NaN),
    quantileWindows: new Int32Array(n * bins * perBin).fill(-1),
    quantileValues: new Float32Array(n * bins * perBin * L).fill(Number.NaN),
  };
  const column = (window: number, j: number) => {
    const a = acts.get(window)!;
    return Float32Array.from({ length: a.length / n }, (_, t) => a[t * n + j]);
  };
  const size = sample.length;
  for (let j = 0; j < n; j++) {
    for (const [r, window] of randomWindows.entries())
      set.randomValues.set(column(window, j), (j * randomWindows.length + r) * L);
    const maxima = Float32Array.from(sample, (slot) => slot.maxima[j]);
    const order = Uint32Array.from({ length: size }, (_, i) => i).sort(
      (a, b) => maxima[a] - maxima[b] || a - b,
    );
    const rank = new Uint32Array(size);
    for (const [r, i] of order.entries()) rank[i] = r;
    for (let b = 0; b < bins; b++) {
      const from = Math.floor(settings.quantileEdges[b] * size);
      const to = Math.min(size, Math.ceil(settings.quantileEdges[b + 1] * size));
      let p = 0;
      for (let i = 0; i < size && p < perBin; i++) {
        if (rank[i] < from || rank[i] >= to) continue;
        const slot = (j * bins + b) * perBin + p++;
        set.quantileWindows[slot] = sample[i].window;
        set.quantileValues.set(column(sample[i].window, j), slot * L);
      }
    }
    const span = stats.max[j] - stats.min[j];
    const hb = settings.histogramBins;
    for (const slot of sample) {
      for (const v of column(slot.window, j)) {
        const bin = span > 0 ? Math.floor(((v - stats.min[j]) / span) * hb) : 0;
        set.histogram[j * hb + Math.min(hb - 1, Math.max(0, bin))] += 1;
      }
    }
  }
  return set;
}
