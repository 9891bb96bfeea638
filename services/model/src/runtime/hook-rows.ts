import type ort from 'onnxruntime-node';

/**
 * Row `row`'s own part of a batched hook output whose text has `n` of the batch's `seq` positions:
 * [batch, seq, ...] → [n, ...] (a view when the row has no padding, the common case in capture), and
 * attention's [batch, head, seq, seq] → [head, n, n]. Masked scores come back as -Infinity, as
 * TransformerLens has them (and `null` in JSON).
 */
export function hookRow(
  tensor: ort.Tensor | undefined,
  row: number,
  seq: number,
  n: number,
  keyed: boolean,
  maskedToInfinity = false,
): Float32Array {
  if (!tensor) throw new Error('onnx runtime returned no tensor for a requested output');
  const data = tensor.data as Float32Array;
  if (!keyed) {
    const width = tensor.dims.slice(2).reduce((a, b) => a * b, 1);
    const start = row * seq * width;
    return n === seq ? data.subarray(start, start + n * width) : data.slice(start, start + n * width);
  }
  const [, heads, queries, keys] = tensor.dims;
  const out = new Float32Array(heads * n * n);
  for (let h = 0; h < heads; h++) {
    for (let q = 0; q < n; q++) {
      const from = ((row * heads + h) * queries + q) * keys;
      out.set(data.subarray(from, from + n), (h * n + q) * n);
    }
  }
  if (maskedToInfinity) for (let i = 0; i < out.length; i++) if (out[i] <= -3.4e38) out[i] = -Infinity;
  return out;
}

/** Row-major values as nested arrays of `shape` (JSON output; -Infinity becomes null there). */
export function toNested(values: ArrayLike<number>, shape: number[]): unknown[] {
  const [outer, ...inner] = shape;
  const stride = inner.reduce((a, b) => a * b, 1);
  return Array.from({ length: outer }, (_, i) =>
    inner.length === 0 ? values[i] : toNested(subarrayOf(values, i * stride, (i + 1) * stride), inner),
  );
}

function subarrayOf(values: ArrayLike<number>, start: number, end: number): ArrayLike<number> {
  return ArrayBuffer.isView(values)
    ? (values as Float32Array).subarray(start, end)
    : Array.prototype.slice.call(values, start, end);
}
