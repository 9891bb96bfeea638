import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '@loupe/common';
import { randomDictionary, SparseMixSource } from '@loupe/sae/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/process.js';

// `loupe sae train` killed with SIGKILL after its first checkpoint, then rerun with the same command: it
// must resume and write a sae_weights.safetensors byte-identical to an uninterrupted run's.
const D = 32;
// two threads: resume must be exact where ONNX Runtime splits work across threads too
const env = { LOUPE_DEVICE: 'cpu', LOUPE_THREADS: '2' };

let scratch: string;
let vectors: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-resume-'));
  vectors = path.join(scratch, 'vectors.safetensors');
  const rows = 8192;
  const mix = { activeProbability: 4 / 128, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 };
  const data = new SparseMixSource(randomDictionary(D, 128, 11), mix, 12).batch(rows);
  await writeSafetensors(vectors, [{ name: 'activations', dtype: 'F32', shape: [rows, D], data }]);
});

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

function trainArgs(out: string, extra: string[] = []): string[] {
  return [
    'sae',
    'train',
    '--activations',
    vectors,
    '--width',
    '256',
    '--k',
    '8',
    '--steps',
    '400',
    '--batch',
    '512',
    '--lr',
    '3e-3',
    '--seed',
    '5',
    '--shuffle-buffer',
    '4096',
    '--normalize',
    '--normalize-vectors',
    '2048',
    '--dead-window',
    '20000',
    '--checkpoint-every',
    '40',
    '--out',
    out,
    ...extra,
  ];
}

/** Starts the CLI and SIGKILLs it as soon as a checkpoint file exists; resolves with how it ended. */
async function killAfterFirstCheckpoint(
  out: string,
): Promise<{ signal: string | null; checkpoints: string[] }> {
  const child = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'services/cli/dist/main.js'), ...trainArgs(out)],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  child.stderr.resume();
  const exited = new Promise<string | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  let running = true;
  void exited.then(() => {
    running = false;
  });
  const dir = path.join(out, 'checkpoints');
  let checkpoints: string[] = [];
  while (running) {
    checkpoints = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) =>
      f.endsWith('.safetensors'),
    );
    if (checkpoints.length > 0) {
      child.kill('SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { signal: await exited, checkpoints };
}

describe('loupe sae train after kill -9', () => {
  it('resumes from its checkpoint and writes the same bytes as an uninterrupted run', async () => {
    const straightOut = path.join(scratch, 'straight');
    const straight = await runCli(trainArgs(straightOut), env);
    expect(straight.code, straight.stderr).toBe(0);
    const summary = JSON.parse(straight.stdout);
    expect(summary.resumedFrom).toBe(0);
    expect(summary.denseThreshold).toBe(0.1);

    const out = path.join(scratch, 'killed');
    const killed = await killAfterFirstCheckpoint(out);
    expect(killed.signal).toBe('SIGKILL');
    // killed mid-run: a checkpoint exists, the weights do not
    expect(killed.checkpoints.length).toBeGreaterThan(0);
    await expect(fs.access(path.join(out, 'sae_weights.safetensors'))).rejects.toThrow();

    const resumed = await runCli(trainArgs(out), env);
    expect(resumed.code, resumed.stderr).toBe(0);
    const resumedSummary = JSON.parse(resumed.stdout);
    expect(resumedSummary.resumedFrom).toBeGreaterThan(0);
    expect(resumedSummary.resumedFrom).toBeLessThan(400);
    expect(resumed.stderr).toMatch(/resumed from the checkpoint at step \d+/);
    const [a, b] = await Promise.all([
      fs.readFile(path.join(straightOut, 'sae_weights.safetensors')),
      fs.readFile(path.join(out, 'sae_weights.safetensors')),
    ]);
    expect(b.equals(a)).toBe(true);
    expect(resumedSummary.loss).toBe(summary.loss);
    expect(resumedSummary.deadFraction).toBe(summary.deadFraction);

    // other settings against those checkpoints: a clear refusal, not a silent restart
    await fs.rm(path.join(out, 'sae_weights.safetensors'));
    await fs.rm(path.join(out, 'cfg.json'));
    const other = await runCli(
      trainArgs(out).map((v) => (v === '8' ? '9' : v)),
      env,
    );
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/different settings or data.*--force/);
  }, 120_000);
});
