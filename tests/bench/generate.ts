import os from 'node:os';
import path from 'node:path';
import { convertCheckpoint, Gpt2Runner, generatePair, RecomputingDecoder } from '@loupe/model';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { fmt, printTable } from './measure.js';

const PROMPT_TOKENS = 16;
const NEW_TOKENS = 256;
const FORWARD_SEQ = 128;

/**
 * Generation on the GPT-2-small-shaped model: a steered and an unsteered continuation of 256 new
 * tokens each (two rows, as `steer` runs them) over the key/value cache, against a plain forward pass's
 * tokens/s on two rows of 128 tokens (the throughput generation could reach if every step were as
 * efficient as a batched forward), and against recomputing every position each step (what Generate did
 * before the cache; measured over 32 new tokens, its cost grows with the square of the length).
 */
export async function generateBench(): Promise<void> {
  const checkpoint = await ensureFixture(FIXTURES.gpt2Small);
  const modelDir = path.join(os.tmpdir(), 'loupe-bench-gpt2-small');
  await convertCheckpoint(checkpoint, modelDir, { force: true });
  const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 0 });
  const { dims } = runner.manifest;
  const prompt = Array.from({ length: PROMPT_TOKENS }, (_, t) => (t * 911 + 7) % dims.vocabSize);
  const limits = {
    nPositions: dims.nPositions,
    vocabSize: dims.vocabSize,
    endOfTextId: null,
    maxNewTokens: 1024,
  };
  const options = (maxTokens: number) => ({
    maxTokens,
    temperature: 1,
    topK: 0,
    seed: 1,
    steering: [],
    stopAtEndOfText: false,
  });
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const time = async (fn: () => Promise<unknown>, runs: number) => {
    await fn(); // warm-up: sessions open, arenas grow
    const seconds: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      await fn();
      seconds.push((performance.now() - started) / 1000);
    }
    return median(seconds);
  };

  const forwardIds = Array.from({ length: 2 }, (_, b) =>
    Array.from({ length: FORWARD_SEQ }, (_, t) => (b * 1000 + t * 37) % dims.vocabSize),
  );
  const forward = await time(
    () => runner.forward(forwardIds.map((ids) => ({ ids, hooks: [], logits: true }))),
    5,
  );
  const forwardRate = (2 * FORWARD_SEQ) / forward;
  const cached = await time(
    () => generatePair((rows) => runner.decoder(rows), prompt, options(NEW_TOKENS), limits),
    3,
  );
  const cachedRate = (2 * NEW_TOKENS) / cached;
  const short = 32;
  const recomputed = await time(
    () =>
      generatePair(
        async (rows) => new RecomputingDecoder((requests) => runner.forward(requests), rows, dims.vocabSize),
        prompt,
        options(short),
        limits,
      ),
    1,
  );
  const recomputedRate = (2 * short) / recomputed;
  await runner.close();
  printTable('Generate (GPT-2-small shape, CPU)', [
    {
      measure: `Generate, ${NEW_TOKENS} new tokens × 2 rows, KV cache (tokens/s)`,
      value: fmt(cachedRate, 1),
      reference: `plain forward 2 × ${FORWARD_SEQ} tokens: ${fmt(forwardRate, 1)} tokens/s`,
      ratio: `${fmt((100 * cachedRate) / forwardRate)}%`,
    },
    {
      measure: `Generate, ${short} new tokens × 2 rows, recomputing (tokens/s)`,
      value: fmt(recomputedRate, 1),
      reference: `KV cache: ${fmt(cachedRate, 1)} tokens/s`,
      ratio: `${fmt(cachedRate / recomputedRate, 1)}× slower`,
    },
  ]);
}
