import { bfloat16ToFloat32, float16ToFloat32, SafetensorsReader } from '@loupe/common';
import type { ActivationSegment, ActivationSource } from './activation-source.js';

/** Rows `first .. first + count - 1` of one segment. */
export interface RowPiece {
  segment: ActivationSegment;
  first: number;
  count: number;
}

/** The pieces of segments covering source rows [start, end), in source order. */
export function piecesInRange(source: ActivationSource, start: number, end: number): RowPiece[] {
  const pieces: RowPiece[] = [];
  let offset = 0;
  for (const segment of source.segments) {
    const from = Math.max(start, offset);
    const to = Math.min(end, offset + segment.rows);
    if (to > from) pieces.push({ segment, first: from - offset, count: to - from });
    offset += segment.rows;
  }
  return pieces;
}

/**
 * Reads pieces as float32 chunks of at most `maxRows` rows, one file read per chunk, so a large
 * single-file dataset streams like a folder of shards.
 */
export async function* readPieces(
  pieces: readonly RowPiece[],
  width: number,
  maxRows: number,
): AsyncGenerator<Float32Array> {
  for (const piece of pieces) {
    const reader = await SafetensorsReader.open(piece.segment.file);
    try {
      for (let done = 0; done < piece.count; done += maxRows) {
        const count = Math.min(maxRows, piece.count - done);
        yield await readFloatRows(reader, piece.segment, piece.first + done, count, width);
      }
    } finally {
      await reader.close();
    }
  }
}

async function readFloatRows(
  reader: SafetensorsReader,
  segment: ActivationSegment,
  first: number,
  count: number,
  width: number,
): Promise<Float32Array> {
  const raw = await reader.readRows(segment.tensor, first, count);
  const n = count * width;
  // readRows returns a fresh buffer at offset 0, so these views are aligned.
  switch (segment.dtype) {
    case 'F32':
      return new Float32Array(raw.buffer, 0, n);
    case 'F64':
      return Float32Array.from(new Float64Array(raw.buffer, 0, n));
    case 'F16':
      return float16ToFloat32(new Uint16Array(raw.buffer, 0, n));
    case 'BF16':
      return bfloat16ToFloat32(new Uint16Array(raw.buffer, 0, n));
    default:
      throw new Error(`segment dtype ${segment.dtype} was not checked when the source was opened`);
  }
}
