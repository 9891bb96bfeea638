import { describe, expect, it } from 'vitest';
import { type ActivationRecord, heldOutRecords, splitRecords } from './records.js';

const records = (side: string, n: number): ActivationRecord[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${side}:${i}`, tokens: ['a'], activations: [i] }));
const ids = (list: ActivationRecord[]) => list.map((r) => Number(r.id.split(':')[1]));

describe('record splits', () => {
  it("OpenAI's split deals top records four ways and random three ways, 5 per split", () => {
    // their get_slices_for_splits: split k takes items k, k+stride, … of the first stride × 5
    const split = splitRecords({ top: records('top', 24), random: records('random', 20) }, 'openai');
    expect(ids(split.explain.top)).toEqual([0, 4, 8, 12, 16]);
    expect(split.explain.random).toEqual([]);
    expect(ids(split.select.top)).toEqual([1, 5, 9, 13, 17]);
    expect(ids(split.select.random)).toEqual([0, 3, 6, 9, 12]);
    expect(ids(split.score.top)).toEqual([2, 6, 10, 14, 18]);
    expect(ids(split.score.random)).toEqual([1, 4, 7, 10, 13]);
    expect(split.provenance).toEqual({
      name: 'openai',
      top_per_split: 5,
      random_per_split: 5,
      explain: 5,
      select: 10,
      score: { top: 5, random: 5 },
    });
  });

  it('deals fewer per split when the unit has fewer records, and refuses fewer than 4 top', () => {
    const split = splitRecords({ top: records('top', 9), random: records('random', 4) }, 'openai');
    // 9 top → 2 per split (indices < 8); 4 random → 1 per split
    expect(ids(split.score.top)).toEqual([2, 6]);
    expect(ids(split.score.random)).toEqual([1]);
    expect(split.provenance).toMatchObject({ top_per_split: 2, random_per_split: 1 });
    expect(() => splitRecords({ top: records('top', 3), random: [] }, 'openai')).toThrow(
      /at least 4 top records.*got 3/,
    );
    // unnamed, a unit with 3 top records falls back to halves and says so
    const fallback = splitRecords({ top: records('top', 3), random: records('random', 2) });
    expect(fallback.provenance).toMatchObject({
      name: 'halves',
      fallback: expect.stringMatching(/3 top records/),
    });
    expect(ids(fallback.score.top)).toEqual([1]);
    expect(splitRecords({ top: records('top', 4), random: [] }).provenance.name).toBe('openai');
  });

  it('the halves split explains and selects on even positions and scores odd ones 1:1', () => {
    const split = splitRecords({ top: records('top', 6), random: records('random', 4) }, 'halves');
    expect(ids(split.explain.top)).toEqual([0, 2, 4]);
    expect(split.select).toBe(split.explain);
    expect(ids(split.score.top)).toEqual([1, 3]);
    expect(ids(split.score.random)).toEqual([1, 3]);
  });

  it('held out for detection and fuzzing: every record the explainer did not see', () => {
    const { records: held, provenance } = heldOutRecords({
      top: records('top', 24),
      random: records('random', 20),
    });
    // train is top 0, 4, 8, 12, 16; the rest of the 24 top records and all 20 random ones remain
    expect(ids(held.top)).toEqual([...Array(24).keys()].filter((i) => !(i % 4 === 0 && i < 20)));
    expect(held.random).toHaveLength(20);
    expect(provenance.name).toBe('openai');
  });
});
