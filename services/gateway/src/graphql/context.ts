import type { IncomingHttpHeaders } from 'node:http';
import { type Logger, UserInputError } from '@loupe/common';
import type {
  CaptureApi,
  ExplainerApi,
  FeatureRecordsResponse__Output,
  FeatureStatsResponse__Output,
  ModelInfoResponse__Output,
  NeuronRecordResponse__Output,
  NeuronWeightsResponse__Output,
  SaeApi,
  SaeInfo__Output,
  StoredExplanation__Output,
} from '@loupe/common/grpc';
import DataLoader from 'dataloader';
import type { ApiKeys } from '../auth/api-key-guard.js';
import type { NeuronRecordCache } from '../cache/neuron-records.js';
import { callCapture } from '../capture/capture.js';
import { callExplainer } from '../explainer/explainer.js';
import { LIMITS } from '../limits/limits.js';
import { callSae } from '../sae/sae.js';
import { parseUnitId } from '../units/unit-id.js';

/**
 * What every resolver of one request shares: DataLoaders (so a page of units, or a model asked for
 * by many fields, costs one gRPC call per distinct key) and the API key check.
 */
export interface GatewayContext {
  loaders: Loaders;
  requireApiKey(): Promise<void>;
}

export interface Loaders {
  /** key: model name, '' for the default model */
  modelInfo: DataLoader<string, ModelInfoResponse__Output>;
  /** key: a neuron's unit id */
  neuronRecord: DataLoader<string, NeuronRecordResponse__Output>;
  /** key: a neuron's unit id; its logit tokens and its NEAREST_NEURONS nearest neurons in both scopes */
  neuronWeights: DataLoader<string, NeuronWeightsResponse__Output>;
  /** key: an SAE id */
  sae: DataLoader<string, SaeInfo__Output>;
  /** key: a feature's unit id (model/sae-id/index) */
  featureStats: DataLoader<string, FeatureStatsResponse__Output>;
  /** key: a feature's unit id (model/sae-id/index) */
  featureRecords: DataLoader<string, FeatureRecordsResponse__Output>;
  /** key: a unit id; its stored explanations, best score first (one ListExplanations per batch) */
  explanations: DataLoader<string, StoredExplanation__Output[]>;
}

/** Nearest neurons the neuronWeights loader asks for: a first page of any size, and one more. */
export const NEAREST_NEURONS = LIMITS.maxPage + 1;

/** Unit ids the explainer lists in one ListExplanations (its own limit). */
const MAX_LIST_UNITS = 1000;

/** Every key of a batch in one ListExplanations: a page of units costs one explainer call. */
export function explanationsBatch(explainer: ExplainerApi, log: Logger) {
  return async (units: readonly string[]): Promise<(StoredExplanation__Output[] | Error)[]> => {
    log.debug({ rpc: 'ListExplanations', keys: units }, 'explainer batch');
    try {
      const { explanations } = await callExplainer(() => explainer.ListExplanations({ units: [...units] }));
      const byUnit = new Map<string, StoredExplanation__Output[]>(units.map((u) => [u, []]));
      for (const e of explanations) byUnit.get(e.unit)?.push(e);
      return units.map((u) => byUnit.get(u)!);
    } catch (error) {
      return units.map(() => error as Error);
    }
  };
}

/**
 * Settles every key on its own: one unit's error does not fail its neighbours on the page. With
 * maxKeys, the loader serves at most that many distinct keys per request (its cache means each batch
 * holds only new keys); the rest fail with a message saying so. This bounds the calls a request can
 * cause where the query's cost cannot (features listed per token of an encoded text).
 */
export function each<K, V>(
  rpc: string,
  log: Logger,
  load: (key: K) => Promise<V>,
  maxKeys = Number.POSITIVE_INFINITY,
) {
  let served = 0;
  return (keys: readonly K[]): Promise<(V | Error)[]> => {
    // one line per batch at debug level: how many calls a request really made (the e2e tests read it)
    log.debug({ rpc, keys }, rpc in SAE_RPCS ? 'sae batch' : 'capture batch');
    return Promise.all(
      keys.map((key) => {
        if (++served > maxKeys)
          return new UserInputError(
            `this request asks for ${rpc} of more than ${maxKeys} distinct units; ask for fewer ` +
              '(a smaller page, fewer ids, or a smaller perToken/top)',
            'TOO_LONG',
          );
        return load(key).catch((error: Error) => error);
      }),
    );
  };
}

const SAE_RPCS = { GetSae: true, FeatureStats: true, FeatureRecords: true };

/** The feature of a feature unit id (the loaders get ids that loadUnit already checked). */
function feature(id: string): { saeId: string; feature: number } {
  const ref = parseUnitId(id);
  if (ref.kind !== 'feature') throw new Error(`${id} is not a feature id`);
  return { saeId: ref.saeId, feature: ref.index };
}

export function createLoaders(
  capture: CaptureApi,
  sae: SaeApi,
  explainer: ExplainerApi,
  log: Logger,
  records?: NeuronRecordCache,
): Loaders {
  return {
    explanations: new DataLoader(explanationsBatch(explainer, log), { maxBatchSize: MAX_LIST_UNITS }),
    modelInfo: new DataLoader(
      each('ModelInfo', log, (model: string) => callCapture(() => capture.ModelInfo({ model }))),
    ),
    neuronRecord: new DataLoader(
      each('NeuronRecord', log, (id: string) => {
        const ref = parseUnitId(id);
        if (ref.kind !== 'neuron') throw new Error(`${id} is not a neuron id`);
        if (records) return records.load(capture, id, ref);
        return callCapture(() =>
          capture.NeuronRecord({ model: ref.model, hook: ref.hook, neuron: ref.index }),
        );
      }),
    ),
    neuronWeights: new DataLoader(
      each(
        'NeuronWeights',
        log,
        (id: string) => {
          const ref = parseUnitId(id);
          if (ref.kind !== 'neuron') throw new Error(`${id} is not a neuron id`);
          return callCapture(() =>
            capture.NeuronWeights({
              model: ref.model,
              hook: ref.hook,
              neuron: ref.index,
              k: NEAREST_NEURONS,
            }),
          );
        },
        LIMITS.maxUnits,
      ),
    ),
    sae: new DataLoader(each('GetSae', log, (id: string) => callSae(() => sae.GetSae({ id })))),
    featureStats: new DataLoader(
      each(
        'FeatureStats',
        log,
        (id: string) => callSae(() => sae.FeatureStats(feature(id))),
        LIMITS.maxUnits,
      ),
    ),
    featureRecords: new DataLoader(
      each(
        'FeatureRecords',
        log,
        (id: string) => callSae(() => sae.FeatureRecords(feature(id))),
        LIMITS.maxUnits,
      ),
    ),
  };
}

export interface Services {
  capture: CaptureApi;
  sae: SaeApi;
  explainer: ExplainerApi;
  apiKeys: ApiKeys;
  log: Logger;
  records?: NeuronRecordCache;
}

/** One context per HTTP request or per subscription (headers of the WebSocket upgrade request). */
export function createContext(headers: IncomingHttpHeaders, services: Services): GatewayContext {
  return {
    loaders: createLoaders(
      services.capture,
      services.sae,
      services.explainer,
      services.log,
      services.records,
    ),
    requireApiKey: async () => {
      await services.apiKeys.require(headers.authorization);
    },
  };
}
