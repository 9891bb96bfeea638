import { blockHook } from '@loupe/common';
import type { Gpt2Runner } from '../runtime/gpt2-runner.js';
import type { HookPatch } from '../runtime/patches.js';

export interface LensToken {
  id: number;
  token: string;
  probability: number;
}

export interface LogitLens {
  ids: number[];
  tokens: string[];
  /** [layer][position]: the top tokens of unembed(ln_f(blocks.L.hook_resid_post)) */
  top: LensToken[][][];
  /** the chosen token's rank (0 = most likely) and probability, [layer][position] */
  chosen?: { id: number; token: string; rank: number[][]; probability: number[][] };
}

/**
 * The logit lens: each layer's hook_resid_post read as if it were the last, through ln_f and the
 * unembedding. One batched forward: row L patches the last layer's hook_resid_post with layer L's
 * value, so the graph's own ln_f and unembedding do the reading (exactly the model's arithmetic).
 */
export async function logitLens(
  runner: Gpt2Runner,
  ids: number[],
  options: { topK?: number; token?: number } = {},
): Promise<LogitLens> {
  const { nLayer, vocabSize } = runner.manifest.dims;
  const topK = options.topK ?? 5;
  const residPost = (layer: number) => blockHook(layer, 'hook_resid_post');
  const hooks = Array.from({ length: nLayer }, (_, layer) => residPost(layer));
  const [clean] = await runner.forward([{ ids, hooks, logits: false }]);
  const rows = await runner.forward(
    hooks.map((hook, layer) => {
      const patches: HookPatch[] =
        layer === nLayer - 1
          ? []
          : [
              {
                hook: residPost(nLayer - 1),
                positions: ids.map((_, p) => p),
                values: clean.hooks.get(hook)!,
              },
            ];
      return { ids, hooks: [], logits: true, patches };
    }),
  );
  const top: LensToken[][][] = [];
  const rank: number[][] = [];
  const probability: number[][] = [];
  for (const row of rows) {
    const logits = row.logits!;
    const layerTop: LensToken[][] = [];
    const layerRank: number[] = [];
    const layerProbability: number[] = [];
    for (let p = 0; p < ids.length; p++) {
      const probs = softmax(logits.subarray(p * vocabSize, (p + 1) * vocabSize));
      layerTop.push(
        topIndices(probs, topK).map((id) => ({
          id,
          token: runner.tokenizer.tokenStrings([id])[0],
          probability: probs[id],
        })),
      );
      if (options.token !== undefined) {
        const mine = probs[options.token];
        let above = 0;
        for (let v = 0; v < vocabSize; v++) if (probs[v] > mine) above++;
        layerRank.push(above);
        layerProbability.push(mine);
      }
    }
    top.push(layerTop);
    rank.push(layerRank);
    probability.push(layerProbability);
  }
  return {
    ids,
    tokens: runner.tokenizer.tokenStrings(ids),
    top,
    ...(options.token !== undefined
      ? {
          chosen: {
            id: options.token,
            token: runner.tokenizer.tokenStrings([options.token])[0],
            rank,
            probability,
          },
        }
      : {}),
  };
}

/** softmax in float64 (probabilities of tokens far down the list stay exact relative to each other) */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const out = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < logits.length; i++) out[i] /= total;
  return out;
}

/** The k largest entries' indices, largest first (ties: lower index first). */
function topIndices(values: ArrayLike<number>, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (best.length === k && values[i] <= values[best[k - 1]]) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && values[best[at - 1]] < values[i]) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}
