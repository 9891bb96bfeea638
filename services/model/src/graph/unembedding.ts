import fs from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '@loupe/common';
import onnxProto from 'onnx-proto';
import { readManifest } from './manifest.js';

/** The unembedding of a converted model: logits = h · W_Uᵀ with W_U stored as [vocab, d_model]. */
export interface Unembedding {
  vocabSize: number;
  dModel: number;
  /** [vocab, d_model] row-major: wte for tied GPT-2, lm_head.weight otherwise */
  weights: Float32Array;
  tied: boolean;
}

/**
 * Reads the unembedding matrix of a converted model folder: the initializer the full graph's final
 * Gemm uses (`wte.weight` when tied, `lm_head.weight` when not).
 */
export async function readUnembedding(modelDir: string): Promise<Unembedding> {
  const manifest = await readManifest(modelDir);
  const { vocabSize, dModel } = manifest.dims;
  const tied = manifest.source.tiedUnembedding;
  const weights = await readWeight(modelDir, tied ? 'wte.weight' : 'lm_head.weight', [vocabSize, dModel]);
  return { vocabSize, dModel, weights, tied };
}

/**
 * One float32 weight of a converted model folder by its Hugging Face name (`h.3.mlp.c_proj.weight`,
 * `ln_f.weight`), located through model.onnx's external-data entry and read from the weights file. The
 * graph protobuf is small (weights are external), so decoding it whole costs little.
 */
export async function readWeight(modelDir: string, name: string, dims: number[]): Promise<Float32Array> {
  const manifest = await readManifest(modelDir);
  const graphFile = path.join(modelDir, manifest.graphs.full);
  const model = onnxProto.onnx.ModelProto.decode(await fs.readFile(graphFile));
  const tensor = model.graph?.initializer?.find((t) => t.name === name);
  const entry = (key: string) => tensor?.externalData?.find((e) => e.key === key)?.value;
  const location = entry('location');
  if (!tensor || !location) {
    throw new UserInputError(`${graphFile}: no external initializer "${name}"; convert the model again`);
  }
  const offset = Number(entry('offset') ?? 0);
  const count = dims.reduce((a, b) => a * b, 1);
  const length = count * 4;
  if (Number(entry('length') ?? length) !== length) {
    throw new UserInputError(`${graphFile}: "${name}" is not [${dims.join(', ')}] float32`);
  }
  const weights = new Float32Array(count);
  const handle = await fs.open(path.join(modelDir, location), 'r');
  try {
    const { bytesRead } = await handle.read(new Uint8Array(weights.buffer), 0, length, offset);
    if (bytesRead !== length) {
      throw new UserInputError(`${location}: ${name} is cut short (${bytesRead} of ${length} bytes)`);
    }
  } finally {
    await handle.close();
  }
  return weights;
}
