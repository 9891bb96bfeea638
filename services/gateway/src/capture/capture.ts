import type { CaptureApi } from '@loupe/common/grpc';
import { fromServiceError } from '../graphql/errors.js';

export type { CaptureApi };

/** One capture RPC whose failure reaches the client as a Loupe error (or an internal one). */
export async function callCapture<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromServiceError(error, 'capture service');
  }
}
