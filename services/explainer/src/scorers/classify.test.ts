import { afterEach, describe, expect, it } from 'vitest';
import { type LlmServer, startLlmServer } from '../../../../tests/support/llm-server.js';
import { LlmClient } from '../llm/client.js';
import { syntheticUnit } from '../synthetic/units.js';
import { balancedAccuracy } from './balanced-accuracy.js';
import { classificationScore, fuzzingExamples } from './classify.js';
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

describe('detection and fuzzing', () => {
  const unit = syntheticUnit({ seed: 9, firesOn: ' river', records: 10 });

  it('fuzzing pairs each firing window with a wrongly highlighted copy', () => {
    const examples = fuzzingExamples(unit, 1);
    expect(examples.length % 2).toBe(0);
    const [right, wrong] = examples;
    expect(right.label).toBe(true);
    expect(right.highlighted?.every((i) => right.tokens[i] === ' river')).toBe(true);
    expect(wrong.highlighted).toHaveLength(right.highlighted?.length ?? -1);
    expect(wrong.highlighted?.some((i) => wrong.tokens[i] === ' river')).toBe(false);
    expect(renderExample({ tokens: ['a', ' b'], highlighted: [1] })).toBe('a<< b>>');
  });

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
    // 20 windows in batches of 4 → 5 calls; the second failed, so 16 examples were judged
    expect(server.requests).toHaveLength(5);
    expect(report.examples).toBe(16);
    expect(report.failures).toEqual([{ batch: 1, reason: expect.stringMatching(/not JSON/) }]);
    // "always yes": every positive right, every negative wrong
    expect(report.balanced_accuracy).toBeCloseTo(0.5, 15);
    expect(readAnswers('[1,0]', 2)).toEqual({ answers: [true, false] });
    expect(readAnswers('{"answers":[1]}', 2)).toHaveProperty('failure');
  });
});
