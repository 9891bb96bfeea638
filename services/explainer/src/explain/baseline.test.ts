import { describe, expect, it } from 'vitest';
import { splitForScoring } from '../records/records.js';
import { scoreExplanation } from '../score/score.js';
import { BaselineSimulator, explanationTerms } from '../simulate/baseline-simulator.js';
import { syntheticUnit } from '../synthetic/units.js';
import { BaselineExplainer } from './baseline.js';
import { baselineExplanation } from './baseline-explainer.js';
import { explainUnit } from './explain-unit.js';

describe('baseline explainer and simulator', () => {
  it('names the token a unit fires on, and that explanation scores high on held-out records', async () => {
    const unit = syntheticUnit({ seed: 1, firesOn: ' river', records: 30 });
    const result = await explainUnit(unit, {
      explainer: new BaselineExplainer(),
      simulator: new BaselineSimulator(),
      seed: 5,
      bootstrapSamples: 200,
    });
    expect(result.explanation).toBe('the token "river".');
    expect(result.explainer_model).toBe('baseline-statistical');
    expect(result.score.provenance).toMatchObject({
      explainer_model: 'baseline-statistical',
      simulator_model: 'baseline-statistical',
      prompt_version: expect.any(String),
      seed: 5,
    });
    // held-out: OpenAI's valid split, every 4th of the first 20 top records from the third, and every
    // 3rd of the first 15 random records from the second
    expect(result.score.provenance.record_ids.top).toEqual(['top:2', 'top:6', 'top:10', 'top:14', 'top:18']);
    expect(result.score.provenance.record_ids.random).toEqual([
      'random:1',
      'random:4',
      'random:7',
      'random:10',
      'random:13',
    ]);
    expect(result.score.provenance.record_split).toMatchObject({
      name: 'openai',
      top_per_split: 5,
      random_per_split: 5,
    });
    expect(result.score.score).toBeGreaterThan(0.9);
    const [lo, hi] = result.score.ci as [number, number];
    expect(lo).toBeLessThanOrEqual(result.score.score as number);
    expect(hi).toBeGreaterThanOrEqual(result.score.score as number);
  });

  it('the halves split scores the odd records, 1:1 top and random', async () => {
    const unit = syntheticUnit({ seed: 1, firesOn: ' river', records: 30 });
    const result = await explainUnit(unit, {
      explainer: new BaselineExplainer(),
      simulator: new BaselineSimulator(),
      split: 'halves',
      bootstrapSamples: 0,
    });
    expect(result.score.provenance.record_ids.top).toEqual(
      unit.top.filter((_, i) => i % 2 === 1).map((r) => r.id),
    );
    expect(result.score.provenance.record_ids.random).toHaveLength(15);
    expect(result.score.provenance.record_split?.name).toBe('halves');
  });

  it('scores a unit whose activations ignore the text near 0', async () => {
    const unit = syntheticUnit({ seed: 2, records: 30 });
    const { explain, score } = splitForScoring(unit, 'halves');
    const explanation = baselineExplanation(explain);
    const report = await scoreExplanation(explanation, score, new BaselineSimulator(), { seed: 1 });
    // 30 windows × 24 tokens of noise: |r| of an unrelated predictor stays well under 0.2
    expect(report.score).not.toBeNull();
    expect(Math.abs(report.score as number)).toBeLessThan(0.2);
  });

  it('names the context when one preceding token dominates', () => {
    const tokens = [' the', ' bank', ' of', ' river', ' bank'];
    const activations = [0, 0, 0, 0, 6];
    const top = Array.from({ length: 4 }, (_, i) => ({ id: `t${i}`, tokens, activations }));
    const random = [{ id: 'r', tokens: [' bank', ' the', ' of'], activations: [0, 0, 0] }];
    const explanation = baselineExplanation({ top, random });
    expect(explanation).toBe('the token "bank", mostly after "river".');
    expect(explanationTerms(explanation)).toEqual({ terms: new Set(['bank']), context: new Set(['river']) });
  });

  it('simulates free-text explanations from their content words', async () => {
    const [outcome] = await new BaselineSimulator().simulate('the word dog', [[' The', ' Dog', ' barked']]);
    expect(outcome).toEqual({ ok: true, values: [0, 10, 0] });
  });

  it('says so when the unit does not fire at all', () => {
    const top = [{ id: 'a', tokens: ['x'], activations: [0] }];
    expect(baselineExplanation({ top, random: [] })).toBe('does not fire on any of the records shown.');
  });
});
