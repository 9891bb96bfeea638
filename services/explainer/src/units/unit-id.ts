import { UserInputError } from '@loupe/common';

/**
 * A unit as the explainer needs it: where its records come from. `model/hook/index` is a neuron (the
 * hook is a TransformerLens name, e.g. blocks.6.mlp.hook_post); `model/sae-id/index` is an SAE feature.
 * Hook names always start with `blocks.`, `hook_` or `ln_final.`; SAE ids never contain a slash.
 */
export type UnitRef =
  | { kind: 'neuron'; id: string; model: string; hook: string; index: number }
  | { kind: 'feature'; id: string; model: string; saeId: string; index: number };

const EXAMPLES = 'gpt2/blocks.6.mlp.hook_post/1234 or gpt2/<sae-id>/42';
const INDEX = /^(0|[1-9]\d{0,8})$/;
const HOOK = /^(blocks\.\d+\.|hook_|ln_final\.)/;

export function parseUnit(id: string): UnitRef {
  const parts = id.split('/');
  const [model, middle, index] = parts;
  if (parts.length !== 3 || !model || !middle || !INDEX.test(index ?? ''))
    throw new UserInputError(`unit "${id}" must be model/hook/index or model/sae-id/index, e.g. ${EXAMPLES}`);
  return HOOK.test(middle)
    ? { kind: 'neuron', id, model, hook: middle, index: Number(index) }
    : { kind: 'feature', id, model, saeId: middle, index: Number(index) };
}

// A job over a whole SAE is a few hundred thousand units at most; more is a typo.
const MAX_UNITS = 1_000_000;

/**
 * Units of a job: `model/hook/0-99`, `model/sae-id/3,7,12`, ranges and lists mixed (`1,4-6`), several
 * specs separated by `;`. In the order given, without duplicates.
 */
export function parseUnitSpec(spec: string): string[] {
  const units = new Set<string>();
  for (const part of spec
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const slash = part.lastIndexOf('/');
    const base = part.slice(0, slash);
    const indices = part.slice(slash + 1);
    if (slash < 0 || indices === '')
      throw new UserInputError(
        `units "${part}": expected model/hook/<indices>, e.g. gpt2/blocks.6.mlp.hook_post/0-99`,
      );
    for (const piece of indices.split(',')) {
      const range = /^(\d+)-(\d+)$/.exec(piece.trim());
      const [from, to] = range ? [Number(range[1]), Number(range[2])] : [Number(piece), Number(piece)];
      if (!Number.isInteger(from) || !Number.isInteger(to) || from > to || piece.trim() === '')
        throw new UserInputError(`units "${part}": "${piece}" is not an index or a range like 0-99`);
      if (units.size + (to - from + 1) > MAX_UNITS)
        throw new UserInputError(`units "${spec}": more than ${MAX_UNITS} units in one job`);
      for (let i = from; i <= to; i++) units.add(parseUnit(`${base}/${i}`).id);
    }
  }
  if (units.size === 0) throw new UserInputError('units: the spec names no units');
  return [...units];
}
