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

/**
 * How a unit's records are divided between explaining and scoring:
 * - openai: OpenAI's interleaved splits (automated-interpretability, activations.py): top records dealt
 *   four ways (train, calibration, valid, test), random records three ways (calibration, valid, test),
 *   5 per split. The explainer sees train (top only), candidates are chosen on calibration, and the
 *   score is on valid (top and random 1:1), as their published scores are. The default, so Loupe's
 *   scores are comparable with theirs.
 * - halves: Loupe's earlier split: even positions explain (and choose candidates), odd positions score.
 */
export type RecordSplit = 'openai' | 'halves';
export const RECORD_SPLITS: RecordSplit[] = ['openai', 'halves'];
export const DEFAULT_RECORD_SPLIT: RecordSplit = 'openai';

/** OpenAI's records per split (their n_examples_per_split in the published runs). */
export const OPENAI_RECORDS_PER_SPLIT = 5;
const OPENAI_TOP_SPLITS = ['train', 'calibration', 'valid', 'test'] as const;
const OPENAI_RANDOM_SPLITS = ['calibration', 'valid', 'test'] as const;

/** Which split was used and how many records each part got, for provenance. */
export interface SplitProvenance {
  name: RecordSplit;
  /** openai: top records per split, and random records per split (fewer when the unit has fewer). */
  top_per_split?: number;
  random_per_split?: number;
  explain: number;
  select: number;
  score: { top: number; random: number };
  /** Why the default split was not used (a unit with too few top records for OpenAI's). */
  fallback?: string;
}

export interface SplitRecords {
  /** What the explainer sees. */
  explain: UnitRecords;
  /** What candidate explanations are compared on (never the scored records). */
  select: UnitRecords;
  /** The held-out records the reported score is measured on. */
  score: UnitRecords;
  provenance: SplitProvenance;
}

export function parseRecordSplit(value: string): RecordSplit {
  if ((RECORD_SPLITS as string[]).includes(value)) return value as RecordSplit;
  throw new UserInputError(`unknown record split "${value}": expected one of ${RECORD_SPLITS.join(', ')}`);
}

/** Element `split` of every `stride`, over the first stride × perSplit items (their get_slices_for_splits). */
function strided<T>(items: readonly T[], split: number, stride: number, perSplit: number): T[] {
  return items.slice(0, stride * perSplit).filter((_, i) => i % stride === split);
}

/**
 * OpenAI's split. With fewer than 20 top or 15 random records, each split gets what an even deal allows
 * (their rule when n_examples_per_split is unset), top and random counted separately so a short random
 * sample does not starve the top side.
 */
function openAiSplit(records: UnitRecords): SplitRecords {
  const topN = Math.min(OPENAI_RECORDS_PER_SPLIT, Math.floor(records.top.length / OPENAI_TOP_SPLITS.length));
  if (topN < 1)
    throw new UserInputError(
      `the openai record split needs at least ${OPENAI_TOP_SPLITS.length} top records (train, calibration, valid, test), got ${records.top.length}; use the halves split for fewer`,
    );
  const randomN = Math.min(topN, Math.floor(records.random.length / OPENAI_RANDOM_SPLITS.length));
  const top = (name: (typeof OPENAI_TOP_SPLITS)[number]) =>
    strided(records.top, OPENAI_TOP_SPLITS.indexOf(name), OPENAI_TOP_SPLITS.length, topN);
  const random = (name: (typeof OPENAI_RANDOM_SPLITS)[number]) =>
    strided(records.random, OPENAI_RANDOM_SPLITS.indexOf(name), OPENAI_RANDOM_SPLITS.length, randomN);
  const split = {
    explain: { top: top('train'), random: [] },
    select: { top: top('calibration'), random: random('calibration') },
    score: { top: top('valid'), random: random('valid') },
  };
  return {
    ...split,
    provenance: {
      name: 'openai',
      top_per_split: topN,
      random_per_split: randomN,
      explain: split.explain.top.length,
      select: split.select.top.length + split.select.random.length,
      score: { top: split.score.top.length, random: split.score.random.length },
    },
  };
}

function halvesSplit(records: UnitRecords): SplitRecords {
  if (records.top.length < 2)
    throw new UserInputError(
      `explaining needs at least 2 top records (half explain, half score), got ${records.top.length}`,
    );
  const top = interleave(records.top);
  const random = interleave(records.random);
  const n = Math.min(top.odd.length, random.odd.length);
  const explain = { top: top.even, random: random.even };
  const score = { top: top.odd.slice(0, n), random: random.odd.slice(0, n) };
  return {
    explain,
    select: explain,
    score,
    provenance: {
      name: 'halves',
      explain: explain.top.length + explain.random.length,
      select: explain.top.length + explain.random.length,
      score: { top: score.top.length, random: score.random.length },
    },
  };
}

/**
 * The records for explaining, choosing and scoring under a split. Unnamed, OpenAI's, except for a unit
 * with fewer top records than it needs (a rarely firing feature), which gets the halves split with the
 * reason in its provenance rather than failing; a split asked for by name is that split or an error.
 */
export function splitRecords(records: UnitRecords, split?: RecordSplit): SplitRecords {
  if (split === undefined && records.top.length < OPENAI_TOP_SPLITS.length) {
    const halves = halvesSplit(records);
    const fallback = `${records.top.length} top records: too few for the openai split (needs ${OPENAI_TOP_SPLITS.length})`;
    return { ...halves, provenance: { ...halves.provenance, fallback } };
  }
  return (split ?? DEFAULT_RECORD_SPLIT) === 'openai' ? openAiSplit(records) : halvesSplit(records);
}

/**
 * Explanation set and scoring set under a split (OpenAI's by default: train and valid). Kept for callers
 * that need only the two; `splitRecords` also gives the selection set and the provenance.
 */
export function splitForScoring(
  records: UnitRecords,
  split?: RecordSplit,
): { explain: UnitRecords; score: UnitRecords; provenance: SplitProvenance } {
  const { explain, score, provenance } = splitRecords(records, split);
  return { explain, score, provenance };
}

/**
 * Every record the explainer did not see under a split: for detection and fuzzing, which sample their own
 * examples (delphi draws 50 + 50) and so want the widest held-out pool, not only the simulation's valid
 * records. Under OpenAI's split: all top records but train, and every random record.
 */
export function heldOutRecords(
  records: UnitRecords,
  split?: RecordSplit,
): { records: UnitRecords; provenance: SplitProvenance } {
  const { explain, provenance } = splitRecords(records, split);
  // by identity: ids need not be unique across the two sides of a user's file
  const seen = new Set<ActivationRecord>([...explain.top, ...explain.random]);
  return {
    records: {
      top: records.top.filter((r) => !seen.has(r)),
      random: records.random.filter((r) => !seen.has(r)),
    },
    provenance,
  };
}
