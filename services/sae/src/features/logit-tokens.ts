import { GraphBuilder, UserInputError } from '@loupe/common';
import { openSession, type SessionSettings, type Unembedding } from '@loupe/model';
import ort from 'onnxruntime-node';

/** Per feature, the tokens its decoder direction promotes most and least: W_dec[f] · W_U. */
export interface LogitTokens {
  /** [features, count] token ids, largest first */
  positiveIds: Int32Array;
  positiveValues: Float32Array;
  /** [features, count] token ids, smallest first */
  negativeIds: Int32Array;
  negativeValues: Float32Array;
  count: number;
}

export interface LogitTokenSettings extends SessionSettings {
  /** tokens kept per side; 10 */
  count?: number;
  /** features per ONNX Runtime call: bounds the [chunk, vocab] logits held at once; 512 */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * One graph per model: decoder rows [features, d] · wteᵀ (Gemm, transB) then TopK both ways. The
 * [chunk, vocab] product never leaves ONNX Runtime, so only 4 · count values per feature come back.
 */
function buildLogitGraph(unembedding: Unembedding, count: number): Uint8Array {
  const { vocabSize, dModel } = unembedding;
  const g = new GraphBuilder();
  const directions = g.input('directions', 'float32', ['features', dModel]);
  const W_U = g.inlineWeight('W_U', [vocabSize, dModel], unembedding.weights);
  const logits = g.op('Gemm', [directions, W_U], { transB: 1 });
  const k = g.constInt64([count], [1], 'k');
  const [posValues, posIds] = g.opMulti('TopK', [logits, k], 2, { axis: 1, largest: 1, sorted: 1 });
  const [negValues, negIds] = g.opMulti('TopK', [logits, k], 2, { axis: 1, largest: 0, sorted: 1 });
  g.op('Identity', [posValues], {}, 'positive_values');
  g.op('Identity', [posIds], {}, 'positive_ids');
  g.op('Identity', [negValues], {}, 'negative_values');
  g.op('Identity', [negIds], {}, 'negative_ids');
  g.output('positive_values', 'float32', ['features', count]);
  g.output('positive_ids', 'int64', ['features', count]);
  g.output('negative_values', 'float32', ['features', count]);
  g.output('negative_ids', 'int64', ['features', count]);
  return g.encode({ graphName: 'sae_logit_tokens', opset: 20 });
}

/**
 * Logit tokens of every feature of a decoder W_dec [features, d_in]. Only meaningful when the SAE reads
 * the residual stream (d_in = d_model); other hooks are refused with what would be needed.
 */
export async function computeLogitTokens(
  decoder: Float32Array,
  dIn: number,
  unembedding: Unembedding,
  settings: LogitTokenSettings,
): Promise<LogitTokens> {
  if (dIn !== unembedding.dModel) {
    throw new UserInputError(
      `logit tokens need decoder directions in the residual stream (d_in = d_model ${unembedding.dModel}); this SAE has d_in ${dIn}`,
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
  const { session } = await openSession(buildLogitGraph(unembedding, count), settings);
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
