import { Rng, UserInputError } from '@loupe/common';
import type { ActivationSource } from './activation-source.js';
import { piecesInRange, type RowPiece, readPieces } from './row-reader.js';
import type { ShuffleBuffer } from './shuffle-buffer.js';
import { type Batch, shuffledBatches } from './shuffled-batches.js';

export interface DatasetSettings {
  batchSize: number;
  /** vectors held by the shuffle buffer (memory: capacity × width × 4 bytes) */
  shuffleCapacity: number;
  seed: number;
  /** fraction of the vectors, taken from the end of the source, kept out of training */
  heldOutFraction: number;
  /** rows per file read when a segment is larger (a big single file) */
  readChunkRows?: number;
  /** every vector is multiplied by this on the way out (activation normalisation) */
  scale?: number;
  observe?: (buffer: ShuffleBuffer) => void;
}

const DEFAULT_READ_CHUNK_ROWS = 8192;

/**
 * Training and held-out vectors of one source. Training epochs are shuffled twice over: segment order
 * (so shards far apart meet in the buffer) and vectors in the buffer; both seeded per epoch, so the
 * same seed gives the same batches. Held-out vectors are the source's tail, read in order.
 */
export class ActivationDataset {
  readonly trainRows: number;
  readonly heldOutRows: number;
  private readonly chunkRows: number;

  constructor(
    readonly source: ActivationSource,
    private readonly settings: DatasetSettings,
  ) {
    const { heldOutFraction, batchSize, shuffleCapacity } = settings;
    if (!(heldOutFraction >= 0 && heldOutFraction < 1))
      throw new UserInputError(`held-out fraction must be in [0, 1), got ${heldOutFraction}`);
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new UserInputError(`batch size must be a positive whole number, got ${batchSize}`);
    if (!Number.isInteger(shuffleCapacity) || shuffleCapacity < 1)
      throw new UserInputError(`shuffle buffer size must be a positive whole number, got ${shuffleCapacity}`);
    this.heldOutRows = Math.floor(source.rows * heldOutFraction);
    this.trainRows = source.rows - this.heldOutRows;
    if (this.trainRows < 1)
      throw new UserInputError(`${source.location}: no vectors left for training after the held-out split`);
    this.chunkRows = settings.readChunkRows ?? DEFAULT_READ_CHUNK_ROWS;
  }

  get width(): number {
    return this.source.width;
  }

  /** One pass over the training vectors in shuffled batches. */
  async *epoch(index: number): AsyncGenerator<Batch> {
    const rng = Rng.derive(this.settings.seed, `sae/data/epoch/${index}`);
    const pieces = shuffled(piecesInRange(this.source, 0, this.trainRows), rng);
    const batches = shuffledBatches(readPieces(pieces, this.chunkRows), {
      width: this.width,
      batchSize: this.settings.batchSize,
      capacity: this.settings.shuffleCapacity,
      rng,
      observe: this.settings.observe,
    });
    for await (const batch of batches) yield this.scaled(batch);
  }

  /** Training batches for ever, epoch after epoch. */
  async *batches(): AsyncGenerator<Batch> {
    for (let e = 0; ; e++) yield* this.epoch(e);
  }

  /** The held-out vectors in source order, in chunks of at most `maxRows`. */
  async *heldOut(maxRows = this.chunkRows): AsyncGenerator<Batch> {
    const pieces = piecesInRange(this.source, this.trainRows, this.source.rows);
    for await (const data of readPieces(pieces, maxRows))
      yield this.scaled({ data, rows: data.length / this.width });
  }

  /** The first `count` training vectors in source order (for estimating statistics), unscaled. */
  async *head(count: number): AsyncGenerator<Batch> {
    const pieces = piecesInRange(this.source, 0, Math.min(count, this.trainRows));
    for await (const data of readPieces(pieces, this.chunkRows))
      yield { data, rows: data.length / this.width };
  }

  private scaled(batch: Batch): Batch {
    const scale = this.settings.scale;
    if (scale === undefined || scale === 1) return batch;
    const data = batch.data;
    for (let i = 0; i < data.length; i++) data[i] *= scale;
    return batch;
  }
}

/** Fisher–Yates with the epoch's generator. */
function shuffled(pieces: RowPiece[], rng: Rng): RowPiece[] {
  const out = pieces.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.nextUniform() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
