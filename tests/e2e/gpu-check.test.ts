import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runNode } from '../support/process.js';

// `npm run gpu-check` as CI's smoke test: the whole script at small sizes on CPU, so the GPU path's
// steps (conversion, the device-against-CPU check, throughput, SAE steps) cannot rot on machines
// without a GPU. On a GPU machine the same script runs with LOUPE_DEVICE=cuda.
const SCRIPT = path.join(REPO_ROOT, 'tests/dist/gpu/gpu-check.js');

describe('npm run gpu-check', () => {
  it('runs every step on CPU and checks the device against CPU', async () => {
    const { code, stdout, stderr } = await runNode(SCRIPT, [], { LOUPE_DEVICE: 'cpu' });
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/## cpu against CPU: a padded batch/);
    expect(stdout).toMatch(/\| logits +\| 0\.00e\+0 /);
    expect(stdout).toMatch(/capture job .* tok\/s/);
    expect(stdout).toMatch(/SAE topk width 512/);
    expect(stdout).toMatch(/\nok in \d+ s/);
  });

  it('fails, saying why, where CUDA is asked for and cannot load', async () => {
    const { code, stdout, stderr } = await runNode(SCRIPT, [], { LOUPE_DEVICE: 'cuda' });
    // a machine with a working CUDA provider passes instead: then this is no failure to check
    if (code === 0) return expect(stdout).toMatch(/\nok in/);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/CUDA execution provider did not load/);
  });
});
