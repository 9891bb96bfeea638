import { type CaptureApi, captureServiceClient, type SaeApi, saeServiceClient } from '@loupe/common/grpc';

export type { CaptureApi, SaeApi };

/** The production CaptureService client, connected; rejections are grpc ServiceErrors. */
export async function captureClient(address: string): Promise<CaptureApi> {
  const client = captureServiceClient(address);
  await client.ready(60_000);
  return client;
}

/** The production SaeService client, connected; rejections are grpc ServiceErrors. */
export async function saeClient(address: string): Promise<SaeApi> {
  const client = saeServiceClient(address);
  await client.ready(60_000);
  return client;
}

/** Reads a wire tensor back into floats. */
export function floats(tensor: { data: Buffer } | null | undefined): Float32Array {
  if (!tensor) throw new Error('missing tensor');
  const copy = Buffer.from(tensor.data);
  return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
}
