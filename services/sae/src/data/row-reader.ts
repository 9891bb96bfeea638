import { SafetensorsReader } from '@loupe/common';
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
  maxRows: number,
): AsyncGenerator<Float32Array> {
  for (const piece of pieces) {
    const reader = await SafetensorsReader.open(piece.segment.file);
    try {
      for (let done = 0; done < piece.count; done += maxRows) {
        const count = Math.min(maxRows, piece.count - done);
        yield await reader.readRowsFloat32(piece.segment.tensor, piece.first + done, count);
      }
    } finally {
      await reader.close();
    }
  }
}
