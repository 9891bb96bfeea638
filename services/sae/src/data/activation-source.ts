import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Dtype, isFloatDtype, SafetensorsReader, UserInputError } from '@loupe/common';
import { hookShardsDir, shardsDir } from '@loupe/records';

/** One file's worth of vectors: a 2-D float tensor [rows, width] in a safetensors file. */
export interface ActivationSegment {
  file: string;
  tensor: string;
  dtype: Dtype;
  rows: number;
}

/**
 * Where training vectors come from: a capture job's shards for one hook (in shard order) or one
 * safetensors file. Only headers are read here; vectors are streamed later, segment by segment.
 */
export interface ActivationSource {
  width: number;
  rows: number;
  segments: ActivationSegment[];
  /** from the shard metadata when the capture service wrote it */
  hook: string | null;
  model: string | null;
  /** what was opened, for messages */
  location: string;
}

export interface OpenSourceOptions {
  /** tensor name; default `activations` in shards, else the file's only 2-D float tensor */
  tensor?: string;
  /** hook to read when the location is a capture job folder holding several */
  hook?: string;
  /** the width a consumer needs (an SAE's d_in), checked up front */
  expectedWidth?: number;
}

const SHARD_TENSOR = 'activations';

/** Opens a capture job folder, a folder of shards, or one safetensors file. */
export async function openActivationSource(
  location: string,
  options: OpenSourceOptions = {},
): Promise<ActivationSource> {
  const info = await stat(location).catch(() => {
    throw new UserInputError(`--activations ${location}: no such file or folder`, 'NOT_FOUND');
  });
  const files = info.isDirectory() ? await shardFiles(location, options.hook) : [location];
  const segments: ActivationSegment[] = [];
  let width = -1;
  let hook: string | null = null;
  let model: string | null = null;
  for (const file of files) {
    const reader = await SafetensorsReader.open(file);
    try {
      const tensor = pickTensor(reader, options.tensor, info.isDirectory());
      const { shape, dtype } = reader.info(tensor);
      if (width === -1) {
        width = shape[1];
        hook = reader.metadata.hook ?? null;
        model = reader.metadata.model ?? null;
      } else if (shape[1] !== width) {
        throw new UserInputError(
          `${file}: tensor "${tensor}" is ${shape[1]} wide but earlier shards are ${width} wide`,
        );
      } else if ((reader.metadata.hook ?? null) !== hook) {
        throw new UserInputError(
          `${file}: shard is for hook ${reader.metadata.hook ?? '(none)'} but earlier shards are for ${hook ?? '(none)'}`,
        );
      }
      if (shape[0] > 0) segments.push({ file, tensor, dtype, rows: shape[0] });
    } finally {
      await reader.close();
    }
  }
  const rows = segments.reduce((n, s) => n + s.rows, 0);
  if (rows === 0) throw new UserInputError(`--activations ${location}: holds no vectors`);
  if (options.expectedWidth !== undefined && width !== options.expectedWidth) {
    throw new UserInputError(
      `--activations ${location}: vectors are ${width} wide, but ${options.expectedWidth} are needed`,
    );
  }
  return { width, rows, segments, hook, model, location };
}

/**
 * The shard files to read, in shard order. A capture job folder (`<job>/shards/<hook>/NNNNNN.safetensors`)
 * needs a hook unless it captured only one; a folder of safetensors files is read as it is.
 */
async function shardFiles(dir: string, hook: string | undefined): Promise<string[]> {
  const jobShards = shardsDir(dir);
  const isJob = await stat(jobShards)
    .then((s) => s.isDirectory())
    .catch(() => false);
  let folder = dir;
  if (isJob) {
    const hooks = (await readdir(jobShards, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    if (hook !== undefined) {
      if (!hooks.includes(hook)) {
        throw new UserInputError(
          `${dir}: no shards for hook ${hook}; this job captured ${hooks.join(', ') || 'no hooks'}`,
          'UNKNOWN_HOOK',
        );
      }
      folder = hookShardsDir(dir, hook);
    } else if (hooks.length === 1) {
      folder = hookShardsDir(dir, hooks[0]);
    } else {
      throw new UserInputError(
        `${dir}: this capture job holds several hooks (${hooks.join(', ')}); name one with --hook`,
      );
    }
  }
  const files = (await readdir(folder))
    .filter((name) => name.endsWith('.safetensors'))
    .sort()
    .map((name) => path.join(folder, name));
  if (files.length === 0) throw new UserInputError(`${folder}: no .safetensors files in this folder`);
  return files;
}

function pickTensor(reader: SafetensorsReader, wanted: string | undefined, isShard: boolean): string {
  const where = reader.path;
  const describe = () =>
    [...reader.tensors.values()].map((t) => `${t.name} ${t.dtype}[${t.shape.join(', ')}]`).join(', ');
  let name = wanted;
  if (name === undefined && isShard && reader.tensors.has(SHARD_TENSOR)) name = SHARD_TENSOR;
  if (name === undefined) {
    const candidates = [...reader.tensors.values()].filter(
      (t) => t.shape.length === 2 && isFloatDtype(t.dtype),
    );
    if (candidates.length !== 1) {
      throw new UserInputError(
        `${where}: ${candidates.length === 0 ? 'no' : 'several'} 2-D float tensors; name one with --tensor (tensors: ${describe() || 'none'})`,
      );
    }
    name = candidates[0].name;
  }
  const info = reader.tensors.get(name);
  if (!info)
    throw new UserInputError(`${where}: no tensor named "${name}" (tensors: ${describe() || 'none'})`);
  if (info.shape.length !== 2) {
    throw new UserInputError(
      `${where}: tensor "${name}" has shape [${info.shape.join(', ')}]; vectors must be 2-D [count, width]`,
    );
  }
  if (!isFloatDtype(info.dtype)) {
    throw new UserInputError(
      `${where}: tensor "${name}" is ${info.dtype}; vectors must be F32, F64, F16 or BF16`,
    );
  }
  return name;
}
