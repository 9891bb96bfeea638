import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { SafetensorsReader, UserInputError } from '@loupe/common';

// The one place that knows how captured activations are laid out on disk:
// <data dir>/capture/<job id>/shards/<hook>/NNNNNN.safetensors

/** A capture job's folder under the data directory. */
export function captureJobDir(dataDir: string, jobId: string): string {
  return path.join(dataDir, 'capture', jobId);
}

/** The folder of a capture job's shards, one subfolder per hook. */
export function shardsDir(jobDir: string): string {
  return path.join(jobDir, 'shards');
}

/** The folder of one hook's shards in a capture job. */
export function hookShardsDir(jobDir: string, hook: string): string {
  return path.join(shardsDir(jobDir), hook);
}

/** Where a capture job keeps one hook's activation shard. */
export function shardFile(jobDir: string, hook: string, shard: number): string {
  return path.join(hookShardsDir(jobDir, hook), `${String(shard).padStart(6, '0')}.safetensors`);
}

/**
 * What `--activations` names: an existing file or folder as it is, or else the id of a capture job in
 * the data directory (what `loupe capture` prints).
 */
export function resolveActivations(dataDir: string, given: string): string {
  if (existsSync(given)) return path.resolve(given);
  const job = captureJobDir(dataDir, given);
  if (/^[\w.-]+$/.test(given) && existsSync(job)) return job;
  const jobs = (() => {
    try {
      return readdirSync(path.join(dataDir, 'capture')).sort();
    } catch {
      return [];
    }
  })();
  throw new UserInputError(
    `no such file or folder, and no capture job, "${given}": give a capture job id (${
      jobs.length
        ? `jobs in ${path.join(dataDir, 'capture')}: ${jobs.slice(0, 10).join(', ')}${jobs.length > 10 ? ', …' : ''}`
        : `none in ${path.join(dataDir, 'capture')} yet: run loupe capture`
    }), a capture job folder, a folder of shards or a .safetensors file`,
    'NOT_FOUND',
  );
}

/**
 * Activations of the given windows, [tokens, width] each, read back from the job's shard files one run
 * of consecutive windows at a time (a small job's sample is most of its windows, a large job's a few
 * scattered ones: reading from first to last would read whole shards). The next run is read while the
 * caller works on this one: shards bypass the page cache when written, so these are disk reads.
 */
export async function* readShardWindows(
  dir: string,
  hook: string,
  indices: number[],
  windowsPerShard: number,
): AsyncGenerator<[number, Float32Array]> {
  const runs = consecutiveRuns([...indices].sort((a, b) => a - b)).flatMap((run) => {
    // a run that crosses a shard boundary is read as one piece per shard
    const pieces = new Map<number, number[]>();
    for (const index of run) {
      const shard = Math.floor(index / windowsPerShard);
      pieces.set(shard, [...(pieces.get(shard) ?? []), index]);
    }
    return [...pieces].map(([shard, members]) => ({ shard, members }));
  });
  const load = async ({ shard, members }: { shard: number; members: number[] }) => {
    const reader = await SafetensorsReader.open(shardFile(dir, hook, shard));
    try {
      const offsets = await reader.readArray('window_offsets');
      const local = (index: number) => index - shard * windowsPerShard;
      const start = Number(offsets[local(members[0])]);
      const tokens = Number(offsets[local(members.at(-1)!) + 1]) - start;
      const rows = (await reader.readRowsArray('activations', start, tokens)) as Float32Array;
      const width = rows.length / tokens;
      return members.map((index): [number, Float32Array] => {
        const [from, to] = [Number(offsets[local(index)]) - start, Number(offsets[local(index) + 1]) - start];
        return [index, rows.subarray(from * width, to * width)];
      });
    } finally {
      await reader.close();
    }
  };
  let next = runs.length > 0 ? load(runs[0]) : null;
  try {
    for (let i = 0; next !== null; i++) {
      const windows = await next;
      next = i + 1 < runs.length ? load(runs[i + 1]) : null;
      yield* windows;
    }
  } finally {
    next?.catch(() => {}); // a consumer that stops early leaves the read ahead unawaited
  }
}

/** Sorted indices split where they stop being consecutive. */
function consecutiveRuns(sorted: number[]): number[][] {
  const runs: number[][] = [];
  for (const index of sorted) {
    const run = runs.at(-1);
    if (run && run.at(-1) === index - 1) run.push(index);
    else runs.push([index]);
  }
  return runs;
}
