import { parseUnitId } from '@loupe/common';
import {
  type CaptureApi,
  captureServiceClient,
  fromServiceError,
  type SaeApi,
  saeServiceClient,
} from '@loupe/common/grpc';
import type { ActivationRecord, UnitRecords } from '../records/records.js';

// Records are a few hundred windows; a service that takes longer than this is stuck.
const DEADLINE_MS = 60_000;

/** Where a unit's records come from when a request does not carry them. */
export interface RecordSource {
  records(unit: string): Promise<UnitRecords>;
}

interface Window {
  window: number;
  tokens: string[];
  values: number[];
}

const toRecords = (side: string, windows: Window[]): ActivationRecord[] =>
  windows.map((w) => ({ id: `${side}:window:${w.window}`, tokens: w.tokens, activations: w.values }));

/** Neuron records from the capture service, feature records from the SAE service, over gRPC. */
export class GrpcRecordSource implements RecordSource {
  private capture?: CaptureApi;
  private sae?: SaeApi;

  constructor(private readonly addresses: { capture: string; sae: string }) {}

  async records(unit: string): Promise<UnitRecords> {
    const ref = parseUnitId(unit);
    if (ref.kind === 'neuron') {
      this.capture ??= captureServiceClient(this.addresses.capture);
      const reply = await this.capture
        .NeuronRecord({ model: ref.model, hook: ref.hook, neuron: ref.index }, { deadlineMs: DEADLINE_MS })
        .catch((error) => Promise.reject(fromServiceError(error, 'capture')));
      return { top: toRecords('top', reply.top), random: toRecords('random', reply.random) };
    }
    this.sae ??= saeServiceClient(this.addresses.sae);
    const reply = await this.sae
      .FeatureRecords({ saeId: ref.saeId, feature: ref.index }, { deadlineMs: DEADLINE_MS })
      .catch((error) => Promise.reject(fromServiceError(error, 'sae')));
    return { top: toRecords('top', reply.top), random: toRecords('random', reply.random) };
  }

  close(): void {
    this.capture?.close();
    this.sae?.close();
  }
}
