import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { convertCheckpoint } from '@loupe/model';
import { ensureFixture, type FixtureSpec } from '../fixtures/index.js';

/** Generates (once) a fixture checkpoint and converts it into a fresh temporary model folder. */
export async function convertedFixture(
  spec: FixtureSpec,
): Promise<{ checkpointDir: string; modelDir: string }> {
  const checkpointDir = await ensureFixture(spec);
  const modelDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-model-')), spec.name);
  await convertCheckpoint(checkpointDir, modelDir);
  return { checkpointDir, modelDir };
}

/** Largest |a - b| over two equally long arrays; fails loudly on a length mismatch. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return max;
}

/** Concatenates per-position rows into one row-major array (the runtime's layout). */
export function flatten(rows: ArrayLike<number>[]): Float64Array {
  const width = rows[0]?.length ?? 0;
  const out = new Float64Array(rows.length * width);
  for (const [i, row] of rows.entries()) out.set(Array.from(row), i * width);
  return out;
}
