import { Rng } from '@loupe/common';
import { SaeTrainer, TopKTrainer } from '@loupe/sae';
import { interleaved, type MatmulProbe } from './matmul-rate.js';
import { fmt, pct, printTable } from './measure.js';

const D = 768;
const WIDTH = 24_576;
const BATCH = 4096;
const K = 32;

/**
 * SAE training throughput at GPT-2-small width against the dense bound: 6·d·m FLOPs per vector (encoder
 * and decoder forward, and their weight and input gradients) at the matmul rate measured beside it.
 */
export async function saeBench(probe: MatmulProbe): Promise<void> {
  const rng = new Rng(5);
  const batch = rng.normalFloat32(BATCH * D, 0, 1);
  const denseFlopsPerVector = 6 * D * WIDTH;
  const rows = [];
  for (const kernel of ['sparse', 'dense'] as const) {
    const trainer = await TopKTrainer.create(
      { shape: { d: D, m: WIDTH, k: K }, seed: 1, device: 'cpu', intraOpThreads: 0, kernel },
      batch,
      BATCH,
    );
    try {
      const { seconds, rate } = await interleaved(
        probe,
        () => trainer.step(batch, BATCH, 1e-4),
        kernel === 'dense' ? 1 : 3,
      );
      const bound = rate / denseFlopsPerVector;
      rows.push({
        measure: `TopK k=${K}, ${kernel} kernel: training step, batch ${BATCH}`,
        value: `${fmt(BATCH / seconds)} vectors/s (${fmt(seconds, 2)} s/step)`,
        reference: `dense bound at ${fmt(rate / 1e9)} GFLOP/s: ${fmt(bound)} vectors/s`,
        ratio: pct(BATCH / seconds / bound),
      });
    } finally {
      await trainer.release();
    }
  }
  // ReLU-L1 is dense by nature: every latent reaches the decoder and the gradients
  const relu = await SaeTrainer.create(
    {
      shape: { d: D, m: WIDTH },
      architecture: { kind: 'relu', l1: 0.5, l1WarmupSteps: 0 },
      seed: 1,
      device: 'cpu',
      intraOpThreads: 0,
    },
    batch,
    BATCH,
  );
  try {
    const { seconds, rate } = await interleaved(probe, () => relu.step(batch, BATCH, 1e-4), 1);
    const bound = rate / denseFlopsPerVector;
    rows.push({
      measure: `ReLU-L1 (dense): training step, batch ${BATCH}`,
      value: `${fmt(BATCH / seconds)} vectors/s (${fmt(seconds, 2)} s/step)`,
      reference: `dense bound at ${fmt(rate / 1e9)} GFLOP/s: ${fmt(bound)} vectors/s`,
      ratio: pct(BATCH / seconds / bound),
    });
  } finally {
    await relu.release();
  }
  printTable(`SAE training, d=${D}, width ${fmt(WIDTH)}, CPU`, rows);
}
