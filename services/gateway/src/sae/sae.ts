import type { SaeApi } from '@loupe/common/grpc';
import { fromServiceError } from '../graphql/errors.js';

export type { SaeApi };

/** One SAE service RPC whose failure reaches the client as a Loupe error (or an internal one). */
export async function callSae<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromServiceError(error, 'SAE service');
  }
}
