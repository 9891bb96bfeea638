import type { ExplainerApi } from '@loupe/common/grpc';
import { fromServiceError } from '../graphql/errors.js';

export type { ExplainerApi };

/** One explainer RPC whose failure reaches the client as a Loupe error (or an internal one). */
export async function callExplainer<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromServiceError(error, 'explainer service');
  }
}
