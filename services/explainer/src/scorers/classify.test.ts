import { afterEach, describe, expect, it } from 'vitest';
import { type LlmServer, startLlmServer } from '../../../../tests/support/llm-server.js';
import { LlmClient } from '../llm/client.js';
import { syntheticUnit } from '../synthetic/units.js';
import { balancedAccuracy } from './balanced-accuracy.js';
import { classificationScore, fuzzingExamples } from './classify.js';
import { DELPHI_DEFAULTS, delphiSample, fuzzHighlights, incorrectHighlightCount } from './delphi-sampling.js';
import { BaselineJudge, LlmJudge, readAnswers, renderExample } from './judge.js';

let server: LlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('balanced accuracy', () => {
  it('is the mean of the true-positive and true-negative rates (hand-computed)', () => {
    // positives: 3 of 4 right (0.75); negatives: 1 of 2 right (0.5) → 0.625
    const judged = [
      ...[true, true, true, false].map((answer) => ({ label: true, answer })),
      ...[false, true].map((answer) => ({ label: false, answer })),
    ];
    expect(balancedAccuracy(judged).value).toBeCloseTo(0.625, 15);
    expect(balancedAccuracy([{ label: true, answer: true }]).value).toBeNull();
  });
});

describe("delphi's sampling", () => {
  // 100 activating windows of 40 tokens whose peaks are 1…100 (at a position that varies), 60 silent ones
  const window = (id: string, peak: number, at: number) => ({
    id,
    tokens: Array.from({ length: 40 }, (_, i) => ` t${i}`),
    activations: Array.from({ length: 40 }, (_, i) =>
      i === at ? peak : peak > 0 && i === at + 1 ? peak / 2 : 0,
    ),
  });
  const top = Array.from({ length: 100 }, (_, k) => window(`top:${k}`, 100 - k, (k * 7) % 40));
  const random = Array.from({ length: 60 }, (_, k) => window(`random:${k}`, 0, 0));

  it('draws 5 activating examples from each of 10 quantiles and 50 silent ones, 32 tokens each', () => {
    const sample = delphiSample({ top, random }, 3);
    expect(sample.activityThreshold).toBe(0);
    expect(sample.activating).toHaveLength(DELPHI_DEFAULTS.activatingExamples);
    expect(sample.nonActivating).toHaveLength(DELPHI_DEFAULTS.nonActivatingExamples);
    for (let q = 1; q <= 10; q++) {
      const inQuantile = sample.activating.filter((e) => e.quantile === q);
      expect(inQuantile).toHaveLength(5);
      // by hand: peaks sorted ascending, quantile q holds peaks 10(q-1)+1 … 10q
      for (const e of inQuantile) {
        const peak = Math.max(...e.activations);
        expect(peak).toBeGreaterThanOrEqual(10 * (q - 1) + 1);
        expect(peak).toBeLessThanOrEqual(10 * q);
      }
    }
    for (const e of [...sample.activating, ...sample.nonActivating]) expect(e.tokens).toHaveLength(32);
    expect(sample.nonActivating.every((e) => e.recordId.startsWith('random:'))).toBe(true);
    expect(new Set(sample.activating.map((e) => e.recordId)).size).toBe(50);
  });

  it('uses a tenth of the maximum as the threshold when no window is ever silent', () => {
    const dense = [...top, ...random].map((w) => ({ ...w, activations: w.activations.map((a) => a + 0.5) }));
    const sample = delphiSample({ top: dense, random: [] }, 1);
    // by hand: max 100.5 → 10.05; silent windows (0.5 everywhere) and peaks up to 10.5 fall below
    expect(sample.activityThreshold).toBeCloseTo(10.05, 12);
    expect(sample.nonActivating.every((e) => Math.max(...e.activations) <= 10.05)).toBe(true);
  });

  it('fuzzing highlights ≥ 0.3 × the example max, and negatives get the mean active count rounded up', () => {
    const example = (activations: number[]) => ({
      recordId: 'x',
      tokens: activations.map((_, i) => `${i}`),
      activations,
      quantile: 1,
    });
    // max 1: 0.3 and 1 qualify, 0.29 and 0.2 do not
    expect(fuzzHighlights(example([0, 0.2, 0.3, 1, 0.29]), 0.3)).toEqual([2, 3]);
    // active tokens 1 and 2 → mean 1.5 → 2
    expect(incorrectHighlightCount([example([0, 1]), example([1, 1, 0])], 0)).toBe(2);
    const sample = {
      activating: [example([0, 1, 0, 0]), example([2, 2, 0, 0])],
      nonActivating: [{ ...example([0, 0, 0, 0]), quantile: 0 }],
      activityThreshold: 0,
    };
    const [right, other, wrong] = fuzzingExamples(sample, 5, 0.3);
    expect(right).toMatchObject({ label: true, highlighted: [1] });
    expect(other).toMatchObject({ label: true, highlighted: [0, 1] });
    expect(wrong.label).toBe(false);
    expect(wrong.highlighted).toHaveLength(2);
    expect(renderExample({ tokens: ['a', ' b'], highlighted: [1] })).toBe('a<< b>>');
  });
});

describe('detection and fuzzing', () => {
  const unit = syntheticUnit({ seed: 9, firesOn: ' river', records: 10 });

  it('the baseline judge separates a correct explanation from a wrong one', async () => {
    const judge = new BaselineJudge();
    for (const method of ['detection', 'fuzzing'] as const) {
      const right = await classificationScore(method, 'the token "river".', unit, { judge });
      const wrong = await classificationScore(method, 'the token "xylophone".', unit, { judge });
      expect(right.balanced_accuracy).toBeGreaterThan(0.8);
      expect(wrong.balanced_accuracy).toBeCloseTo(0.5, 10);
      expect(right.provenance.judge_model).toBe('baseline-statistical');
    }
  });

  it('asks an LLM in batches and records unreadable batches as failures', async () => {
    let call = 0;
    server = await startLlmServer({
      respond: (r) => {
        const count = (r.lastUser.match(/^Example \d+:/gm) ?? []).length;
        call += 1;
        if (call === 2) return { content: 'I think yes' };
        return { content: JSON.stringify({ answers: Array.from({ length: count }, () => 1) }) };
      },
    });
    const client = new LlmClient({ baseUrl: server.url, model: 'judge', concurrency: 1, timeoutMs: 5000 });
    const report = await classificationScore('detection', 'rivers', unit, {
      judge: new LlmJudge(client),
      batchSize: 4,
      seed: 3,
    });
    // 20 windows (every one sampled: fewer than delphi's 50 + 50) in batches of 4 → 5 calls; the second
    // failed, so 16 examples were judged
    expect(server.requests).toHaveLength(5);
    expect(report.examples).toBe(16);
    expect(report.failures).toEqual([{ batch: 1, reason: expect.stringMatching(/not JSON/) }]);
    // "always yes": every positive right, every negative wrong
    expect(report.balanced_accuracy).toBeCloseTo(0.5, 15);
    expect(report).toMatchObject({ true_positive_rate: 1, true_negative_rate: 0 });
    expect(report.positives + report.negatives).toBe(16);
    expect(report.provenance.sampling).toMatchObject({
      exampleTokens: 32,
      quantiles: 10,
      fuzzThreshold: 0.3,
    });
    // a worked few-shot exchange comes before the question
    const roles = server.requests[0].body.messages.map((m: { role: string }) => m.role);
    expect(roles).toEqual(['system', 'user', 'assistant', 'user']);
    expect(readAnswers('[1,0]', 2)).toEqual({ answers: [true, false] });
    expect(readAnswers('{"answers":[1]}', 2)).toHaveProperty('failure');
  });
});
