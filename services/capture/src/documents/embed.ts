import { parseHook, UserInputError } from '@loupe/common';
import type {
  FeatureClamp,
  ForwardRequest,
  ForwardResult,
  Gpt2Tokenizer,
  ResidualAddition,
} from '@loupe/model';
import { type Pooling, PREFIX_TOKENS, pool } from './pooling.js';

/** What embedding needs from a served model: its batched forward, tokenizer and sizes. */
export interface EmbeddingModel {
  forward(request: ForwardRequest): Promise<ForwardResult>;
  tokenizer: Gpt2Tokenizer;
  nLayer: number;
  nPositions: number;
}

export interface EmbeddingSpec {
  hook: string;
  pooling: Pooling;
}

/** What a query's forward pass is edited by, exactly as in Activations: additions, then feature clamps. */
export interface EmbeddingEdits {
  steering?: ResidualAddition[];
  clamps?: FeatureClamp[];
}

/**
 * The ids a text runs as: <|endoftext|> then the text's tokens, cut to the model's context (a product
 * description is far shorter; a long document is embedded from its start).
 */
export function documentIds(model: Pick<EmbeddingModel, 'tokenizer' | 'nPositions'>, text: string): number[] {
  const eot = model.tokenizer.endOfTextId;
  if (eot === null) throw new UserInputError('the model has no <|endoftext|> token to prefix documents with');
  const ids = model.tokenizer.encode(text);
  if (ids.length === 0) throw new UserInputError('the text has no tokens');
  return [eot, ...ids].slice(0, model.nPositions);
}

/** The embedding of one run: the hook's activations (under any edits) pooled over the text's tokens. */
export async function embedIds(
  model: EmbeddingModel,
  ids: number[],
  spec: EmbeddingSpec,
  edits: EmbeddingEdits = {},
): Promise<Float32Array> {
  const result = await model.forward({ ids, hooks: [spec.hook], logits: false, ...edits });
  const values = result.hooks.get(spec.hook);
  if (!values) throw new Error(`the forward pass returned no ${spec.hook}`);
  return pool(values, ids.length, values.length / ids.length, spec.pooling, PREFIX_TOKENS);
}

/**
 * Embeds many texts; up to `concurrency` runs are in flight at once, so the model's batcher packs them
 * into shared forward passes. Results are in input order.
 */
export async function embedTexts(
  model: EmbeddingModel,
  texts: readonly string[],
  spec: EmbeddingSpec,
  options: { concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<Float32Array[]> {
  const out: Float32Array[] = new Array(texts.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < texts.length) {
      const i = next++;
      out[i] = await embedIds(model, documentIds(model, texts[i]), spec);
      options.onProgress?.(++done, texts.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 32, texts.length) }, worker));
  return out;
}

/**
 * Steering adds to, and a feature clamp edits, blocks.{L}.hook_resid_pre, so either can only change hooks
 * at layer L or later (and ln_final); an embedding read before it would silently ignore the edit.
 */
export function checkSteeringReaches(hook: string, edits: EmbeddingEdits, nLayer: number): void {
  const ref = parseHook(hook, nLayer);
  const named = [
    ...(edits.steering ?? []).map((e, i) => ({ layer: e.layer, what: `steering[${i}]` })),
    ...(edits.clamps ?? []).map((e, i) => ({ layer: e.layer, what: `clamps[${i}]` })),
  ];
  for (const { layer, what } of named) {
    const reaches = ref.kind === 'global' ? ref.name === 'ln_final.hook_normalized' : ref.layer >= layer;
    if (!reaches) {
      const verb = what.startsWith('clamps') ? 'clamp' : 'steer';
      throw new UserInputError(
        `${what} at blocks.${layer}.hook_resid_pre cannot change this collection's embeddings, read at ${hook}: ${verb} at a layer at or before ${ref.kind === 'block' ? ref.layer : 'the first block'} (or index the collection at blocks.${layer} or later)`,
      );
    }
  }
}
