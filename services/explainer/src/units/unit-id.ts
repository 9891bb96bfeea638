import { formatUnitId, parseUnitId, UserInputError } from '@loupe/common';

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
      for (let i = from; i <= to; i++) units.add(formatUnitId(parseUnitId(`${base}/${i}`)));
    }
  }
  if (units.size === 0) throw new UserInputError('units: the spec names no units');
  return [...units];
}
