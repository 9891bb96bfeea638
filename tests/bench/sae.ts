import { Rng } from '@loupe/common';
import { type ArchitectureSettings, SaeTrainer } from '@loupe/sae';
import { interleaved, type MatmulProbe } from './matmul-rate.js';
import { fmt, pct, printTable } from './measure.js';

const D = 768;
const WIDTH = 24_576;
const BATCH = 4096;
const K = 32;

interface ReluRegime {
  name: string;
  kernel: 'auto' | 'dense';
  /** b_enc for every latent (see sparsen); undefined keeps the initialisation's 0 */
  encoderBias?: number;
  rounds: number;
}

/**
 * At initialisation W_enc = W_decᵀ with rows of norm 0.1, so on unit-variance data each pre-activation is
 * about N(0, 0.01) and half fire. b_enc = −0.3 (3σ) leaves about 36 per vector and −0.28 about
 * 70, the L0 range trained ReLU-L1 SAEs sit in (−0.25 gives ~180, busiest vector ~360: past the sparse
 * kernel's k_cap limit of 256, so dense). The data are i.i.d. Gaussian, so the busiest
 * vector is closer to the mean than on real activations; max_active is reported for that reason.
 */
const RELU_REGIMES: ReluRegime[] = [
  { name: 'at initialisation', kernel: 'auto', rounds: 1 },
  { name: 'sparse state b_enc = -0.3', kernel: 'auto', encoderBias: -0.3, rounds: 3 },
  { name: 'sparse state b_enc = -0.28', kernel: 'auto', encoderBias: -0.28, rounds: 3 },
  { name: 'sparse state b_enc = -0.3', kernel: 'dense', encoderBias: -0.3, rounds: 1 },
];

/** Sets every encoder bias, through a snapshot, so the trainer starts from a sparse state. */
function sparsen(trainer: SaeTrainer, bias: number): void {
  const saved = trainer.snapshot();
  saved.tensors.b_enc.fill(bias);
  trainer.restore(saved);
}

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
    const trainer = await SaeTrainer.create(
      {
        shape: { d: D, m: WIDTH },
        architecture: { kind: 'topk', k: K, kernel },
        seed: 1,
        device: 'cpu',
        intraOpThreads: 0,
      },
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
  // The architectures that materialise dense [B, m] activations, beside TopK's sparse kernel: BatchTopK
  // (batch-wide cut), JumpReLU (thresholds) and Matryoshka (BatchTopK plus one decoder pass per nested
  // prefix), built without the warm start, so each is timed with its own selection.
  const others: { name: string; architecture: ArchitectureSettings }[] = [
    { name: `BatchTopK k=${K}`, architecture: { kind: 'batchtopk', k: K } },
    { name: 'JumpReLU', architecture: { kind: 'jumprelu', l0: 0.1, l0WarmupSteps: 0 } },
    { name: `Matryoshka BatchTopK k=${K} (prefixes m/4, m/2)`, architecture: { kind: 'matryoshka', k: K } },
  ];
  for (const other of others) {
    const trainer = await SaeTrainer.create(
      {
        shape: { d: D, m: WIDTH },
        architecture: other.architecture,
        seed: 1,
        device: 'cpu',
        intraOpThreads: 0,
      },
      batch,
      BATCH,
    );
    try {
      const { seconds, rate } = await interleaved(probe, () => trainer.step(batch, BATCH, 1e-4), 1);
      const bound = rate / denseFlopsPerVector;
      rows.push({
        measure: `${other.name}, dense activations: training step, batch ${BATCH}`,
        value: `${fmt(BATCH / seconds)} vectors/s (${fmt(seconds, 2)} s/step)`,
        reference: `dense bound at ${fmt(rate / 1e9)} GFLOP/s: ${fmt(bound)} vectors/s`,
        ratio: pct(BATCH / seconds / bound),
      });
    } finally {
      await trainer.release();
    }
  }
  // ReLU-L1 twice: from its initialisation, where about half the latents fire and the dense kernel is the
  // right one, and from a state prepared to be as sparse as a trained SAE (see reluState), where the
  // trainer switches to the sparse kernel after one dense step.
  for (const regime of RELU_REGIMES) {
    const relu = await SaeTrainer.create(
      {
        shape: { d: D, m: WIDTH },
        architecture: { kind: 'relu', l1: 0.5, l1WarmupSteps: 0, kernel: regime.kernel },
        seed: 1,
        device: 'cpu',
        intraOpThreads: 0,
      },
      batch,
      BATCH,
    );
    try {
      if (regime.encoderBias !== undefined) sparsen(relu, regime.encoderBias);
      const seen: { l0: number; maxActive: number; kernel: string }[] = [];
      const { seconds, rate } = await interleaved(
        probe,
        async () => {
          const kernel = relu.nextKernel.kind;
          const result = await relu.step(batch, BATCH, 1e-4);
          seen.push({ l0: result.l0, maxActive: result.extras.max_active, kernel });
        },
        regime.rounds,
      );
      const timed = seen.slice(1);
      const bound = rate / denseFlopsPerVector;
      const l0 = timed.reduce((a, s) => a + s.l0, 0) / timed.length;
      const most = Math.max(...timed.map((s) => s.maxActive));
      const kernels = [...new Set(timed.map((s) => s.kernel))].join('+');
      rows.push({
        measure: `ReLU-L1, ${regime.name}, ${kernels} kernel (L0 ${fmt(l0)}, busiest vector ${fmt(most)}): training step, batch ${BATCH}`,
        value: `${fmt(BATCH / seconds)} vectors/s (${fmt(seconds, 2)} s/step)`,
        reference: `dense bound at ${fmt(rate / 1e9)} GFLOP/s: ${fmt(bound)} vectors/s`,
        ratio: pct(BATCH / seconds / bound),
      });
    } finally {
      await relu.release();
    }
  }
  printTable(`SAE training, d=${D}, width ${fmt(WIDTH)}, CPU`, rows);
}
