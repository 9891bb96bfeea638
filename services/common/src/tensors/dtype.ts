/**
 * Element types as safetensors names them, and the bit-exact float conversions the rest of the code
 * relies on. Conversions go through integer bit patterns rather than DataView so that subnormals,
 * signed zeros, infinities and NaN payloads behave exactly like numpy / torch.
 */
export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const BYTE_SIZES: Readonly<Record<Dtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export const DTYPES: readonly Dtype[] = Object.keys(BYTE_SIZES) as Dtype[];

export function isDtype(value: unknown): value is Dtype {
  return typeof value === 'string' && Object.hasOwn(BYTE_SIZES, value);
}

export function isFloatDtype(d: Dtype): boolean {
  return d === 'F64' || d === 'F32' || d === 'F16' || d === 'BF16';
}

export function dtypeByteSize(d: Dtype): number {
  const size = BYTE_SIZES[d];
  if (size === undefined)
    throw new Error(`unknown dtype "${String(d)}": expected one of ${DTYPES.join(', ')}`);
  return size;
}

function outputFor(length: number, dst: Float32Array | undefined): Float32Array {
  if (dst === undefined) return new Float32Array(length);
  if (dst.length < length) throw new RangeError(`destination holds ${dst.length} values, need ${length}`);
  return dst;
}

export function float16ToFloat32(src: Uint16Array, dst?: Float32Array): Float32Array {
  const out = outputFor(src.length, dst);
  const bits = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) {
      // Inf stays Inf; NaN keeps its payload shifted into the f32 mantissa.
      bits[i] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else if (exp !== 0) {
      bits[i] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    } else if (mant === 0) {
      bits[i] = sign >>> 0;
    } else {
      // Subnormal half: renormalise, since every half subnormal is a normal f32.
      let e = 113;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      bits[i] = (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
    }
  }
  return out;
}

export function float32ToFloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    if (exp === 0xff) {
      // Keep NaN a NaN even when its payload sits only in the bits that get dropped.
      out[i] = mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
      continue;
    }
    const e = exp - 112; // rebias 127 -> 15
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      if (e < -10) {
        // Below half the smallest subnormal (2^-25): rounds to zero.
        out[i] = sign;
        continue;
      }
      const m = mant | 0x800000;
      const shift = 14 - e;
      const half = m >>> shift;
      const rest = m & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      // A carry out of the mantissa lands on the smallest normal, which is the right answer.
      out[i] = sign | (rest > halfway || (rest === halfway && (half & 1) === 1) ? half + 1 : half);
    } else {
      const half = (e << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      // A carry into the exponent is correct too, including overflow to Inf at 0x7c00.
      out[i] = sign | (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1) ? half + 1 : half);
    }
  }
  return out;
}

export function bfloat16ToFloat32(src: Uint16Array, dst?: Float32Array): Float32Array {
  const out = outputFor(src.length, dst);
  const bits = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

export function float32ToBfloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    if ((x & 0x7fffffff) > 0x7f800000) {
      // Set the quiet bit so a NaN whose payload is only in the low half does not become Inf.
      out[i] = (x >>> 16) | 0x40;
      continue;
    }
    // Round to nearest even; the sum stays below 2^32 for every non-NaN input.
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

export type TypedArrayOf =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array
  | BigInt64Array;

/**
 * The natural typed-array view of little-endian bytes of a dtype (F16 and BF16 as their raw 16-bit
 * words). `buffer` must be aligned for the element size, as readers' fresh buffers are.
 */
export function typedView(
  dtype: Dtype,
  buffer: ArrayBufferLike,
  byteOffset = 0,
  byteLength = buffer.byteLength - byteOffset,
): TypedArrayOf {
  const count = byteLength / dtypeByteSize(dtype);
  switch (dtype) {
    case 'F64':
      return new Float64Array(buffer, byteOffset, count);
    case 'F32':
      return new Float32Array(buffer, byteOffset, count);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buffer, byteOffset, count);
    case 'I64':
      return new BigInt64Array(buffer, byteOffset, count);
    case 'I32':
      return new Int32Array(buffer, byteOffset, count);
    case 'I16':
      return new Int16Array(buffer, byteOffset, count);
    case 'I8':
      return new Int8Array(buffer, byteOffset, count);
    default:
      return new Uint8Array(buffer, byteOffset, count);
  }
}
