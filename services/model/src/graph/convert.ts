import fs from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError, type ExternalSlice, GraphBuilder, UserInputError } from '@loupe/common';
import { CHECKPOINT_FILES, type Gpt2Checkpoint, openCheckpoint, sha256File } from '../config/checkpoint.js';
import { buildGpt2Graph, OPSET } from './gpt2-graph.js';
import { CONVERTER_VERSION, GRAPH_FILES, hookSpecs, MANIFEST_FILE, type ModelManifest } from './manifest.js';

export const WEIGHTS_FILE = 'model.onnx.data';
const PAGE = 4096; // page-aligned tensors can be memory-mapped by ONNX Runtime

export interface ConvertOptions {
  name?: string;
  force?: boolean;
  source?: { repo?: string; revision?: string; commit?: string };
  onProgress?: (done: number, total: number) => void;
}

/**
 * Hugging Face checkpoint → model folder: `model.onnx` (hooks + logits) and `trunk.onnx` (hooks and
 * switchable per-window neuron statistics, no logits) sharing one float32 external-data file, the tokenizer files and a manifest. Written into a temporary
 * folder and renamed at the end, so a failed conversion never leaves a half-written model.
 */
export async function convertCheckpoint(
  checkpointDir: string,
  outDir: string,
  options: ConvertOptions = {},
): Promise<ModelManifest> {
  await checkOutputFolder(checkpointDir, outDir, Boolean(options.force));
  const checkpoint = await openCheckpoint(checkpointDir);
  const staging = `${outDir.replace(/\/+$/, '')}.tmp-${process.pid}`;
  await fs.rm(staging, { recursive: true, force: true });
  await fs.mkdir(staging, { recursive: true });
  try {
    const slices = await writeWeights(checkpoint, path.join(staging, WEIGHTS_FILE), options.onProgress);
    const weight = (name: string, dims: number[]) => {
      const slice = slices.get(name === 'lm_head.weight' && checkpoint.tiedUnembedding ? 'wte.weight' : name);
      if (!slice) throw new Error(`converter bug: no weight slice for ${name}`);
      return { name: slice.initializer, dims, slice };
    };
    // the research graphs (attention hooks, patch inputs) are separate files, opened only by requests
    // that ask for them, so everything else runs exactly the graphs it ran before they existed
    for (const [file, graphOptions] of [
      [GRAPH_FILES.full, { logits: true, kvCache: true }],
      [GRAPH_FILES.trunk, { logits: false, windowStats: true }],
      [GRAPH_FILES.fullResearch, { logits: true, patching: true }],
      [GRAPH_FILES.trunkResearch, { logits: false, patching: true }],
    ] as const) {
      const registered = new Set<string>();
      const graph = new GraphBuilder();
      buildGpt2Graph(
        graph,
        checkpoint.config,
        (name, dims) => {
          const { name: initializer, slice } = weight(name, dims);
          if (!registered.has(initializer)) {
            registered.add(initializer);
            graph.externalWeight(initializer, dims, slice);
          }
          return initializer;
        },
        graphOptions,
      );
      await fs.writeFile(path.join(staging, file), graph.encode({ graphName: 'gpt2', opset: OPSET }));
    }
    await fs.copyFile(path.join(checkpointDir, CHECKPOINT_FILES.vocab), path.join(staging, 'vocab.json'));
    await fs.copyFile(path.join(checkpointDir, CHECKPOINT_FILES.merges), path.join(staging, 'merges.txt'));
    await fs.copyFile(
      path.join(checkpointDir, CHECKPOINT_FILES.config),
      path.join(staging, 'source-config.json'),
    );
    const manifest = await describe(checkpoint, outDir, options);
    await fs.writeFile(path.join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await replaceFolder(staging, outDir);
    return manifest;
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  } finally {
    await checkpoint.weights.close();
  }
}

interface PlacedWeight extends ExternalSlice {
  initializer: string;
}

/** Streams every tensor, converted to float32, into one page-aligned external data file. */
async function writeWeights(
  checkpoint: Gpt2Checkpoint,
  file: string,
  onProgress?: (done: number, total: number) => void,
): Promise<Map<string, PlacedWeight>> {
  const names = [...checkpoint.tensors.keys()].filter(
    (name) => name !== 'lm_head.weight' || !checkpoint.tiedUnembedding,
  );
  const placed = new Map<string, PlacedWeight>();
  let offset = 0;
  for (const name of names) {
    const info = checkpoint.tensors.get(name)!;
    const length = info.shape.reduce((a, b) => a * b, 1) * 4;
    offset = Math.ceil(offset / PAGE) * PAGE;
    placed.set(name, { initializer: name, file: WEIGHTS_FILE, offset, length });
    offset += length;
  }
  const handle = await fs.open(file, 'w');
  try {
    let done = 0;
    for (const name of names) {
      const values = await checkpoint.weights.readFloat32(checkpoint.tensors.get(name)!.name);
      const slice = placed.get(name)!;
      await handle.write(
        new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
        0,
        slice.length,
        slice.offset,
      );
      onProgress?.(++done, names.length);
    }
  } finally {
    await handle.close();
  }
  return placed;
}

async function describe(
  checkpoint: Gpt2Checkpoint,
  outDir: string,
  options: ConvertOptions,
): Promise<ModelManifest> {
  const weightsPath = path.join(checkpoint.dir, CHECKPOINT_FILES.weights);
  let vocab: Record<string, number>;
  try {
    vocab = JSON.parse(await fs.readFile(path.join(checkpoint.dir, CHECKPOINT_FILES.vocab), 'utf8'));
  } catch (error) {
    throw new CheckpointError(
      `checkpoint ${checkpoint.dir}: vocab.json is not valid JSON (${(error as Error).message})`,
    );
  }
  const stats = await fs.stat(weightsPath);
  return {
    format: 'loupe-model',
    formatVersion: 1,
    converterVersion: CONVERTER_VERSION,
    name: options.name ?? path.basename(path.resolve(outDir)),
    architecture: 'gpt2',
    dims: checkpoint.config,
    opset: OPSET,
    graphs: { ...GRAPH_FILES },
    weightsFile: WEIGHTS_FILE,
    hooks: hookSpecs(checkpoint.config),
    tokenizer: { vocab: 'vocab.json', merges: 'merges.txt', endOfTextId: vocab['<|endoftext|>'] ?? null },
    source: {
      sha256: await sha256File(weightsPath),
      bytes: stats.size,
      dtypes: [...new Set([...checkpoint.tensors.values()].map((t) => t.dtype))],
      tiedUnembedding: checkpoint.tiedUnembedding,
      ...options.source,
    },
    createdAt: new Date().toISOString(),
  };
}

/**
 * The output folder may be new, empty, or a converted model (replaced only with --force); anything else
 * (a checkpoint, a folder of models, the checkpoint itself) is refused, never deleted.
 */
async function checkOutputFolder(checkpointDir: string, outDir: string, force: boolean): Promise<void> {
  const out = path.resolve(outDir);
  if (out === path.resolve(checkpointDir))
    throw new UserInputError(`--out ${outDir} is the checkpoint folder itself`);
  const entries = await fs.readdir(out).catch(() => null);
  if (entries === null || entries.length === 0) return;
  if (!entries.includes(MANIFEST_FILE)) {
    throw new UserInputError(
      `${outDir} is not empty and holds no converted model; choose a new or empty folder`,
    );
  }
  if (!force)
    throw new UserInputError(`${outDir} already holds a converted model; pass --force to replace it`);
}

/** Swaps the new folder in: the old model is moved aside first and deleted last, so a crash leaves one. */
async function replaceFolder(staging: string, outDir: string): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(outDir)), { recursive: true });
  const aside = `${outDir.replace(/\/+$/, '')}.old-${process.pid}`;
  const hadOld = await exists(outDir);
  if (hadOld) await fs.rename(outDir, aside);
  await fs.rename(staging, outDir);
  if (hadOld) await fs.rm(aside, { recursive: true, force: true });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
