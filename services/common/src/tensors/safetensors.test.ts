import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bfloat16ToFloat32,
  type Dtype,
  dtypeByteSize,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
} from './dtype.js';
import { SafetensorsReader, writeSafetensors } from './safetensors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loupe-safetensors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function f32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}
function bitsOf(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}
const toHalf = (x: number) => float32ToFloat16(new Float32Array([x]))[0];
const fromHalf = (h: number) => float16ToFloat32(new Uint16Array([h]))[0];
const toBf = (x: number) => float32ToBfloat16(new Float32Array([x]))[0];
const fromBf = (h: number) => bfloat16ToFloat32(new Uint16Array([h]))[0];

describe('float16', () => {
  it('converts known values both ways', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [Number.POSITIVE_INFINITY, 0x7c00],
      [Number.NEGATIVE_INFINITY, 0xfc00],
      [0, 0x0000],
    ];
    for (const [value, half] of cases) {
      expect(toHalf(value), `to half ${value}`).toBe(half);
      expect(fromHalf(half), `from half 0x${half.toString(16)}`).toBe(value);
    }
  });

  it('keeps the sign of zero and NaN-ness', () => {
    expect(toHalf(-0)).toBe(0x8000);
    expect(Object.is(fromHalf(0x8000), -0)).toBe(true);
    expect(Number.isNaN(fromHalf(0x7e00))).toBe(true);
    expect(Number.isNaN(fromHalf(0x7c01))).toBe(true);
    const nanHalf = toHalf(Number.NaN);
    expect(nanHalf & 0x7c00).toBe(0x7c00);
    expect(nanHalf & 0x3ff).not.toBe(0);
    // A NaN whose payload lives only in the bits that are dropped must stay NaN.
    expect(Number.isNaN(fromHalf(toHalf(f32(0x7f800001))))).toBe(true);
  });

  it('rounds to nearest even', () => {
    const ulp = 2 ** -10;
    expect(toHalf(1 + ulp / 2)).toBe(0x3c00); // tie, even stays
    expect(toHalf(1 + ulp + ulp / 2)).toBe(0x3c02); // tie, odd rounds up
    expect(toHalf(1 + ulp / 2 + 2 ** -20)).toBe(0x3c01); // just past the tie
    expect(toHalf(65519)).toBe(0x7bff); // below the overflow tie
    expect(toHalf(65520)).toBe(0x7c00); // tie at the top rounds to Inf
    expect(toHalf(2 ** -25)).toBe(0x0000); // tie with zero, even is zero
    expect(toHalf(2 ** -25 * 1.0001)).toBe(0x0001);
    expect(toHalf(3 * 2 ** -25)).toBe(0x0002); // subnormal tie rounds to even
    expect(toHalf(2 ** -26)).toBe(0x0000);
    expect(toHalf(1e-10)).toBe(0x0000);
    expect(toHalf(1e10)).toBe(0x7c00);
    expect(toHalf(0.1)).toBe(0x2e66);
  });

  it('round-trips every half value exactly', () => {
    const all = new Uint16Array(65536);
    for (let i = 0; i < all.length; i++) all[i] = i;
    const back = float32ToFloat16(float16ToFloat32(all));
    for (let i = 0; i < all.length; i++) {
      const nan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (!nan && back[i] !== i)
        throw new Error(`0x${i.toString(16)} came back as 0x${back[i].toString(16)}`);
    }
  });
});

describe('bfloat16', () => {
  it('converts known values both ways', () => {
    expect(toBf(1)).toBe(0x3f80);
    expect(toBf(-2)).toBe(0xc000);
    expect(toBf(Number.POSITIVE_INFINITY)).toBe(0x7f80);
    expect(toBf(-0)).toBe(0x8000);
    expect(fromBf(0x3f80)).toBe(1);
    expect(fromBf(0x4049)).toBe(3.140625);
    expect(Object.is(fromBf(0x8000), -0)).toBe(true);
    expect(Number.isNaN(fromBf(toBf(Number.NaN)))).toBe(true);
    expect(Number.isNaN(fromBf(toBf(f32(0x7f800001))))).toBe(true);
  });

  it('rounds to nearest even', () => {
    expect(toBf(f32(0x3f808000))).toBe(0x3f80); // tie, even stays
    expect(toBf(f32(0x3f818000))).toBe(0x3f82); // tie, odd rounds up
    expect(toBf(f32(0x3f808001))).toBe(0x3f81);
    expect(toBf(f32(0x3f807fff))).toBe(0x3f80);
    expect(toBf(f32(0x7f7fffff))).toBe(0x7f80); // max float rounds up to Inf
    expect(toBf(Math.PI)).toBe(0x4049);
    expect(bitsOf(fromBf(toBf(f32(0x00000001))))).toBe(0); // tiny subnormal ties to zero
  });
});

const ALL_DTYPES: Dtype[] = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];

function sampleData(dtype: Dtype, n: number): ArrayBufferView {
  const ramp = Array.from({ length: n }, (_, i) => i - Math.floor(n / 2));
  switch (dtype) {
    case 'F64':
      return Float64Array.from(ramp, (v) => v * 0.1);
    case 'F32':
      return Float32Array.from(ramp, (v) => v * 0.25);
    case 'F16':
      return float32ToFloat16(Float32Array.from(ramp, (v) => v * 0.5));
    case 'BF16':
      return float32ToBfloat16(Float32Array.from(ramp, (v) => v * 0.5));
    case 'I64':
      return BigInt64Array.from(ramp, (v) => BigInt(v) * 10_000_000_000n);
    case 'I32':
      return Int32Array.from(ramp, (v) => v * 100_000);
    case 'I16':
      return Int16Array.from(ramp, (v) => v * 100);
    case 'I8':
      return Int8Array.from(ramp);
    case 'U8':
      return Uint8Array.from(ramp, (v) => v + 100);
    case 'BOOL':
      return Uint8Array.from(ramp, (v) => (v > 0 ? 1 : 0));
  }
}

function bytesOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

describe('safetensors round trip', () => {
  it('writes and reads every dtype, lazy and eager, with metadata', async () => {
    const path = join(dir, 'all.safetensors');
    const shape = [2, 3];
    const tensors = ALL_DTYPES.map((dtype, i) => {
      const data = sampleData(dtype, 6);
      return { name: `t.${dtype}`, dtype, shape, data: i % 2 === 0 ? data : () => Promise.resolve(data) };
    });
    tensors.push({ name: 'scalar', dtype: 'F32', shape: [], data: new Float32Array([7]) });
    tensors.push({ name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) });
    await writeSafetensors(path, tensors, { format: 'pt', note: 'héllo' });

    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const file = await readFile(path);
    const headerLength = Number(file.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);

    const reader = await SafetensorsReader.open(path);
    try {
      expect(reader.metadata).toEqual({ format: 'pt', note: 'héllo' });
      expect(reader.tensors.size).toBe(ALL_DTYPES.length + 2);
      for (const dtype of ALL_DTYPES) {
        const info = reader.tensors.get(`t.${dtype}`)!;
        expect(info.dtype).toBe(dtype);
        expect(info.shape).toEqual(shape);
        expect(info.byteLength).toBe(6 * dtypeByteSize(dtype));
        expect((await reader.readRaw(`t.${dtype}`)).equals(bytesOf(sampleData(dtype, 6)))).toBe(true);
      }
      expect(Array.from(await reader.readFloat32('t.F64'))).toEqual(
        Array.from(Float32Array.from([-3, -2, -1, 0, 1, 2], (v) => v * 0.1)),
      );
      expect(Array.from(await reader.readFloat32('t.F32'))).toEqual([-0.75, -0.5, -0.25, 0, 0.25, 0.5]);
      expect(Array.from(await reader.readFloat32('t.F16'))).toEqual([-1.5, -1, -0.5, 0, 0.5, 1]);
      expect(Array.from(await reader.readFloat32('t.BF16'))).toEqual([-1.5, -1, -0.5, 0, 0.5, 1]);
      expect(Array.from(await reader.readFloat32('scalar'))).toEqual([7]);
      expect((await reader.readFloat32('empty')).length).toBe(0);
      await expect(reader.readFloat32('t.I32')).rejects.toThrow(/"t.I32" is I32/);
      await expect(reader.readRaw('nope')).rejects.toThrow(/no tensor named "nope"/);
    } finally {
      await reader.close();
    }
  });

  it('writes chunked data back to back, and reads rows of a tensor alone', async () => {
    const file = join(dir, 'chunks.safetensors');
    const rows = [Float32Array.of(1, 2, 3), Float32Array.of(4, 5, 6), Float32Array.of(7, 8, 9)];
    await writeSafetensors(file, [{ name: 'm', dtype: 'F32', shape: [3, 3], data: rows }], undefined, {
      sync: false,
    });
    const reader = await SafetensorsReader.open(file);
    try {
      expect(Array.from(await reader.readFloat32('m'))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(Array.from(new Float32Array((await reader.readRows('m', 1, 2)).buffer))).toEqual([
        4, 5, 6, 7, 8, 9,
      ]);
      await expect(reader.readRows('m', 2, 2)).rejects.toThrow(/rows 2..3 of "m" are outside 0..2/);
    } finally {
      await reader.close();
    }
    await expect(
      writeSafetensors(file, [{ name: 'm', dtype: 'F32', shape: [3, 3], data: rows.slice(1) }]),
    ).rejects.toThrow(/got 24 bytes/);
  });

  it('calls lazy producers one at a time, in order', async () => {
    const events: string[] = [];
    let live = 0;
    const producer = (name: string) => async () => {
      live++;
      expect(live).toBe(1);
      events.push(name);
      await new Promise((r) => setTimeout(r, 1));
      live--;
      return new Float32Array(4);
    };
    await writeSafetensors(
      join(dir, 'lazy.safetensors'),
      ['a', 'b', 'c'].map((name) => ({ name, dtype: 'F32' as const, shape: [4], data: producer(name) })),
    );
    expect(events).toEqual(['a', 'b', 'c']);
  });

  it('refuses data of the wrong size and leaves no file behind', async () => {
    const path = join(dir, 'wrong.safetensors');
    await expect(
      writeSafetensors(path, [{ name: 'x', dtype: 'F32', shape: [3], data: () => new Float32Array(2) }]),
    ).rejects.toThrow(/tensor "x": got 8 bytes.*needs 12/);
    expect((await readdir(dir)).filter((f) => f.startsWith('wrong'))).toEqual([]);
  });
});

/** Builds a file byte by byte, independently of the writer. */
function handBuilt(headerJson: string, data: Buffer, headerLength = Buffer.byteLength(headerJson)): Buffer {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerLength));
  return Buffer.concat([length, Buffer.from(headerJson, 'utf8'), data]);
}

describe('safetensors reader', () => {
  it('parses a hand-built file', async () => {
    const data = Buffer.alloc(4 * 4 + 2 * 2 + 1);
    data.writeFloatLE(1.5, 0);
    data.writeFloatLE(-2, 4);
    data.writeFloatLE(0.25, 8);
    data.writeFloatLE(1e6, 12);
    data.writeUInt16LE(0x3c00, 16);
    data.writeUInt16LE(0xc000, 18);
    data.writeUInt8(9, 20);
    // Deliberately unpadded and listed out of data order.
    const header =
      '{"b":{"dtype":"F16","shape":[2],"data_offsets":[16,20]},' +
      '"__metadata__":{"k":"v"},' +
      '"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
      '"c":{"dtype":"U8","shape":[1],"data_offsets":[20,21]}}';
    const path = join(dir, 'hand.safetensors');
    await writeFile(path, handBuilt(header, data));
    const reader = await SafetensorsReader.open(path);
    try {
      expect(reader.metadata).toEqual({ k: 'v' });
      const headerEnd = 8 + Buffer.byteLength(header);
      expect([...reader.tensors.values()]).toEqual([
        { name: 'a', dtype: 'F32', shape: [2, 2], byteOffset: headerEnd, byteLength: 16 },
        { name: 'b', dtype: 'F16', shape: [2], byteOffset: headerEnd + 16, byteLength: 4 },
        { name: 'c', dtype: 'U8', shape: [1], byteOffset: headerEnd + 20, byteLength: 1 },
      ]);
      expect(Array.from(await reader.readFloat32('a'))).toEqual([1.5, -2, 0.25, 1e6]);
      expect(Array.from(await reader.readFloat32('b'))).toEqual([1, -2]);
      expect([...(await reader.readRaw('c'))]).toEqual([9]);
    } finally {
      await reader.close();
    }
  });

  const good = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const malformed: [string, Buffer, RegExp][] = [
    ['a file shorter than 8 bytes', Buffer.from([1, 2, 3]), /not a safetensors file: 3 bytes/],
    [
      'a header length past the end',
      handBuilt(good, Buffer.alloc(8), 5000),
      /header length 5000 does not fit/,
    ],
    ['a huge header length', handBuilt(good, Buffer.alloc(8), 2 ** 40), /header too large/],
    ['a header that is not JSON', handBuilt('{"a": nope}', Buffer.alloc(8)), /header is not valid JSON/],
    ['a header that is a JSON array', handBuilt('[1, 2]', Buffer.alloc(8)), /not a JSON object/],
    [
      'truncated data',
      handBuilt(good, Buffer.alloc(5)),
      /"a": data_offsets \[0, 8\] out of range.*truncated/,
    ],
    [
      'overlapping offsets',
      handBuilt(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
        Buffer.alloc(12),
      ),
      /"a" and "b" have overlapping data_offsets/,
    ],
    [
      'an unknown dtype',
      handBuilt('{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}', Buffer.alloc(2)),
      /"a": unknown dtype "F8_E4M3"/,
    ],
    [
      'a byte length that does not match the shape',
      handBuilt('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', Buffer.alloc(8)),
      /byte length 8 does not match shape \[3\] of F32 \(12 bytes\)/,
    ],
    [
      'reversed offsets',
      handBuilt('{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', Buffer.alloc(8)),
      /data_offsets \[8,0\] must be/,
    ],
    [
      'non-string metadata',
      handBuilt('{"__metadata__":{"n":1}}', Buffer.alloc(0)),
      /__metadata__.n must be a string/,
    ],
  ];
  for (const [what, bytes, message] of malformed) {
    it(`rejects ${what} with a clear error`, async () => {
      const path = join(dir, 'bad.safetensors');
      await writeFile(path, bytes);
      await expect(SafetensorsReader.open(path)).rejects.toThrow(message);
      await expect(SafetensorsReader.open(path)).rejects.toMatchObject({ code: 'BAD_CHECKPOINT' });
    });
  }
});
