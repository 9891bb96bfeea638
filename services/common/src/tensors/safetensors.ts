import type { FileHandle } from 'node:fs/promises';
import { open, rename, rm } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename } from 'node:path';
import { CheckpointError } from '../errors.js';
import {
  bfloat16ToFloat32,
  DTYPES,
  type Dtype,
  dtypeByteSize,
  float16ToFloat32,
  isDtype,
  isFloatDtype,
  type TypedArrayOf,
  typedView,
} from './dtype.js';

/**
 * safetensors files: an 8-byte little-endian header length N, N bytes of JSON describing each tensor
 * (offsets relative to the data section), then the raw little-endian data. Both directions stream:
 * a reader pulls one tensor at a time at its offset and a writer pushes one tensor at a time, so a
 * 500 MB checkpoint never has to sit in memory whole.
 */

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute offset in the file, header included. */
  byteOffset: number;
  byteLength: number;
}

export interface TensorToWrite {
  name: string;
  dtype: Dtype;
  shape: number[];
  /**
   * The bytes; or several chunks written back to back (no concatenated copy of large data); or a
   * producer called only when it is this tensor's turn to be written.
   */
  data: ArrayBufferView | ArrayBufferView[] | (() => Promise<ArrayBufferView> | ArrayBufferView);
}

/** Same limit as the reference implementation: a larger header is a corrupt or hostile file. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
/** Keeps each read/write call well under the 2 GiB that one fs call may move. */
const IO_CHUNK = 256 * 1024 * 1024;

// Typed arrays view file bytes in host order, and the format is little-endian.
const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const dim of shape) n *= dim;
  return n;
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: TensorInfo[];
}

/** Checks everything about the header that can be checked without reading tensor data. */
function parseHeader(json: string, dataStart: number, fileSize: number, where: string): ParsedHeader {
  let header: unknown;
  try {
    header = JSON.parse(json);
  } catch (err) {
    throw new CheckpointError(
      `${where}: not a safetensors file: header is not valid JSON (${(err as Error).message})`,
    );
  }
  if (!isPlainObject(header))
    throw new CheckpointError(`${where}: not a safetensors file: header is not a JSON object`);

  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  const dataSize = fileSize - dataStart;
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(entry))
        throw new CheckpointError(`${where}: ${METADATA_KEY} must be an object of strings`);
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string') {
          throw new CheckpointError(`${where}: ${METADATA_KEY}.${key} must be a string, got ${typeof value}`);
        }
        metadata[key] = value;
      }
      continue;
    }
    const bad = (problem: string) => new CheckpointError(`${where}: tensor "${name}": ${problem}`);
    if (!isPlainObject(entry)) throw bad('entry is not an object');
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isDtype(dtype)) throw bad(`unknown dtype ${JSON.stringify(dtype)}; supported: ${DTYPES.join(', ')}`);
    if (!isShape(shape)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[1] < offsets[0]
    ) {
      throw bad(`data_offsets ${JSON.stringify(offsets)} must be [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataSize) {
      throw bad(
        `data_offsets [${begin}, ${end}] out of range: the data section holds ${dataSize} bytes (file truncated?)`,
      );
    }
    const expected = elementCount(shape) * dtypeByteSize(dtype);
    if (end - begin !== expected) {
      throw bad(
        `byte length ${end - begin} does not match shape [${shape.join(', ')}] of ${dtype} (${expected} bytes)`,
      );
    }
    tensors.push({ name, dtype, shape, byteOffset: dataStart + begin, byteLength: end - begin });
  }

  tensors.sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  // Track the furthest end seen so far: an empty tensor in between must not hide an overlap.
  let furthest: TensorInfo | undefined;
  for (const cur of tensors) {
    if (cur.byteLength === 0) continue;
    if (furthest && furthest.byteOffset + furthest.byteLength > cur.byteOffset) {
      throw new CheckpointError(
        `${where}: tensors "${furthest.name}" and "${cur.name}" have overlapping data_offsets`,
      );
    }
    if (!furthest || cur.byteOffset + cur.byteLength > furthest.byteOffset + furthest.byteLength)
      furthest = cur;
  }
  return { metadata, tensors };
}

async function readFully(fh: FileHandle, target: Uint8Array, position: number, where: string): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const length = Math.min(IO_CHUNK, target.byteLength - done);
    const { bytesRead } = await fh.read(target, done, length, position + done);
    if (bytesRead === 0) {
      throw new CheckpointError(`${where}: unexpected end of file at byte ${position + done}`);
    }
    done += bytesRead;
  }
}

async function writeFully(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const length = Math.min(IO_CHUNK, bytes.byteLength - done);
    const { bytesWritten } = await fh.write(bytes, done, length);
    done += bytesWritten;
  }
}

export class SafetensorsReader {
  private constructor(
    readonly path: string,
    readonly metadata: Record<string, string>,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    private readonly fh: FileHandle,
  ) {}

  static async open(path: string): Promise<SafetensorsReader> {
    const where = basename(path);
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      if (size < 8) {
        throw new CheckpointError(
          `${where}: not a safetensors file: ${size} bytes is shorter than the 8-byte header length`,
        );
      }
      const lengthBytes = new Uint8Array(8);
      await readFully(fh, lengthBytes, 0, where);
      const headerLength = Buffer.from(lengthBytes.buffer).readBigUInt64LE(0);
      if (headerLength > BigInt(MAX_HEADER_BYTES)) {
        throw new CheckpointError(
          `${where}: header too large (${headerLength} bytes, limit ${MAX_HEADER_BYTES}); not a safetensors file?`,
        );
      }
      const n = Number(headerLength);
      if (n < 2 || 8 + n > size) {
        throw new CheckpointError(
          `${where}: not a safetensors file: header length ${n} does not fit in a ${size}-byte file`,
        );
      }
      const headerBytes = new Uint8Array(n);
      await readFully(fh, headerBytes, 8, where);
      const json = new TextDecoder('utf-8', { fatal: false }).decode(headerBytes);
      const { metadata, tensors } = parseHeader(json, 8 + n, size, where);
      return new SafetensorsReader(path, metadata, new Map(tensors.map((t) => [t.name, t])), fh);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new CheckpointError(`${basename(this.path)}: no tensor named "${name}"`);
    return info;
  }

  /** The tensor's bytes in a fresh buffer of their own (byteOffset 0, so any typed view is aligned). */
  async readRaw(name: string): Promise<Buffer> {
    const info = this.info(name);
    const bytes = new Uint8Array(new ArrayBuffer(info.byteLength));
    await readFully(this.fh, bytes, info.byteOffset, basename(this.path));
    return Buffer.from(bytes.buffer, 0, info.byteLength);
  }

  /**
   * Rows `first .. first + count - 1` along the first axis, read alone: how a record of one neuron
   * comes out of a file holding every neuron's.
   */
  async readRows(name: string, first: number, count: number): Promise<Buffer> {
    const info = this.info(name);
    const rows = info.shape[0] ?? 0;
    if (
      !Number.isInteger(first) ||
      !Number.isInteger(count) ||
      first < 0 ||
      count < 0 ||
      first + count > rows
    ) {
      throw new CheckpointError(
        `${basename(this.path)}: rows ${first}..${first + count - 1} of "${name}" are outside 0..${rows - 1}`,
      );
    }
    const rowBytes = rows === 0 ? 0 : info.byteLength / rows;
    const bytes = new Uint8Array(new ArrayBuffer(count * rowBytes));
    await readFully(this.fh, bytes, info.byteOffset + first * rowBytes, basename(this.path));
    return Buffer.from(bytes.buffer, 0, bytes.byteLength);
  }

  /** The tensor as its dtype's typed array (see `typedView`). */
  async readArray(name: string): Promise<TypedArrayOf> {
    const raw = await this.readRaw(name);
    return typedView(this.info(name).dtype, raw.buffer, 0, raw.byteLength);
  }

  /** `readRows` as its dtype's typed array. */
  async readRowsArray(name: string, first: number, count: number): Promise<TypedArrayOf> {
    const raw = await this.readRows(name, first, count);
    return typedView(this.info(name).dtype, raw.buffer, 0, raw.byteLength);
  }

  async readFloat32(name: string): Promise<Float32Array> {
    return this.toFloat32(name, await this.readRaw(this.checkFloat(name)));
  }

  /** `readRows` converted to float32, like `readFloat32`. */
  async readRowsFloat32(name: string, first: number, count: number): Promise<Float32Array> {
    return this.toFloat32(name, await this.readRows(this.checkFloat(name), first, count));
  }

  private checkFloat(name: string): string {
    const { dtype } = this.info(name);
    if (!isFloatDtype(dtype)) {
      throw new CheckpointError(
        `${basename(this.path)}: tensor "${name}" is ${dtype}; only F64, F32, F16 and BF16 convert to float32`,
      );
    }
    if (!HOST_IS_LITTLE_ENDIAN) throw new Error('safetensors reading needs a little-endian host');
    return name;
  }

  /** Bytes of a float tensor (a fresh buffer at offset 0, so views are aligned) as float32. */
  private toFloat32(name: string, raw: Buffer): Float32Array {
    const { dtype } = this.info(name);
    const count = raw.byteLength / dtypeByteSize(dtype);
    switch (dtype) {
      case 'F32':
        return new Float32Array(raw.buffer, 0, count);
      case 'F64':
        return Float32Array.from(new Float64Array(raw.buffer, 0, count));
      case 'F16':
        return float16ToFloat32(new Uint16Array(raw.buffer, 0, count));
      default:
        return bfloat16ToFloat32(new Uint16Array(raw.buffer, 0, count));
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

function checkTensorToWrite(t: TensorToWrite, seen: Set<string>): void {
  if (t.name === METADATA_KEY || t.name.length === 0) throw new Error(`invalid tensor name "${t.name}"`);
  if (seen.has(t.name)) throw new Error(`tensor "${t.name}" is listed twice`);
  seen.add(t.name);
  if (!isDtype(t.dtype)) throw new Error(`tensor "${t.name}": unknown dtype "${String(t.dtype)}"`);
  if (!isShape(t.shape)) throw new Error(`tensor "${t.name}": shape must be a list of non-negative integers`);
}

async function resolveData(t: TensorToWrite, expected: number): Promise<Uint8Array[]> {
  const views = typeof t.data === 'function' ? [await t.data()] : Array.isArray(t.data) ? t.data : [t.data];
  const got = views.reduce((n, v) => n + v.byteLength, 0);
  if (got !== expected) {
    throw new Error(
      `tensor "${t.name}": got ${got} bytes, shape [${t.shape.join(', ')}] of ${t.dtype} needs ${expected}`,
    );
  }
  return views.map((view) => new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
}

/** Header bytes, padded with spaces to a multiple of 8 so the data section starts aligned. */
function encodeHeader(
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> | undefined,
): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const t of tensors) {
    const length = elementCount(t.shape) * dtypeByteSize(t.dtype);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + length] };
    offset += length;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

export interface WriteOptions {
  /**
   * fsync before the rename (default true). Writers of many large files that are made durable together
   * later (activation shards, synced at a job checkpoint) turn it off.
   */
  sync?: boolean;
}

export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
  options: WriteOptions = {},
): Promise<void> {
  checkTensorsToWrite(tensors);
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await writeFully(fh, encodeHeader(tensors, metadata));
    for (const t of tensors) {
      for (const bytes of await resolveData(t, elementCount(t.shape) * dtypeByteSize(t.dtype)))
        await writeFully(fh, bytes);
    }
    if (options.sync ?? true) await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await rename(tmp, path);
}

/**
 * A safetensors file's bytes as views (the header, then each tensor's data as given, not copied), for
 * writers that take a file whole, such as `FileWriterThread`.
 */
export async function safetensorsViews(
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<Uint8Array[]> {
  checkTensorsToWrite(tensors);
  const views: Uint8Array[] = [new Uint8Array(encodeHeader(tensors, metadata))];
  for (const t of tensors)
    views.push(...(await resolveData(t, elementCount(t.shape) * dtypeByteSize(t.dtype))));
  return views;
}

function checkTensorsToWrite(tensors: TensorToWrite[]): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error('safetensors writing needs a little-endian host');
  const seen = new Set<string>();
  for (const t of tensors) checkTensorToWrite(t, seen);
}

/** fsyncs files written with `sync: false`, making them durable together. */
export async function syncFiles(paths: Iterable<string>): Promise<void> {
  for (const path of paths) {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
