import { UserInputError } from '@loupe/common';

/** One window of text with the unit's activation at each token (a record, as capture and SAE write them). */
export interface ActivationRecord {
  tokens: string[];
  activations: number[];
  /** Stable id for provenance ("top:3" when the file gives none). */
  id: string;
}

/** A unit's records: the windows where it fires most, and windows drawn at random. */
export interface UnitRecords {
  top: ActivationRecord[];
  random: ActivationRecord[];
}

/**
 * Validates a records document (`{"top":[{"tokens":[...],"activations":[...]}],"random":[...]}`), naming the
 * first thing that is wrong, so a bad file gives a message rather than NaN scores.
 */
export function parseUnitRecords(value: unknown, source = 'records'): UnitRecords {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UserInputError(`${source}: expected an object {"top":[...],"random":[...]}`);
  const doc = value as Record<string, unknown>;
  const side = (name: 'top' | 'random'): ActivationRecord[] => {
    const list = doc[name] ?? [];
    if (!Array.isArray(list))
      throw new UserInputError(`${source}: "${name}" must be a list of {"tokens":[...],"activations":[...]}`);
    return list.map((item, i) => parseRecord(item, `${source}: ${name}[${i}]`, `${name}:${i}`));
  };
  const records = { top: side('top'), random: side('random') };
  if (records.top.length === 0) throw new UserInputError(`${source}: "top" needs at least one record`);
  return records;
}

function parseRecord(value: unknown, where: string, defaultId: string): ActivationRecord {
  if (typeof value !== 'object' || value === null)
    throw new UserInputError(`${where}: expected {"tokens":[...],"activations":[...]}`);
  const { tokens, activations, id } = value as Record<string, unknown>;
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string'))
    throw new UserInputError(`${where}: "tokens" must be a list of strings`);
  if (!Array.isArray(activations) || !activations.every((a) => typeof a === 'number' && Number.isFinite(a)))
    throw new UserInputError(`${where}: "activations" must be a list of finite numbers`);
  if (tokens.length !== activations.length)
    throw new UserInputError(
      `${where}: ${tokens.length} tokens but ${activations.length} activations (one per token is required)`,
    );
  if (tokens.length === 0) throw new UserInputError(`${where}: a record needs at least one token`);
  if (id !== undefined && typeof id !== 'string' && typeof id !== 'number')
    throw new UserInputError(`${where}: "id" must be a string or number`);
  return { tokens: tokens as string[], activations: activations as number[], id: String(id ?? defaultId) };
}

/**
 * Splits records by interleaving (even positions, odd positions) so explanation and scoring draw from the
 * whole range of top activations and never share a window.
 */
export function interleave<T>(items: readonly T[]): { even: T[]; odd: T[] } {
  return {
    even: items.filter((_, i) => i % 2 === 0),
    odd: items.filter((_, i) => i % 2 === 1),
  };
}

/** Explanation set and scoring set, the scoring set with top and random 1:1. */
export function splitForScoring(records: UnitRecords): { explain: UnitRecords; score: UnitRecords } {
  const top = interleave(records.top);
  const random = interleave(records.random);
  const n = Math.min(top.odd.length, random.odd.length);
  return {
    explain: { top: top.even, random: random.even },
    score: { top: top.odd.slice(0, n), random: random.odd.slice(0, n) },
  };
}
