import { UserInputError } from '@loupe/common';
import type { ActivationDataset } from './activation-dataset.js';

/**
 * The factor that scales vectors to unit mean squared norm, estimated on the first `count` training
 * vectors (SAELens' "expected_average_only_in" idea, with target 1 rather than d_in). A scale makes
 * learning rates and k transfer between hooks whose activations differ in size by orders of magnitude.
 */
export async function estimateActivationScale(dataset: ActivationDataset, count: number): Promise<number> {
  const width = dataset.width;
  let sum = 0;
  let rows = 0;
  for await (const batch of dataset.head(count)) {
    for (let r = 0; r < batch.rows; r++) {
      let norm2 = 0;
      for (let j = 0; j < width; j++) norm2 += batch.data[r * width + j] ** 2;
      sum += norm2;
    }
    rows += batch.rows;
  }
  const meanSquaredNorm = sum / rows;
  if (!(meanSquaredNorm > 0) || !Number.isFinite(meanSquaredNorm)) {
    throw new UserInputError(
      `${dataset.source.location}: cannot normalise activations whose mean squared norm is ${meanSquaredNorm}`,
    );
  }
  return 1 / Math.sqrt(meanSquaredNorm);
}
