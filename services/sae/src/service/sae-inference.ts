import { UserInputError } from '@loupe/common';
import { DEFAULT_EF_SEARCH } from '@loupe/common/db';
import type {
  DecodeResponse,
  EncodeResponse,
  FeatureValue__Output,
  FeatureWeightsResponse,
  NearestFeaturesResponse,
  Tensor__Output,
} from '@loupe/common/grpc';
import { Injectable } from '@nestjs/common';
import { wireFloats } from '../eval/capture-splice-model.js';
import { topOverText, topPerToken } from '../features/feature-summary.js';
import { saeLensArchitecture } from '../format/architectures/registry.js';
import { decode } from '../format/sae-forward.js';
import { nearestFeatures } from '../store/sae-store.js';
import { CaptureClient } from './capture-client.js';
import { SaeDatabase } from './database.js';
import { SaeRegistry } from './sae-registry.js';

const DEFAULT_PER_TOKEN = 16;
const DEFAULT_TOP = 20;
const MAX_LIST = 1000;
const DEFAULT_K = 10;
/** pgvector's largest hnsw.ef_search */
const MAX_EF_SEARCH = 1000;

/** Encode, decode and nearest-feature search of one library SAE. */
@Injectable()
export class SaeInference {
  constructor(
    private readonly saes: SaeRegistry,
    private readonly capture: CaptureClient,
    private readonly database: SaeDatabase,
  ) {}

  /** The text's activations at the SAE's hook come from the capture service; ONNX Runtime encodes them. */
  async encode(request: {
    saeId: string;
    text: string;
    perToken: number;
    top: number;
  }): Promise<EncodeResponse> {
    const perToken = count(request.perToken, DEFAULT_PER_TOKEN, 'per_token');
    const top = count(request.top, DEFAULT_TOP, 'top');
    const loaded = await this.saes.get(request.saeId);
    const { record, sae } = loaded;
    if (request.text === '') throw new UserInputError('text is empty');
    const { ids, tokens, values } = await this.capture.activations(
      captureModel(record.model),
      request.text,
      record.hook,
    );
    const rows = ids.length;
    if (values.length !== rows * record.dIn) {
      throw new UserInputError(
        `${record.hook} of model ${record.model} is ${rows ? values.length / rows : 0} wide, but SAE "${record.id}" reads ${record.dIn} values`,
      );
    }
    const acts = await (await loaded.encoder()).encode(values, rows);
    const perRow = topPerToken(acts, rows, sae.config.dSae, perToken);
    return {
      tokens: perRow.map((row, t) => ({ id: ids[t], token: tokens[t], features: row.features, l0: row.l0 })),
      top: topOverText(acts, rows, sae.config.dSae, top),
    };
  }

  /**
   * Σ value · W_dec[feature] + b_dec. For a constant_norm_rescale SAE this is in its normalised input
   * space: the raw scale belongs to an input vector that a decode request does not have.
   */
  async decode(request: { saeId: string; features: FeatureValue__Output[] }): Promise<DecodeResponse> {
    const { sae } = await this.saes.get(request.saeId);
    const { dSae } = sae.config;
    const acts = new Float32Array(dSae);
    const seen = new Set<number>();
    for (const { feature, value } of request.features) {
      checkFeature(feature, dSae, request.saeId);
      if (seen.has(feature))
        throw new UserInputError(`feature ${feature} is given twice; give each feature once`);
      if (!Number.isFinite(value))
        throw new UserInputError(`feature ${feature} has value ${value}; values must be finite`);
      seen.add(feature);
      acts[feature] = value;
    }
    return { vector: Array.from(decode(sae, acts, 1)) };
  }

  /** One feature's weights as stored (raw activation space; a training scale is already folded in). */
  async featureWeights(request: { saeId: string; feature: number }): Promise<FeatureWeightsResponse> {
    const { record, sae } = await this.saes.get(request.saeId);
    const { dIn, dSae, architecture, applyBDecToInput, normalizeActivations, k } = sae.config;
    const { W_enc, b_enc, W_dec, b_dec, threshold } = sae.weights;
    const f = request.feature;
    checkFeature(f, dSae, request.saeId);
    return {
      saeId: request.saeId,
      feature: f,
      hook: record.hook,
      architecture,
      normalizeActivations,
      encoderColumn: Array.from({ length: dIn }, (_, j) => W_enc[j * dSae + f]),
      encoderBias: b_enc[f],
      bDec: applyBDecToInput ? Array.from(b_dec) : [],
      decoderRow: Array.from(W_dec.subarray(f * dIn, (f + 1) * dIn)),
      // architectures with a threshold weight (JumpReLU) gate at it; the others at 0
      threshold:
        threshold && saeLensArchitecture(architecture).extraWeights.includes('threshold') ? threshold[f] : 0,
      k: k ?? 0,
    };
  }

  async nearest(request: {
    saeId: string;
    query: 'feature' | 'vector' | undefined;
    feature: number;
    vector: Tensor__Output | null;
    k: number;
    exact: boolean;
    efSearch: number;
  }): Promise<NearestFeaturesResponse> {
    const k = count(request.k, DEFAULT_K, 'k');
    if (!Number.isInteger(request.efSearch) || request.efSearch < 0 || request.efSearch > MAX_EF_SEARCH)
      throw new UserInputError(
        `ef_search must be 0 (the default, ${DEFAULT_EF_SEARCH}) to ${MAX_EF_SEARCH}, got ${request.efSearch}`,
      );
    const { record, sae } = await this.saes.get(request.saeId);
    const { dIn, dSae } = sae.config;
    let query: Float32Array;
    let self: number | undefined;
    if (request.query === 'feature') {
      checkFeature(request.feature, dSae, record.id);
      query = sae.weights.W_dec.slice(request.feature * dIn, (request.feature + 1) * dIn);
      self = request.feature;
    } else if (request.query === 'vector') {
      query = queryVector(request.vector, dIn, record.id);
    } else {
      throw new UserInputError('give a query: a feature index or a vector of d_in values');
    }
    // a feature is its own nearest neighbour: ask for one more and leave it out
    const neighbours = await nearestFeatures(await this.database.sql(), query, {
      k: Math.min(k + (self === undefined ? 0 : 1), dSae),
      saeId: record.id,
      exact: request.exact,
      ...(request.efSearch > 0 ? { efSearch: request.efSearch } : {}),
    });
    return {
      neighbours: neighbours
        .filter((n) => n.index !== self)
        .slice(0, k)
        .map((n) => ({ feature: n.index, cosine: n.similarity })),
    };
  }
}

/** A library SAE's model on the capture service ("unknown" when its cfg named none: the default model). */
export function captureModel(model: string): string {
  return model === 'unknown' ? '' : model;
}

function count(value: number, fallback: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_LIST)
    throw new UserInputError(`${field} must be 0 (the default, ${fallback}) to ${MAX_LIST}, got ${value}`);
  return value === 0 ? fallback : value;
}

export function checkFeature(feature: number, dSae: number, saeId: string): void {
  if (!Number.isInteger(feature) || feature < 0 || feature >= dSae)
    throw new UserInputError(`feature ${feature} does not exist: SAE "${saeId}" has features 0-${dSae - 1}`);
}

function queryVector(tensor: Tensor__Output | null, dIn: number, saeId: string): Float32Array {
  if (!tensor) throw new UserInputError('vector is missing');
  if (tensor.dtype !== 'float32')
    throw new UserInputError(`vector has dtype "${tensor.dtype}"; send float32 (little-endian)`);
  if (tensor.data.byteLength % 4 !== 0)
    throw new UserInputError(
      `vector has ${tensor.data.byteLength} bytes, not a whole number of float32 values`,
    );
  const values = wireFloats(tensor);
  const declared = tensor.shape.reduce((a, b) => a * Number(b), 1);
  if (values.length !== dIn || (tensor.shape.length > 0 && declared !== values.length))
    throw new UserInputError(
      `vector has ${values.length} values (shape [${tensor.shape.join(', ')}]); SAE "${saeId}" has d_in ${dIn}`,
    );
  let norm = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) throw new UserInputError('vector holds a value that is not finite');
    norm += v * v;
  }
  if (norm === 0) throw new UserInputError('vector is all zeros: a cosine needs a direction');
  return values;
}
