import fs from 'node:fs/promises';
import path from 'node:path';
import { SafetensorsReader, UserInputError } from '@loupe/common';
import { hookShardsDir, shardsDir } from './shard-files.js';

/** One window of a shard: its dataset index, token ids and activations [tokens, width]. */
export interface ShardWindow {
  index: number;
  ids: Int32Array;
  activations: Float32Array;
}

interface ShardIndex {
  file: string;
  windows: Int32Array;
  offsets: Int32Array;
}

/**
 * A capture job's activation shards for one hook (`<job>/shards/<hook>/NNNNNN.safetensors`, written by
 * capture's writeShard). Opening reads only each shard's small index tensors; activations are read one
 * shard at a time, so memory stays bounded by a shard whatever the dataset's size.
 */
export class ShardFolder {
  private readonly byWindow = new Map<number, { shard: number; local: number }>();

  private constructor(
    readonly dir: string,
    readonly width: number,
    private readonly shards: ShardIndex[],
  ) {
    for (const [shard, s] of shards.entries())
      for (const [local, w] of s.windows.entries()) this.byWindow.set(w, { shard, local });
  }

  /** `jobDir` is a capture job folder (then `hook` picks the shards) or a folder of shard files. */
  static async open(jobDir: string, hook: string): Promise<ShardFolder> {
    const candidates = [hookShardsDir(jobDir, hook), jobDir];
    let dir = '';
    let files: string[] = [];
    for (const candidate of candidates) {
      const names = await fs.readdir(candidate).catch(() => [] as string[]);
      files = names.filter((n) => /^\d+\.safetensors$/.test(n)).sort();
      if (files.length > 0) {
        dir = candidate;
        break;
      }
    }
    if (files.length === 0) {
      const hooks = await fs.readdir(shardsDir(jobDir)).catch(() => [] as string[]);
      throw new UserInputError(
        `no activation shards for hook ${hook} in ${jobDir}` +
          (hooks.length
            ? `; it has shards for ${hooks.join(', ')}`
            : '; expected shards/<hook>/NNNNNN.safetensors'),
        'NOT_FOUND',
      );
    }
    const shards: ShardIndex[] = [];
    let width = 0;
    for (const name of files) {
      const file = path.join(dir, name);
      const reader = await SafetensorsReader.open(file);
      try {
        const [, w] = reader.info('activations').shape;
        if (width && w !== width) throw new UserInputError(`${file}: width ${w}, other shards have ${width}`);
        width = w;
        shards.push({
          file,
          windows: (await reader.readArray('window_index')) as Int32Array,
          offsets: (await reader.readArray('window_offsets')) as Int32Array,
        });
      } finally {
        await reader.close();
      }
    }
    return new ShardFolder(dir, width, shards);
  }

  get windowCount(): number {
    return this.byWindow.size;
  }

  get tokenCount(): number {
    return this.shards.reduce((n, s) => n + s.offsets[s.offsets.length - 1], 0);
  }

  /** The longest window, the record length. */
  get windowLength(): number {
    let longest = 0;
    for (const s of this.shards)
      for (let i = 0; i + 1 < s.offsets.length; i++)
        longest = Math.max(longest, s.offsets[i + 1] - s.offsets[i]);
    return longest;
  }

  /** Every window, in shard order, one shard in memory at a time. */
  async *windows(): AsyncGenerator<ShardWindow[]> {
    for (const shard of this.shards) yield await this.readShard(shard);
  }

  /** The given windows, reading only the shards that hold them. */
  async read(indices: Iterable<number>, what: 'ids' | 'both' = 'both'): Promise<Map<number, ShardWindow>> {
    const byShard = new Map<number, number[]>();
    for (const index of indices) {
      const at = this.byWindow.get(index);
      if (!at)
        throw new UserInputError(`window ${index} is in none of the shards in ${this.dir}`, 'NOT_FOUND');
      byShard.set(at.shard, [...(byShard.get(at.shard) ?? []), at.local]);
    }
    const out = new Map<number, ShardWindow>();
    for (const [shard, locals] of byShard) {
      const s = this.shards[shard];
      const reader = await SafetensorsReader.open(s.file);
      try {
        for (const local of locals) {
          const [start, end] = [s.offsets[local], s.offsets[local + 1]];
          out.set(s.windows[local], {
            index: s.windows[local],
            ids: (await reader.readRowsArray('token_ids', start, end - start)) as Int32Array,
            activations:
              what === 'both'
                ? ((await reader.readRowsArray('activations', start, end - start)) as Float32Array)
                : new Float32Array(0),
          });
        }
      } finally {
        await reader.close();
      }
    }
    return out;
  }

  private async readShard(s: ShardIndex): Promise<ShardWindow[]> {
    const reader = await SafetensorsReader.open(s.file);
    try {
      const ids = (await reader.readArray('token_ids')) as Int32Array;
      const activations = await reader.readFloat32('activations');
      return Array.from(s.windows, (index, i) => {
        const [start, end] = [s.offsets[i], s.offsets[i + 1]];
        return {
          index,
          ids: ids.subarray(start, end),
          activations: activations.subarray(start * this.width, end * this.width),
        };
      });
    } finally {
      await reader.close();
    }
  }
}
