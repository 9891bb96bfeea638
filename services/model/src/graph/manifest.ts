import fs from 'node:fs/promises';
import path from 'node:path';
import { allHooks, hookWidth, parseHook, UserInputError } from '@loupe/common';
import type { Gpt2Config } from '../config/gpt2-config.js';

/** The converted model folder's description: what the runtime, the services and the UI read. */
export const MANIFEST_FILE = 'manifest.json';
/** 1.3.0: research graphs with attention hooks (q, k, v, attn_scores, pattern, z) and patch inputs */
export const CONVERTER_VERSION = '1.3.0';

export const GRAPH_FILES = {
  full: 'model.onnx',
  trunk: 'trunk.onnx',
  fullResearch: 'model-research.onnx',
  trunkResearch: 'trunk-research.onnx',
} as const;
export type GraphKind = keyof typeof GRAPH_FILES;

export interface HookSpec {
  name: string;
  /** symbolic batch and sequence axes, then the hook's width */
  shape: ['batch', 'seq', number];
}

export interface ModelManifest {
  format: 'loupe-model';
  formatVersion: 1;
  converterVersion: string;
  name: string;
  architecture: 'gpt2';
  dims: Gpt2Config;
  opset: number;
  /**
   * full: every hook and logits; trunk: every hook and, switched per layer, per-row statistics of
   * mlp.hook_post (converter 1.1.0 on), no unembedding
   */
  graphs: {
    full: string;
    trunk: string;
    /** converter 1.3.0 on: the same two with attention hooks and patch inputs (gpt2-graph.ts `patching`) */
    fullResearch?: string;
    trunkResearch?: string;
  };
  weightsFile: string;
  hooks: HookSpec[];
  tokenizer: { vocab: string; merges: string; endOfTextId: number | null };
  source: {
    sha256: string;
    bytes: number;
    dtypes: string[];
    tiedUnembedding: boolean;
    repo?: string;
    revision?: string;
    commit?: string;
  };
  createdAt: string;
}

export function hookSpecs(config: Gpt2Config): HookSpec[] {
  return allHooks(config.nLayer).map((name) => ({
    name,
    shape: ['batch', 'seq', hookWidth(parseHook(name, config.nLayer), config)],
  }));
}

export async function readManifest(modelDir: string): Promise<ModelManifest> {
  const file = path.join(modelDir, MANIFEST_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new UserInputError(
      `unknown model "${modelDir}": no ${MANIFEST_FILE} there (convert a checkpoint with \`loupe model convert\`)`,
      'UNKNOWN_MODEL',
    );
  }
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(text) as ModelManifest;
  } catch (error) {
    throw new UserInputError(
      `${file} is not valid JSON (${(error as Error).message}); convert the model again`,
      'UNKNOWN_MODEL',
    );
  }
  if (manifest.format !== 'loupe-model' || manifest.formatVersion !== 1) {
    throw new UserInputError(`${file}: not a Loupe model manifest of format version 1`, 'UNKNOWN_MODEL');
  }
  return manifest;
}
