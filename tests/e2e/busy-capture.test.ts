import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FixtureSpec } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { type CaptureApi, captureClient } from '../support/grpc.js';
import { healthClient, until } from '../support/health.js';
import { convertedFixture } from '../support/model.js';
import { freePort, type RunningProcess, startProcess } from '../support/process.js';

// A capture service busy with long forward passes still answers its health check and ModelInfo at
// once (issue 15: Kubernetes restarts a pod whose health check stalls). The passes run on ONNX Runtime
// session threads; before, each one held the service's event loop for its whole length.

/** Wide enough that one 1,024-token pass takes seconds on one thread (~34 GFLOP), with a small fixture. */
const WIDE: FixtureSpec = {
  name: 'wide',
  seed: 5,
  nLayer: 4,
  nEmbd: 512,
  nHead: 8,
  nPositions: 1024,
  vocab: 'gpt2',
  dtype: 'F32',
  initStd: 0.02,
};
const BOUND_MS = 100;
const PASSES = 3;

let db: TestDatabase;
let service: RunningProcess;
let capture: CaptureApi;
let health: ReturnType<typeof healthClient>;

beforeAll(async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-busy-'));
  const { modelDir } = await convertedFixture(WIDE);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', WIDE.name));
  const address = `127.0.0.1:${await freePort()}`;
  db = await startTestDatabase();
  service = startProcess('services/capture/dist/main.js', {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: WIDE.name,
    LOUPE_CAPTURE_ADDR: address,
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    // one request per pass: PASSES passes back to back
    LOUPE_MAX_BATCH_TOKENS: String(WIDE.nPositions),
    ...databaseEnv(db),
  });
  capture = await captureClient(address);
  health = healthClient(address);
  await until(
    () => health.check(),
    (h) => h.status === 'SERVING',
    'capture health',
  );
  // opens the trunk session, so what follows times passes, not loading
  await capture.Activations({ ids: { ids: [1, 2, 3] }, hooks: ['blocks.0.hook_resid_post'] });
}, 300_000);

afterAll(async () => {
  health?.close();
  capture?.close();
  await service?.stop();
  await db?.stop();
});

/** The q-quantile of `values` (nearest rank). */
function quantile(values: number[], q: number): number {
  if (values.length === 0) throw new Error('no probe ran during the passes');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function timed<T>(call: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await call();
  return { ms: performance.now() - start, value };
}

describe('capture service during long forward passes', () => {
  it(`answers the health check and ModelInfo within ${BOUND_MS} ms (median)`, async () => {
    const hooks = ['blocks.3.hook_resid_post'];
    let busy = true;
    const burstStart = performance.now();
    const burst = Promise.all(
      Array.from({ length: PASSES }, (_, r) =>
        capture.Activations({
          ids: { ids: Array.from({ length: WIDE.nPositions }, (_, t) => (r * 7919 + t * 31) % 50257) },
          hooks,
        }),
      ),
    ).finally(() => {
      busy = false;
    });
    const healthMs: number[] = [];
    const infoMs: number[] = [];
    // probes start once the first pass has surely begun (the batcher waits its 2 ms window first)
    await new Promise((r) => setTimeout(r, 200));
    // only probes sent while the passes still ran say anything about them
    while (busy) {
      const check = await timed(() => health.check());
      expect(check.value.status).toBe('SERVING');
      healthMs.push(check.ms);
      if (!busy) break;
      const info = await timed(() => capture.ModelInfo({}));
      expect(info.value.name).toBe(WIDE.name);
      infoMs.push(info.ms);
      await new Promise((r) => setTimeout(r, 50));
    }
    const answers = await burst;
    const burstMs = performance.now() - burstStart;
    for (const answer of answers) expect(answer.activations[hooks[0]].shape).toEqual([WIDE.nPositions, 512]);
    const report = {
      burstMs: Math.round(burstMs),
      health: healthMs.map(Math.round),
      modelInfo: infoMs.map(Math.round),
    };
    const passMs = burstMs / PASSES;
    // The typical probe (the median) within the bound: the machine's two cores are shared by the
    // pass's thread and every other test process, so under load a probe can lose the CPU for a few
    // scheduler slices. No probe may wait half a pass, which is what a loop held by the pass produces
    // (on the code before session threads, the first probe waited for all three passes, 3-4 s).
    for (const [what, ms] of [
      ['health', healthMs],
      ['ModelInfo', infoMs],
    ] as const) {
      expect(quantile(ms, 0.5), `${what} median: ${JSON.stringify(report)}`).toBeLessThanOrEqual(BOUND_MS);
      expect(Math.max(...ms), `${what} max: ${JSON.stringify(report)}`).toBeLessThan(passMs / 2);
    }
    // the passes were long enough for the bound to mean something: several probes ran during them
    expect(infoMs.length, JSON.stringify(report)).toBeGreaterThanOrEqual(5);
  }, 300_000);
});
