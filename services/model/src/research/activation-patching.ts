import { blockHook, UserInputError } from '@loupe/common';
import type { ForwardRequest, Gpt2Runner } from '../runtime/gpt2-runner.js';
import { unembedDirection } from './direct-logit-attribution.js';

export const PATCH_SWEEP_HOOKS = ['resid_pre', 'attn_out', 'mlp_out', 'z'] as const;
export type PatchSweepHook = (typeof PATCH_SWEEP_HOOKS)[number];

export interface ActivationPatching {
  hook: PatchSweepHook;
  cleanIds: number[];
  corruptedIds: number[];
  tokens: string[];
  /** logit[answer] − logit[wrong] at the last position */
  cleanDiff: number;
  corruptedDiff: number;
  /**
   * [layer][position] (z: [layer][head]): (patched − corrupted) / (clean − corrupted): 1 = the patch
   * restores the clean behaviour, 0 = it changes nothing; null everywhere when clean = corrupted
   */
  scores: (number | null)[][];
  /** the raw patched logit differences, same layout */
  diffs: number[][];
}

/** Patched runs per forward pass: bounds the batch's memory, not its results. */
const ROWS_PER_FORWARD = 32;
/** Longest prompt a sweep takes: its work grows with layers × tokens², so a service bounds it. */
export const MAX_SWEEP_TOKENS = 64;

/**
 * Activation patching as in the indirect-object-identification work: run the clean and the corrupted
 * prompt, then the corrupted prompt again once per (layer, position) (per (layer, head) for z, all
 * positions of that head) with that slice of the clean run's hook patched in, and report how much of
 * the clean logit difference each patch restores. Patched runs go through the model many rows at a
 * time, each row carrying its own patch, and read only ln_final at the last position (no logits):
 * logit[answer] − logit[wrong] = ln_final · (W_U[answer] − W_U[wrong]).
 */
export async function activationPatching(
  runner: Gpt2Runner,
  request: { clean: number[]; corrupted: number[]; answer: number; wrong: number; hook: PatchSweepHook },
): Promise<ActivationPatching> {
  const { clean, corrupted, answer, wrong, hook } = request;
  if (!PATCH_SWEEP_HOOKS.includes(hook))
    throw new UserInputError(
      `hook must be one of ${PATCH_SWEEP_HOOKS.join(', ')}, got ${JSON.stringify(hook)}`,
    );
  if (clean.length !== corrupted.length) {
    throw new UserInputError(
      `the clean and corrupted prompts must have the same token length: ${clean.length} vs ${corrupted.length} tokens`,
    );
  }
  if (clean.length > MAX_SWEEP_TOKENS) {
    throw new UserInputError(
      `activation patching takes prompts of at most ${MAX_SWEEP_TOKENS} tokens; these have ${clean.length}`,
      'TOO_LONG',
    );
  }
  if (answer === wrong) throw new UserInputError('the answer and the wrong token are the same token');
  const { nLayer, nHead, dModel: d } = runner.manifest.dims;
  const n = clean.length;
  const hookName = (layer: number) =>
    blockHook(layer, hook === 'z' ? 'attn.hook_z' : hook === 'resid_pre' ? 'hook_resid_pre' : `hook_${hook}`);
  const hooks = Array.from({ length: nLayer }, (_, layer) => hookName(layer));
  const direction = await unembedDirection(runner, answer, wrong);
  const diffOf = (normalized: Float32Array) => {
    let dot = 0;
    for (let i = 0; i < d; i++) dot += normalized[(n - 1) * d + i] * direction[i];
    return dot;
  };
  const final = 'ln_final.hook_normalized';
  const [cleanRun, corruptedRun] = await runner.forward([
    { ids: clean, hooks: [...hooks, final], logits: false },
    { ids: corrupted, hooks: [final], logits: false },
  ]);
  const cleanDiff = diffOf(cleanRun.hooks.get(final)!);
  const corruptedDiff = diffOf(corruptedRun.hooks.get(final)!);

  const columns = hook === 'z' ? nHead : n;
  const requests: ForwardRequest[] = [];
  for (let layer = 0; layer < nLayer; layer++) {
    const value = cleanRun.hooks.get(hooks[layer])!; // [pos, width] or [pos, head, d_head]
    for (let column = 0; column < columns; column++) {
      const patch =
        hook === 'z'
          ? {
              hook: hooks[layer],
              positions: [...Array(n).keys()],
              head: column,
              values: headSlice(value, column, n, nHead),
            }
          : { hook: hooks[layer], positions: [column], values: value.slice(column * d, (column + 1) * d) };
      requests.push({ ids: corrupted, hooks: [final], logits: false, patches: [patch] });
    }
  }
  const diffs: number[] = [];
  for (let start = 0; start < requests.length; start += ROWS_PER_FORWARD) {
    const results = await runner.forward(requests.slice(start, start + ROWS_PER_FORWARD));
    for (const result of results) diffs.push(diffOf(result.hooks.get(final)!));
  }
  const denominator = cleanDiff - corruptedDiff;
  const grid = <T>(values: T[]) =>
    Array.from({ length: nLayer }, (_, layer) => values.slice(layer * columns, (layer + 1) * columns));
  return {
    hook,
    cleanIds: clean,
    corruptedIds: corrupted,
    tokens: runner.tokenizer.tokenStrings(clean),
    cleanDiff,
    corruptedDiff,
    diffs: grid(diffs),
    // a zero denominator (the prompts do not differ on this logit) has no normalised score
    scores: grid(diffs.map((v) => (denominator === 0 ? null : (v - corruptedDiff) / denominator))),
  };
}

/** One head's [pos, d_head] out of [pos, head, d_head]. */
function headSlice(value: Float32Array, head: number, n: number, nHead: number): Float32Array {
  const dHead = value.length / n / nHead;
  const out = new Float32Array(n * dHead);
  for (let p = 0; p < n; p++)
    out.set(value.subarray((p * nHead + head) * dHead, (p * nHead + head + 1) * dHead), p * dHead);
  return out;
}
