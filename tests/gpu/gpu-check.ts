import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { blockHook, Rng } from '@loupe/common';
import { convertCheckpoint, Gpt2Runner, neutralControlFeeds, openSession } from '@loupe/model';
import { SaeTrainer } from '@loupe/sae';
import ort from 'onnxruntime-node';
import { captureJobSeconds } from '../bench/capture.js';
import { MatmulProbe } from '../bench/matmul-rate.js';
import { fmt, pct, printTable, type Row } from '../bench/measure.js';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';

// `npm run gpu-check`: the GPU path in one script. On a machine with an NVIDIA GPU (LOUPE_DEVICE=cuda,
// the default here) it converts the GPT-2-small-shaped fixture, checks CUDA's activations and logits
// against CPU's, and prints throughput against the GPU's measured matmul rate. With LOUPE_DEVICE=cpu it
// runs the same steps at small sizes as CI's smoke test, so it cannot rot. It installs nothing: the CUDA
// provider comes with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci` (or the capture-cuda image).
// Exit status 1 when a device result differs from CPU by more than TOLERANCE, or CUDA did not load.

const device = (process.env.LOUPE_DEVICE ?? 'cuda') as 'cpu' | 'cuda';
const small = device === 'cpu' || process.argv.includes('--small');
/** fp32 on both sides; kernels differ (cuBLAS vs MLAS accumulation order, fused attention) */
const TOLERANCE = 1e-3;
const sizes = small
  ? { fixture: FIXTURES.tiny, batches: [1, 4], seq: 32, jobTokens: 2048, saeWidth: 512, saeBatch: 256 }
  : {
      fixture: FIXTURES.gpt2Small,
      batches: [1, 8, 32],
      seq: 128,
      jobTokens: 65_536,
      saeWidth: 24_576,
      saeBatch: 4096,
    };

const started = Date.now();
console.log(`# gpu-check: LOUPE_DEVICE=${device}${small ? ', small sizes' : ''}, node ${process.version}`);
const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-gpu-check-'));
const modelDir = path.join(scratch, 'model');
await convertCheckpoint(await ensureFixture(sizes.fixture), modelDir, { force: true });
const cpu = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 0 });
const onDevice = await Gpt2Runner.load(modelDir, { device, intraOpThreads: 0 });
const provider = await onDevice.provider();
if (provider !== device) {
  console.error(`asked for ${device}, ONNX Runtime runs ${provider}`);
  process.exit(1);
}
const { dims } = cpu.manifest;
let failed = false;

// 1. exactness: a padded batch (rows of different lengths), every layer's residual and MLP hooks, logits
const hooks = Array.from({ length: dims.nLayer }, (_, l) => [
  blockHook(l, 'hook_resid_pre'),
  blockHook(l, 'mlp.hook_post'),
  blockHook(l, 'hook_resid_post'),
]).flat();
const rows = [sizes.seq, Math.floor(sizes.seq / 2), 3].map((length, r) =>
  Array.from({ length }, (_, t) => (r * 7919 + t * 104_729) % dims.vocabSize),
);
const request = rows.map((ids) => ({ ids, hooks, logits: true }));
const [expected, got] = [await cpu.forward(request), await onDevice.forward(request)];
const worst = new Map<string, number>();
const note = (name: string, a: Float32Array, b: Float32Array) => {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  worst.set(name, Math.max(worst.get(name) ?? 0, max));
};
for (const [r, out] of expected.entries()) {
  for (const hook of hooks) note(hook, out.hooks.get(hook)!, got[r].hooks.get(hook)!);
  note('logits', out.logits!, got[r].logits!);
}
const exactRows: Row[] = [...worst].map(([name, err]) => ({
  measure: name,
  value: err.toExponential(2),
  reference: `CPU, max abs error ≤ ${TOLERANCE}`,
  ratio: err <= TOLERANCE ? 'ok' : 'FAIL',
}));
failed ||= [...worst.values()].some((e) => !(e <= TOLERANCE));
printTable(
  `${device} against CPU: a padded batch of ${rows.map((r) => r.length).join(', ')} tokens`,
  exactRows,
);

// 2. throughput against the device's matmul rate
const probe = await MatmulProbe.create(1024, 768, 3072, device);
const rate = await probe.once();
const perf: Row[] = [
  { measure: 'matmul 1024×768·768×3072', value: `${fmt(rate / 1e9)} GFLOP/s`, reference: 'ORT', ratio: '' },
];
const raw = await openSession(path.join(modelDir, 'model.onnx'), { device, intraOpThreads: 0 });
const time = async (fn: () => Promise<unknown>, rounds = 3) => {
  await fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) await fn();
  return Number(process.hrtime.bigint() - start) / 1e9 / rounds;
};
for (const batch of sizes.batches) {
  const ids = Array.from({ length: batch * sizes.seq }, (_, i) => (i * 37) % dims.vocabSize);
  const feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [batch, sizes.seq]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [batch, sizes.seq]),
    ...neutralControlFeeds(dims, batch),
  };
  const tokens = batch * sizes.seq;
  const rawSeconds = await time(() => raw.session.run(feeds, ['logits']));
  const activations = await time(() =>
    onDevice.forward(
      Array.from({ length: batch }, (_, b) => ({
        ids: ids.slice(b * sizes.seq, (b + 1) * sizes.seq),
        hooks,
        logits: true,
      })),
    ),
  );
  perf.push(
    {
      measure: `raw forward, batch ${batch} × ${sizes.seq}`,
      value: `${fmt(tokens / rawSeconds)} tok/s`,
      reference: 'logits only',
      ratio: '',
    },
    {
      measure: `Activations (${hooks.length} hooks + logits), batch ${batch}`,
      value: `${fmt(tokens / activations)} tok/s`,
      reference: 'raw forward',
      ratio: pct(rawSeconds / activations),
    },
  );
}
await raw.session.release();
const job = await captureJobSeconds(
  onDevice,
  [blockHook(0, 'mlp.hook_post'), blockHook(0, 'hook_resid_pre')],
  sizes.jobTokens,
);
perf.push({
  measure: `capture job (layer 0: mlp.hook_post + resid_pre), ${job.tokens} tokens`,
  value: `${fmt(job.tokens / job.seconds)} tok/s`,
  reference: 'end to end: shards, records, database',
  ratio: '',
});

// 3. SAE training steps (weights and Adam moments cross to the host each step: the host round trip)
const rng = new Rng(5);
const batchVectors = rng.normalFloat32(sizes.saeBatch * dims.dModel, 0, 1);
for (const architecture of [
  { kind: 'topk' as const, k: 32 },
  { kind: 'relu' as const, l1: 0.5, l1WarmupSteps: 0 },
]) {
  const trainer = await SaeTrainer.create(
    { shape: { d: dims.dModel, m: sizes.saeWidth }, architecture, seed: 1, device, intraOpThreads: 0 },
    batchVectors,
    sizes.saeBatch,
  );
  try {
    const seconds = await time(() => trainer.step(batchVectors, sizes.saeBatch, 1e-4));
    const bound = rate / (6 * dims.dModel * sizes.saeWidth);
    perf.push({
      measure: `SAE ${architecture.kind} width ${sizes.saeWidth}, batch ${sizes.saeBatch}, host round trip`,
      value: `${fmt(sizes.saeBatch / seconds)} vectors/s`,
      reference: `dense bound ${fmt(bound)} vectors/s`,
      ratio: pct(sizes.saeBatch / seconds / bound),
    });
  } finally {
    await trainer.release();
  }
}
await probe.release();
printTable(`${device} throughput (${provider})`, perf);
await cpu.close();
await onDevice.close();
await fs.rm(scratch, { recursive: true, force: true });
console.log(`\n${failed ? 'FAILED' : 'ok'} in ${fmt((Date.now() - started) / 1000)} s`);
process.exit(failed ? 1 : 0);
