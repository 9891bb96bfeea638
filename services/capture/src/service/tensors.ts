import type { Tensor } from '@loupe/common/grpc';

/** [rows, width] float32 → wire tensor, sharing the array's bytes (little-endian on every host we run). */
export function toWireTensor(values: Float32Array, rows: number, shape?: number[]): Tensor {
  return {
    shape: shape ?? [rows, rows === 0 ? 0 : values.length / rows],
    dtype: 'float32',
    data: Buffer.from(values.buffer, values.byteOffset, values.byteLength),
  };
}
