import type { IncomingMessage } from 'node:http';
import type { Logger } from '@loupe/common';
import type { CaptureApi, ModelInfoResponse__Output, NeuronRecordResponse__Output } from '@loupe/common/grpc';
import DataLoader from 'dataloader';
import type { ApiKeys } from '../auth/api-key-guard.js';
import { callCapture } from '../capture/capture.js';
import { parseUnitId } from '../units/unit-id.js';

/**
 * What every resolver of one request shares: DataLoaders (so a page of units, or a model asked for
 * by many fields, costs one gRPC call per distinct key) and the API key check.
 */
export interface GatewayContext {
  req: IncomingMessage;
  loaders: Loaders;
  requireApiKey(): Promise<void>;
}

export interface Loaders {
  /** key: model name, '' for the default model */
  modelInfo: DataLoader<string, ModelInfoResponse__Output>;
  /** key: a neuron's unit id */
  neuronRecord: DataLoader<string, NeuronRecordResponse__Output>;
}

/** Settles every key on its own: one unit's error does not fail its neighbours on the page. */
function each<K, V>(rpc: string, log: Logger, load: (key: K) => Promise<V>) {
  return (keys: readonly K[]) => {
    // one line per batch at debug level: how many calls a request really made (the e2e test reads it)
    log.debug({ rpc, keys }, 'capture batch');
    return Promise.all(keys.map((key) => load(key).catch((error: Error) => error)));
  };
}

export function createLoaders(capture: CaptureApi, log: Logger): Loaders {
  return {
    modelInfo: new DataLoader(
      each('ModelInfo', log, (model: string) => callCapture(() => capture.ModelInfo({ model }))),
    ),
    neuronRecord: new DataLoader(
      each('NeuronRecord', log, (id: string) => {
        const ref = parseUnitId(id);
        return callCapture(() =>
          capture.NeuronRecord({ model: ref.model, hook: ref.hook, neuron: ref.index }),
        );
      }),
    ),
  };
}

export function createContext(
  req: IncomingMessage,
  capture: CaptureApi,
  apiKeys: ApiKeys,
  log: Logger,
): GatewayContext {
  return {
    req,
    loaders: createLoaders(capture, log),
    requireApiKey: async () => {
      await apiKeys.require(req.headers.authorization);
    },
  };
}
