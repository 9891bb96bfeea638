import { GraphBuilder, UserInputError } from '@loupe/common';
import ort from 'onnxruntime-node';
import type { Unembedding } from '../graph/unembedding.js';
import { openSession, type SessionSettings } from './sessions.js';

/**
 * Per direction in the residual stream (an SAE feature's decoder row, a neuron's output direction), the
 * tokens it promotes most and least: direction · W_Uᵀ.
 */
export interface LogitTokens {
  /** [directions, count] token ids, largest first */
  positiveIds: Int32Array;
  positiveValues: Float32Array;
  /** [directions, count] token ids, smallest first */
  negativeIds: Int32Array;
  negativeValues: Float32Array;
  count: number;
}

export interface LogitTokenSettings extends SessionSettings {
  /** tokens kept per side; 10 */
  count?: number;
  /** directions per ONNX Runtime call: bounds the [chunk, vocab] logits held at once; 512 */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
  /** what the directions are, for errors ("this SAE"); "these directions" */
  subject?: string;
}

/**
 * Appends logit tokens of `directions` [rows, d_model] to a graph: directions · W_Uᵀ (Gemm, transB, with
 * W_U inlined) then TopK both ways, as graph outputs positive_values / positive_ids / negative_values /
 * negative_ids [rows, count] (each name after `prefix`). The [rows, vocab] product never leaves ONNX
 * Runtime, so only 4 · count values per direction come back. `count` is a graph constant or an int64
 * [1] input. Several calls on one graph share one W_U.
 */
export function addLogitTokens(
  g: GraphBuilder,
  directions: string,
  unembedding: Unembedding,
  count: { constant: number } | { input: string },
  prefix = '',
): void {
  const { vocabSize, dModel } = unembedding;
  const W_U = inlinedUnembedding.get(g) ?? g.inlineWeight('W_U', [vocabSize, dModel], unembedding.weights);
  inlinedUnembedding.set(g, W_U);
  const logits = g.op('Gemm', [directions, W_U], { transB: 1 }); // [rows, vocab]
  const k = 'constant' in count ? g.constInt64([count.constant], [1], 'k') : count.input;
  const sides = { positive: 1, negative: 0 };
  for (const [side, largest] of Object.entries(sides)) {
    const [values, ids] = [`${prefix}${side}_values`, `${prefix}${side}_ids`];
    g.opNamed('TopK', [logits, k], [values, ids], { axis: 1, largest, sorted: 1 });
    g.output(values, 'float32', ['rows', 'count']);
    g.output(ids, 'int64', ['rows', 'count']);
  }
}

const inlinedUnembedding = new WeakMap<GraphBuilder, string>();

/**
 * Logit tokens of many directions at once, [directions, d_in] row-major (an SAE's W_dec). Only
 * meaningful in the residual stream (d_in = d_model); other widths are refused with what is needed.
 */
export async function computeLogitTokens(
  decoder: Float32Array,
  dIn: number,
  unembedding: Unembedding,
  settings: LogitTokenSettings,
): Promise<LogitTokens> {
  if (dIn !== unembedding.dModel) {
    throw new UserInputError(
      `logit tokens need directions in the residual stream (d_in = d_model ${unembedding.dModel}); ${
        settings.subject ?? 'these directions'
      } has d_in ${dIn}`,
    );
  }
  const count = Math.min(settings.count ?? 10, unembedding.vocabSize);
  const chunk = settings.chunk ?? 512;
  const features = decoder.length / dIn;
  const out: LogitTokens = {
    positiveIds: new Int32Array(features * count),
    positiveValues: new Float32Array(features * count),
    negativeIds: new Int32Array(features * count),
    negativeValues: new Float32Array(features * count),
    count,
  };
  const g = new GraphBuilder();
  addLogitTokens(g, g.input('directions', 'float32', ['rows', dIn]), unembedding, { constant: count });
  const graph = g.encode({ graphName: 'logit_tokens', opset: 20 });
  const { session } = await openSession(graph, settings);
  try {
    for (let first = 0; first < features; first += chunk) {
      const n = Math.min(chunk, features - first);
      const rows = decoder.subarray(first * dIn, (first + n) * dIn);
      const r = await session.run({ directions: new ort.Tensor('float32', rows, [n, dIn]) });
      const at = first * count;
      out.positiveValues.set(r.positive_values.data as Float32Array, at);
      out.negativeValues.set(r.negative_values.data as Float32Array, at);
      out.positiveIds.set(Int32Array.from(r.positive_ids.data as BigInt64Array, Number), at);
      out.negativeIds.set(Int32Array.from(r.negative_ids.data as BigInt64Array, Number), at);
      settings.onProgress?.(first + n, features);
    }
  } finally {
    await session.release();
  }
  return out;
}
