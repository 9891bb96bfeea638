import * as grpc from '@grpc/grpc-js';
import {
  type ActivationsRequest,
  type ActivationsResponse__Output,
  type CaptureJob__Output,
  type CaptureProto,
  type GenerateRequest,
  type GenerateResponse__Output,
  type GetCaptureJobRequest,
  loadProto,
  type ModelInfoRequest,
  type ModelInfoResponse__Output,
  type NeuronRecordRequest,
  type NeuronRecordResponse__Output,
  type StartCaptureRequest,
  type TokenizeRequest,
  type TokenizeResponse__Output,
} from '@loupe/common/grpc';

/** The CaptureService with promise-returning methods; rejections are grpc ServiceErrors. */
export interface CaptureApi {
  ModelInfo(request: ModelInfoRequest): Promise<ModelInfoResponse__Output>;
  Tokenize(request: TokenizeRequest): Promise<TokenizeResponse__Output>;
  Activations(request: ActivationsRequest): Promise<ActivationsResponse__Output>;
  Generate(request: GenerateRequest): Promise<GenerateResponse__Output>;
  StartCapture(request: StartCaptureRequest): Promise<CaptureJob__Output>;
  GetCaptureJob(request: GetCaptureJobRequest): Promise<CaptureJob__Output>;
  NeuronRecord(request: NeuronRecordRequest): Promise<NeuronRecordResponse__Output>;
  close(): void;
}

/** A CaptureService client whose methods return promises; errors are grpc ServiceErrors. */
export async function captureClient(address: string): Promise<CaptureApi> {
  const proto = loadProto<CaptureProto>('capture');
  const client = new proto.loupe.v1.CaptureService(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 512 * 1024 * 1024,
  });
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 60_000, (error) => (error ? reject(error) : resolve())),
  );
  const call = (method: string) => (request: unknown) =>
    new Promise((resolve, reject) => {
      (client as unknown as Record<string, (r: unknown, cb: (e: unknown, v: unknown) => void) => void>)[
        method
      ](request, (error, value) => (error ? reject(error) : resolve(value)));
    });
  const methods = Object.fromEntries(
    ['ModelInfo', 'Tokenize', 'Activations', 'Generate', 'StartCapture', 'GetCaptureJob', 'NeuronRecord'].map(
      (name) => [name, call(name)],
    ),
  ) as unknown as Omit<CaptureApi, 'close'>;
  return { ...methods, close: () => client.close() };
}

/** Reads a wire tensor back into floats. */
export function floats(tensor: { data: Buffer } | null | undefined): Float32Array {
  if (!tensor) throw new Error('missing tensor');
  const copy = Buffer.from(tensor.data);
  return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
}
