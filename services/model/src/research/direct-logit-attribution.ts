import { blockHook } from '@loupe/common';
import { readWeight } from '../graph/unembedding.js';
import type { Gpt2Runner } from '../runtime/gpt2-runner.js';

export interface DirectLogitAttribution {
  ids: number[];
  tokens: string[];
  /** the position read: the last */
  position: number;
  token: { id: number; token: string };
  wrong?: { id: number; token: string };
  /** the model's logit (or logit difference) at `position` */
  logit: number;
  /** [layer][head]: each head's z · W_O[head] through the frozen final LayerNorm */
  heads: number[][];
  /** [layer]: each MLP's hook_mlp_out */
  mlps: number[];
  /** [layer]: each attention's output bias b_O, written whatever the heads do */
  attentionBiases: number[];
  /** token and position embeddings */
  embed: number;
  /** ln_f's bias · the unembedding direction (no component writes it) */
  lnBias: number;
}

/**
 * Direct logit attribution as TransformerLens computes it (`apply_ln_to_stack` with the final
 * LayerNorm's scale frozen from this run): every component's output at the last position, centred and
 * divided by that scale, dotted with ln_f's gain times the unembedding direction (W_U[token], or
 * W_U[token] − W_U[wrong]). The components sum, with lnBias, to the model's own logit (difference).
 */
export async function directLogitAttribution(
  runner: Gpt2Runner,
  ids: number[],
  token: number,
  wrong?: number,
): Promise<DirectLogitAttribution> {
  const { nLayer, nHead, dModel: d, layerNormEpsilon } = runner.manifest.dims;
  const dHead = d / nHead;
  const last = ids.length - 1;
  const zHooks = Array.from({ length: nLayer }, (_, l) => blockHook(l, 'attn.hook_z'));
  const mlpHooks = Array.from({ length: nLayer }, (_, l) => blockHook(l, 'hook_mlp_out'));
  const finalResid = blockHook(nLayer - 1, 'hook_resid_post');
  const [run] = await runner.forward([
    { ids, hooks: [...zHooks, ...mlpHooks, 'hook_embed', 'hook_pos_embed', finalResid], logits: true },
  ]);
  const at = (hook: string) => run.hooks.get(hook)!.subarray(last * d, (last + 1) * d);

  const unembed = await unembedDirection(runner, token, wrong);
  const gain = await readWeight(runner.dir, 'ln_f.weight', [d]);
  const lnBias = await readWeight(runner.dir, 'ln_f.bias', [d]);
  const direction = Float64Array.from(unembed, (u, i) => u * gain[i]);
  const scale = layerNormScale(at(finalResid), layerNormEpsilon);
  /** centred component · direction / scale: the component's share of the logit after ln_f */
  const read = (x: ArrayLike<number>): number => {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[i];
    mean /= d;
    let dot = 0;
    for (let i = 0; i < d; i++) dot += (x[i] - mean) * direction[i];
    return dot / scale;
  };

  const heads: number[][] = [];
  const attentionBiases: number[] = [];
  for (let layer = 0; layer < nLayer; layer++) {
    const wO = await readWeight(runner.dir, `h.${layer}.attn.c_proj.weight`, [d, d]); // Conv1D [in, out]
    const bO = await readWeight(runner.dir, `h.${layer}.attn.c_proj.bias`, [d]);
    const z = at(zHooks[layer]); // [head · d_head]
    heads.push(
      Array.from({ length: nHead }, (_, h) => {
        const out = new Float64Array(d);
        for (let c = 0; c < dHead; c++) {
          const zc = z[h * dHead + c];
          const row = (h * dHead + c) * d;
          for (let j = 0; j < d; j++) out[j] += zc * wO[row + j];
        }
        return read(out);
      }),
    );
    attentionBiases.push(read(bO));
  }
  const embedded = Float64Array.from(at('hook_embed'), (e, i) => e + at('hook_pos_embed')[i]);
  const logits = run.logits!;
  const vocab = runner.manifest.dims.vocabSize;
  const logit = logits[last * vocab + token] - (wrong === undefined ? 0 : logits[last * vocab + wrong]);
  const name = (id: number) => ({ id, token: runner.tokenizer.tokenStrings([id])[0] });
  return {
    ids,
    tokens: runner.tokenizer.tokenStrings(ids),
    position: last,
    token: name(token),
    ...(wrong === undefined ? {} : { wrong: name(wrong) }),
    logit,
    heads,
    mlps: mlpHooks.map((hook) => read(at(hook))),
    attentionBiases,
    embed: read(embedded),
    lnBias: unembed.reduce((sum, u, i) => sum + u * lnBias[i], 0),
  };
}

/** W_U[token] (− W_U[wrong]) as float64, from the model's unembedding rows. */
export async function unembedDirection(
  runner: Gpt2Runner,
  token: number,
  wrong?: number,
): Promise<Float64Array> {
  const { dModel: d, vocabSize } = runner.manifest.dims;
  const name = runner.manifest.source.tiedUnembedding ? 'wte.weight' : 'lm_head.weight';
  const weights = await readWeight(runner.dir, name, [vocabSize, d]);
  const row = (id: number) => weights.subarray(id * d, (id + 1) * d);
  return Float64Array.from(row(token), (u, i) => u - (wrong === undefined ? 0 : row(wrong)[i]));
}

/** sqrt(var + eps) of one residual vector: the final LayerNorm's divisor, frozen for attribution. */
function layerNormScale(x: ArrayLike<number>, eps: number): number {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i];
  mean /= x.length;
  let variance = 0;
  for (let i = 0; i < x.length; i++) variance += (x[i] - mean) ** 2;
  return Math.sqrt(variance / x.length + eps);
}
