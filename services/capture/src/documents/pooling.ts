import { UserInputError } from '@loupe/common';

/**
 * How a document's [tokens, width] activations become one vector.
 *
 * - `mean` (the default): the mean over the document's tokens. Every token contributes, so the
 *   embedding reflects the whole text ("waterproof" anywhere in it moves it).
 * - `last`: the last token's activations. In GPT-2 (a causal model trained only to predict the next
 *   token) the last position mostly encodes what comes next after the final word and where the text
 *   ends (its position), not what the text is about: products ending in the same word cluster
 *   whatever they are. Offered for comparison, not recommended.
 *
 * Every document (and query) runs after one <|endoftext|> token that is never pooled. GPT-2's first
 * position is an attention sink whose residual norm is tens of times any other position's; with the
 * prefix that outlier is the same token for every text, and leaving it out of the mean keeps it from
 * dominating every embedding. Without it, the first word's residual would.
 */
export const POOLINGS = ['mean', 'last'] as const;
export type Pooling = (typeof POOLINGS)[number];
export const DEFAULT_POOLING: Pooling = 'mean';

/** Positions at the start of every run that pooling skips: the <|endoftext|> prefix. */
export const PREFIX_TOKENS = 1;

export function parsePooling(name: string): Pooling {
  if (name === '') return DEFAULT_POOLING;
  if ((POOLINGS as readonly string[]).includes(name)) return name as Pooling;
  throw new UserInputError(`unknown pooling "${name}": expected one of ${POOLINGS.join(', ')}`);
}

/**
 * Pools rows `skip`..tokens-1 of row-major [tokens, width] values. The mean accumulates in float64, so
 * the result does not depend on summation order beyond float32 rounding of the output.
 */
export function pool(
  values: Float32Array,
  tokens: number,
  width: number,
  pooling: Pooling,
  skip = PREFIX_TOKENS,
): Float32Array {
  if (values.length !== tokens * width)
    throw new Error(`pool: ${values.length} values are not ${tokens} tokens × ${width}`);
  if (tokens <= skip) throw new UserInputError('nothing to pool: the text has no tokens');
  if (pooling === 'last') return values.slice((tokens - 1) * width, tokens * width);
  const sum = new Float64Array(width);
  for (let t = skip; t < tokens; t++) {
    const row = t * width;
    for (let j = 0; j < width; j++) sum[j] += values[row + j];
  }
  const out = new Float32Array(width);
  const n = tokens - skip;
  for (let j = 0; j < width; j++) out[j] = sum[j] / n;
  return out;
}
