import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError, SafetensorsReader, type TensorInfo } from '@loupe/common';
import { type Gpt2Config, parseGpt2Config } from './gpt2-config.js';

/**
 * A Hugging Face GPT-2 checkpoint folder, validated tensor by tensor against its config before any
 * weight is read, so a malformed file fails with the tensor's name instead of deep inside a graph.
 */
export interface Gpt2Checkpoint {
  dir: string;
  config: Gpt2Config;
  weights: SafetensorsReader;
  /** canonical name (no `transformer.` prefix) → stored tensor */
  tensors: Map<string, TensorInfo>;
  /** true when config.json ties the embeddings (the default) or lm_head.weight equals wte.weight */
  tiedUnembedding: boolean;
}

export const CHECKPOINT_FILES = {
  config: 'config.json',
  weights: 'model.safetensors',
  vocab: 'vocab.json',
  merges: 'merges.txt',
} as const;
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);
const IGNORED_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;

export function expectedShapes(config: Gpt2Config): Map<string, number[]> {
  const { vocabSize: v, nPositions: p, dModel: d, dMlp: m } = config;
  const shapes = new Map<string, number[]>([
    ['wte.weight', [v, d]],
    ['wpe.weight', [p, d]],
  ]);
  for (let i = 0; i < config.nLayer; i++) {
    const block: [string, number[]][] = [
      ['ln_1.weight', [d]],
      ['ln_1.bias', [d]],
      ['attn.c_attn.weight', [d, 3 * d]],
      ['attn.c_attn.bias', [3 * d]],
      ['attn.c_proj.weight', [d, d]],
      ['attn.c_proj.bias', [d]],
      ['ln_2.weight', [d]],
      ['ln_2.bias', [d]],
      ['mlp.c_fc.weight', [d, m]],
      ['mlp.c_fc.bias', [m]],
      ['mlp.c_proj.weight', [m, d]],
      ['mlp.c_proj.bias', [d]],
    ];
    for (const [name, shape] of block) shapes.set(`h.${i}.${name}`, shape);
  }
  shapes.set('ln_f.weight', [d]);
  shapes.set('ln_f.bias', [d]);
  return shapes;
}

export async function openCheckpoint(dir: string): Promise<Gpt2Checkpoint> {
  for (const file of Object.values(CHECKPOINT_FILES)) {
    try {
      await fs.access(path.join(dir, file));
    } catch {
      const hint =
        file === 'model.safetensors'
          ? ' (only safetensors weights are read; convert pytorch_model.bin first)'
          : '';
      throw new CheckpointError(`checkpoint ${dir}: missing ${file}${hint}`);
    }
  }
  let configJson: unknown;
  try {
    configJson = JSON.parse(await fs.readFile(path.join(dir, CHECKPOINT_FILES.config), 'utf8'));
  } catch (error) {
    throw new CheckpointError(
      `checkpoint ${dir}: config.json is not valid JSON (${(error as Error).message})`,
    );
  }
  const config = parseGpt2Config(configJson, path.join(dir, CHECKPOINT_FILES.config));
  let weights: SafetensorsReader;
  try {
    weights = await SafetensorsReader.open(path.join(dir, CHECKPOINT_FILES.weights));
  } catch (error) {
    throw new CheckpointError(
      `checkpoint ${dir}: model.safetensors is not a safetensors file: ${(error as Error).message}`,
    );
  }
  try {
    const tensors = canonicalTensors(weights, config);
    const tiedUnembedding = config.tieWordEmbeddings || (await isTied(weights, tensors));
    return { dir, config, weights, tensors, tiedUnembedding };
  } catch (error) {
    await weights.close();
    throw error;
  }
}

function canonicalTensors(weights: SafetensorsReader, config: Gpt2Config): Map<string, TensorInfo> {
  const expected = expectedShapes(config);
  const found = new Map<string, TensorInfo>();
  for (const info of weights.tensors.values()) {
    const name = info.name.startsWith('transformer.') ? info.name.slice('transformer.'.length) : info.name;
    if (IGNORED_BUFFER.test(name)) continue;
    const shape = name === 'lm_head.weight' ? [config.vocabSize, config.dModel] : expected.get(name);
    if (!shape)
      throw new CheckpointError(`model.safetensors: unexpected tensor "${info.name}" for a GPT-2 model`);
    if (found.has(name))
      throw new CheckpointError(
        `model.safetensors: tensor "${name}" appears twice (with and without the "transformer." prefix)`,
      );
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new CheckpointError(
        `model.safetensors: tensor "${info.name}" has dtype ${info.dtype}; expected F32, F16 or BF16`,
      );
    }
    if (shape.length !== info.shape.length || shape.some((n, i) => n !== info.shape[i])) {
      throw new CheckpointError(
        `model.safetensors: tensor "${info.name}" has shape [${info.shape.join(', ')}]; config.json implies [${shape.join(', ')}]`,
      );
    }
    found.set(name, info);
  }
  for (const name of expected.keys()) {
    if (!found.has(name)) throw new CheckpointError(`model.safetensors: missing tensor "${name}"`);
  }
  return found;
}

async function isTied(weights: SafetensorsReader, tensors: Map<string, TensorInfo>): Promise<boolean> {
  const head = tensors.get('lm_head.weight');
  if (!head) return true;
  const wte = tensors.get('wte.weight')!;
  if (head.dtype !== wte.dtype) return false;
  return (await weights.readRaw(head.name)).equals(await weights.readRaw(wte.name));
}

/** sha256 of a file, streamed: the manifest records which checkpoint a model was converted from. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
