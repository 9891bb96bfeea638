import fs from 'node:fs/promises';
import path from 'node:path';
import { writeRecordFile } from './record-file.js';
import { readShardWindows } from './shards/shard-files.js';
import type { NeuronRecordAccumulator, RecordRowsSource, RecordSet } from './unit-records.js';

export interface RecordsBuildTask {
  /** the job's folder, whose shards hold the sample windows */
  dir: string;
  hook: string;
  windowsPerShard: number;
  /** the record file to write (durable only once the caller syncs it) */
  file: string;
  metadata: Record<string, string>;
}

/**
 * One hook's records at the end of a capture job: its sample windows read back from the shards and
 * added to the accumulator's state, then the record file. Returns what the database rows need.
 */
export async function buildRecords(
  accumulator: NeuronRecordAccumulator,
  task: RecordsBuildTask,
): Promise<RecordRowsSource> {
  const finisher = accumulator.beginFinish();
  const sample = readShardWindows(task.dir, task.hook, finisher.pending(), task.windowsPerShard);
  for await (const [index, activations] of sample) finisher.add(index, activations);
  const set = finisher.result();
  await fs.mkdir(path.dirname(task.file), { recursive: true });
  await writeRecordFile(task.file, set, task.metadata, { sync: false });
  return withoutValues(set);
}

/** The record set less its per-token values (the bulk, which only the record file holds). */
function withoutValues({
  topValues: _t,
  randomValues: _r,
  quantileValues: _q,
  ...rest
}: RecordSet): RecordRowsSource {
  return rest;
}
