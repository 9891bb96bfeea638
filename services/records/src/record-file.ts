import { SafetensorsReader, type TensorToWrite, type WriteOptions, writeSafetensors } from '@loupe/common';
import type { NeuronRecord, RecordSet, RecordSettings, WindowActivations } from './unit-records.js';

/**
 * A hook's neuron records live in one safetensors file (per-token values are the bulk: tens of MB for a
 * GPT-2 layer), with one row per neuron in every tensor, so one neuron's records are read alone.
 * Postgres holds the statistics and the file's path.
 */
export async function writeRecordFile(
  file: string,
  set: RecordSet,
  metadata: Record<string, string>,
  options?: WriteOptions,
): Promise<void> {
  const { width: n, windowLength: L, settings } = set;
  const k = settings.topK;
  const bins = settings.quantileEdges.length - 1;
  const R = set.randomWindows.length;
  const tensors: TensorToWrite[] = [
    { name: 'stats.max', dtype: 'F64', shape: [n], data: set.max },
    { name: 'stats.min', dtype: 'F64', shape: [n], data: set.min },
    { name: 'stats.mean', dtype: 'F64', shape: [n], data: set.mean },
    { name: 'stats.fraction_nonzero', dtype: 'F64', shape: [n], data: set.fractionNonZero },
    { name: 'histogram', dtype: 'I32', shape: [n, settings.histogramBins], data: set.histogram },
    { name: 'top.window', dtype: 'I32', shape: [n, k], data: set.topWindows },
    { name: 'top.max', dtype: 'F32', shape: [n, k], data: set.topMax },
    { name: 'top.values', dtype: 'F32', shape: [n, k, L], data: set.topValues },
    { name: 'random.window', dtype: 'I32', shape: [R], data: set.randomWindows },
    { name: 'random.values', dtype: 'F32', shape: [n, R, L], data: set.randomValues },
    {
      name: 'quantile.window',
      dtype: 'I32',
      shape: [n, bins, settings.perQuantile],
      data: set.quantileWindows,
    },
    {
      name: 'quantile.values',
      dtype: 'F32',
      shape: [n, bins, settings.perQuantile, L],
      data: set.quantileValues,
    },
  ];
  await writeSafetensors(
    file,
    tensors,
    {
      ...metadata,
      settings: JSON.stringify(settings),
      window_length: String(L),
      tokens: String(set.tokens),
    },
    options,
  );
}

/** One neuron's records, read from the file without loading the other neurons'. */
export async function readNeuronRecord(file: string, neuron: number): Promise<NeuronRecord> {
  const reader = await SafetensorsReader.open(file);
  try {
    const settings = JSON.parse(reader.metadata.settings) as RecordSettings;
    const row = (name: string) => reader.readRowsArray(name, neuron, 1);
    const f64 = async (name: string) => (await row(name)) as Float64Array;
    const f32 = async (name: string) => (await row(name)) as Float32Array;
    const i32 = async (name: string) => (await row(name)) as Int32Array;
    const one: RecordSet = {
      width: 1,
      windowLength: Number(reader.metadata.window_length),
      settings,
      tokens: Number(reader.metadata.tokens),
      max: await f64('stats.max'),
      min: await f64('stats.min'),
      mean: await f64('stats.mean'),
      fractionNonZero: await f64('stats.fraction_nonzero'),
      histogram: await i32('histogram'),
      topWindows: await i32('top.window'),
      topMax: await f32('top.max'),
      topValues: await f32('top.values'),
      randomWindows: (await reader.readArray('random.window')) as Int32Array,
      randomValues: await f32('random.values'),
      quantileWindows: await i32('quantile.window'),
      quantileValues: await f32('quantile.values'),
    };
    return { ...neuronRecord(one, 0), neuron };
  } finally {
    await reader.close();
  }
}

/** Neuron `j` of a record set in the shape API consumers see (values cut at each window's end). */
export function neuronRecord(set: RecordSet, j: number): NeuronRecord {
  const { windowLength: L, settings } = set;
  const k = settings.topK;
  const bins = settings.quantileEdges.length - 1;
  const P = settings.perQuantile;
  const R = set.randomWindows.length;
  const windowAt = (window: number, values: Float32Array, at: number): WindowActivations => {
    const row = Array.from(values.subarray(at * L, (at + 1) * L));
    const end = row.findIndex(Number.isNaN);
    return { window, values: end === -1 ? row : row.slice(0, end) };
  };
  const top: WindowActivations[] = [];
  for (let r = 0; r < k && set.topWindows[j * k + r] >= 0; r++)
    top.push(windowAt(set.topWindows[j * k + r], set.topValues, j * k + r));
  const quantiles: NeuronRecord['quantiles'] = [];
  for (let b = 0; b < bins; b++) {
    const windows: WindowActivations[] = [];
    for (let p = 0; p < P; p++) {
      const slot = (j * bins + b) * P + p;
      if (set.quantileWindows[slot] >= 0)
        windows.push(windowAt(set.quantileWindows[slot], set.quantileValues, slot));
    }
    quantiles.push({ from: settings.quantileEdges[b], to: settings.quantileEdges[b + 1], windows });
  }
  return {
    neuron: j,
    stats: {
      max: set.max[j],
      min: set.min[j],
      mean: set.mean[j],
      fractionNonZero: set.fractionNonZero[j],
      tokens: set.tokens,
    },
    histogram: {
      min: set.min[j],
      max: set.max[j],
      counts: Array.from(
        set.histogram.subarray(j * settings.histogramBins, (j + 1) * settings.histogramBins),
      ),
    },
    top,
    random: Array.from(set.randomWindows, (window, r) => windowAt(window, set.randomValues, j * R + r)),
    quantiles,
  };
}
