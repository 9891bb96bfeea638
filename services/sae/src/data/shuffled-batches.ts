import type { Rng } from '@loupe/common';
import { ShuffleBuffer } from './shuffle-buffer.js';

/** `rows` vectors of the batch's width, row-major; the last batch of an epoch may be short. */
export interface Batch {
  data: Float32Array;
  rows: number;
}

export interface ShuffleSettings {
  width: number;
  batchSize: number;
  /** vectors the shuffle buffer holds at most */
  capacity: number;
  rng: Rng;
  /** called with the buffer once per batch, so tests can watch its size */
  observe?: (buffer: ShuffleBuffer) => void;
}

/**
 * Streams chunks of vectors through a shuffle buffer into batches. Every input vector comes out exactly
 * once: first as the buffer overflows, then as it drains at the end of the input.
 */
export async function* shuffledBatches(
  chunks: AsyncIterable<Float32Array>,
  settings: ShuffleSettings,
): AsyncGenerator<Batch> {
  const { width, batchSize, capacity, rng, observe } = settings;
  const buffer = new ShuffleBuffer(width, capacity, rng);
  let batch = new Float32Array(batchSize * width);
  let rows = 0;
  for await (const chunk of chunks) {
    for (let offset = 0; offset < chunk.length; offset += width) {
      if (!buffer.full) {
        buffer.push(chunk, offset);
        continue;
      }
      buffer.exchange(batch, rows * width, chunk, offset);
      if (++rows === batchSize) {
        observe?.(buffer);
        yield { data: batch, rows };
        batch = new Float32Array(batchSize * width);
        rows = 0;
      }
    }
  }
  while (buffer.size > 0) {
    buffer.take(batch, rows * width);
    if (++rows === batchSize) {
      observe?.(buffer);
      yield { data: batch, rows };
      batch = new Float32Array(batchSize * width);
      rows = 0;
    }
  }
  if (rows > 0) {
    observe?.(buffer);
    yield { data: batch.subarray(0, rows * width), rows };
  }
}
