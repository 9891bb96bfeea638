import { CheckpointError } from '@loupe/common';

/** The GPT2Config fields that shape the computation, validated once when a checkpoint is read. */
export interface Gpt2Config {
  vocabSize: number;
  nPositions: number;
  dModel: number;
  nLayer: number;
  nHead: number;
  dMlp: number;
  layerNormEpsilon: number;
  /** Hugging Face ties lm_head to wte unless tie_word_embeddings is false, whatever the file stores */
  tieWordEmbeddings: boolean;
}

const SUPPORTED_ACTIVATIONS = ['gelu_new', 'gelu_pytorch_tanh'];

export function parseGpt2Config(json: unknown, source = 'config.json'): Gpt2Config {
  if (typeof json !== 'object' || json === null)
    throw new CheckpointError(`${source}: expected a JSON object`);
  const raw = json as Record<string, unknown>;
  const int = (field: string, fallback?: number): number => {
    const value = raw[field] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new CheckpointError(
        `${source}: field "${field}" must be a positive integer, got ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  if (raw.model_type !== undefined && raw.model_type !== 'gpt2') {
    throw new CheckpointError(
      `${source}: model_type "${String(raw.model_type)}" is not supported; only "gpt2"`,
    );
  }
  const activation = raw.activation_function ?? 'gelu_new';
  if (typeof activation !== 'string' || !SUPPORTED_ACTIVATIONS.includes(activation)) {
    throw new CheckpointError(
      `${source}: activation_function ${JSON.stringify(activation)} is not supported; expected one of ${SUPPORTED_ACTIVATIONS.join(', ')}`,
    );
  }
  for (const flag of ['scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn'] as const) {
    if (raw[flag] === true) throw new CheckpointError(`${source}: "${flag}": true is not supported`);
  }
  if (raw.scale_attn_weights === false)
    throw new CheckpointError(`${source}: "scale_attn_weights": false is not supported`);
  const dModel = int('n_embd');
  const nHead = int('n_head');
  if (dModel % nHead !== 0)
    throw new CheckpointError(`${source}: n_embd ${dModel} is not divisible by n_head ${nHead}`);
  const epsilon = raw.layer_norm_epsilon ?? 1e-5;
  if (typeof epsilon !== 'number' || !(epsilon > 0)) {
    throw new CheckpointError(`${source}: field "layer_norm_epsilon" must be a positive number`);
  }
  return {
    vocabSize: int('vocab_size'),
    nPositions: int('n_positions', typeof raw.n_ctx === 'number' ? raw.n_ctx : undefined),
    dModel,
    nLayer: int('n_layer'),
    nHead,
    dMlp: raw.n_inner === null || raw.n_inner === undefined ? 4 * dModel : int('n_inner'),
    layerNormEpsilon: epsilon,
    tieWordEmbeddings: raw.tie_word_embeddings !== false,
  };
}
