import type { CaptureApi, Tensor__Output } from '@loupe/common/grpc';
import { fromServiceError } from '@loupe/common/grpc';
import type { SpliceModel } from './spliced-loss.js';

/**
 * The splice's forward passes through the capture service's `Activations` RPC: the clean run asks for
 * the hook and the logits; each addition is one per-position ResidualSteering at the resid_pre hook.
 */
export async function captureSpliceModel(capture: CaptureApi, model: string): Promise<SpliceModel> {
  const info = await capture.ModelInfo({ model }).catch((e) => {
    throw fromServiceError(e, 'capture service');
  });
  const activations = (request: Parameters<CaptureApi['Activations']>[0]) =>
    capture.Activations(request).catch((e) => {
      throw fromServiceError(e, 'capture service');
    });
  return {
    dims: { nLayer: info.nLayer, dModel: info.dModel, vocabSize: info.vocabSize },
    endOfTextId: info.endOfTextId ?? null,
    async clean(ids, hook) {
      const out = await activations({ model, ids: { ids }, hooks: [hook], logits: true });
      return { activations: wireFloats(out.activations[hook]), logits: wireFloats(out.logits) };
    },
    withAdditions(ids, layer, additions) {
      return Promise.all(
        additions.map(async (vector) => {
          const out = await activations({
            model,
            ids: { ids },
            logits: true,
            steering: [{ hook: `blocks.${layer}.hook_resid_pre`, vector: Array.from(vector), strength: 1 }],
          });
          return wireFloats(out.logits);
        }),
      );
    },
  };
}

/** A float32 wire tensor as an aligned Float32Array (the bytes are copied: gRPC buffers may be unaligned). */
export function wireFloats(tensor: Tensor__Output | null | undefined): Float32Array {
  if (tensor?.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${tensor?.dtype}`);
  const copy = new Uint8Array(tensor.data.byteLength);
  copy.set(tensor.data);
  return new Float32Array(copy.buffer);
}
