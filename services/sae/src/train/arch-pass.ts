import type { Dim, ElementType } from '@loupe/common';
import type { SaeParam } from './dense-sae-ops.js';

/**
 * What one architecture's forward and backward pass leaves in a graph, so the gradient and step graphs
 * can be assembled the same way for all of them.
 */
export interface ArchPass {
  params: readonly SaeParam[];
  /** total loss (reconstruction plus sparsity term), scalar */
  loss: string;
  /** reconstruction term alone */
  mse: string;
  /** raw gradients of `loss`, before any decoder projection */
  grads: Record<string, string>;
  /** 0/1 float [B, m]: which latents fired for which vector; or, for a sparse pass, the counts directly */
  firing: string | FiringCounts;
  /** batch size as a float scalar */
  batch: string;
  /** architecture-specific outputs already named in the graph */
  extraOutputs: { name: string; type: ElementType; shape: Dim[] }[];
  /** whether decoder rows are held at unit norm */
  unitDecoder: boolean;
}

/** What a sparse pass gives instead of a [B, m] firing matrix. */
export interface FiringCounts {
  /** scalar: nonzero latents over the whole batch */
  total: string;
  /** [m]: vectors firing each latent */
  perLatent: string;
}
