import { hashString, Rng, UserInputError } from '@loupe/common';
import type { DecodeRow, Decoder } from './decoder.js';
import type { FeatureClamp, ResidualAddition } from './gpt2-runner.js';

export interface GenerateOptions {
  maxTokens: number;
  /** 0 = greedy */
  temperature: number;
  /** 0 = no top-k cut */
  topK: number;
  seed: number;
  steering: ResidualAddition[];
  /** the steered run's feature clamps (none when absent) */
  clamps?: FeatureClamp[];
  stopAtEndOfText: boolean;
  /** stops generating (between forward passes) when aborted: the caller went away or ran out of time */
  signal?: AbortSignal;
}

export interface Continuation {
  ids: number[];
  /** log p(token) under the run's own next-token distribution, before temperature and top-k */
  logprobs: number[];
}

export interface GenerateLimits {
  nPositions: number;
  vocabSize: number;
  endOfTextId: number | null;
  maxNewTokens: number;
}

/**
 * Samples a steered and an unsteered continuation of the same prompt side by side, as two rows of one
 * batch. Each has its own random stream seeded identically, so where steering changes nothing the two
 * stay identical and every difference is the steering's doing.
 */
export async function generatePair(
  openDecoder: (rows: DecodeRow[]) => Promise<Decoder>,
  promptIds: number[],
  options: GenerateOptions,
  limits: GenerateLimits,
): Promise<{ steered: Continuation; unsteered: Continuation }> {
  validate(promptIds, options, limits);
  const decoder = await openDecoder([
    { steering: options.steering, clamps: options.clamps ?? [] },
    { steering: [], clamps: [] },
  ]);
  const [steered, unsteered] = await sample(decoder, promptIds, options, limits, 2);
  return { steered, unsteered };
}

function validate(promptIds: number[], options: GenerateOptions, limits: GenerateLimits): void {
  if (promptIds.length === 0) throw new UserInputError('empty prompt: at least one token is needed');
  if (
    !Number.isInteger(options.maxTokens) ||
    options.maxTokens < 1 ||
    options.maxTokens > limits.maxNewTokens
  ) {
    throw new UserInputError(`max_tokens must be 1-${limits.maxNewTokens}, got ${options.maxTokens}`);
  }
  // the last sampled token is never fed back, so prompt + max_tokens may exceed the context by one
  if (promptIds.length + options.maxTokens - 1 > limits.nPositions) {
    throw new UserInputError(
      `prompt (${promptIds.length} tokens) + max_tokens (${options.maxTokens}) exceeds the context of ${limits.nPositions}`,
      'TOO_LONG',
    );
  }
  if (!(options.temperature >= 0) || !Number.isFinite(options.temperature)) {
    throw new UserInputError(`temperature must be a finite number ≥ 0, got ${options.temperature}`);
  }
  if (!Number.isInteger(options.topK) || options.topK < 0)
    throw new UserInputError(`top_k must be a whole number ≥ 0, got ${options.topK}`);
}

async function sample(
  decoder: Decoder,
  promptIds: number[],
  options: GenerateOptions,
  limits: GenerateLimits,
  rows: number,
): Promise<Continuation[]> {
  // seeds are uint64 on the wire: hash the whole value, not just its low 32 bits
  const rngs = Array.from({ length: rows }, () => new Rng(hashString(String(options.seed))));
  const out: Continuation[] = Array.from({ length: rows }, () => ({ ids: [], logprobs: [] }));
  const done = new Array<boolean>(rows).fill(false);
  options.signal?.throwIfAborted();
  let logits = await decoder.step(
    out.map(() => promptIds),
    options.signal,
  );
  for (let step = 0; ; step++) {
    for (let row = 0; row < rows; row++) {
      if (done[row]) continue;
      if (!logits[row].every(Number.isFinite)) {
        throw new UserInputError(
          'the model produced non-finite logits (is the steering strength too large?)',
        );
      }
      const next = pick(logits[row], options, rngs[row]);
      out[row].ids.push(next);
      out[row].logprobs.push(logSoftmax(logits[row])[next]);
      if (options.stopAtEndOfText && next === limits.endOfTextId) done[row] = true;
    }
    if (step + 1 >= options.maxTokens || done.every(Boolean)) return out;
    options.signal?.throwIfAborted();
    // a finished row keeps stepping (its outputs unread) so every row feeds one token per step
    logits = await decoder.step(
      out.map((c) => [c.ids[c.ids.length - 1]]),
      options.signal,
    );
  }
}

export function logSoftmax(logits: Float32Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const logZ = max + Math.log(sum);
  return Float64Array.from(logits, (v) => v - logZ);
}

/** Greedy at temperature 0; otherwise softmax(logits / T) over the top-k, sampled with the run's RNG. */
export function pick(
  logits: Float32Array,
  options: Pick<GenerateOptions, 'temperature' | 'topK'>,
  rng: Rng,
): number {
  if (options.temperature === 0) return argmax(logits);
  let candidates = Array.from(logits.keys());
  if (options.topK > 0 && options.topK < logits.length) {
    candidates.sort((a, b) => logits[b] - logits[a] || a - b);
    candidates = candidates.slice(0, options.topK);
  }
  let max = Number.NEGATIVE_INFINITY;
  for (const i of candidates) max = Math.max(max, logits[i]);
  const weights = candidates.map((i) => Math.exp((logits[i] - max) / options.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let threshold = rng.nextUniform() * total;
  for (let k = 0; k < candidates.length; k++) {
    threshold -= weights[k];
    if (threshold <= 0) return candidates[k];
  }
  return candidates[candidates.length - 1];
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
