import { LoupeError, UserInputError } from '@loupe/common';
import type { DocumentCollection__Output, SaeApi, SaeInfo__Output } from '@loupe/common/grpc';
import type { GatewayContext } from '../graphql/context.js';
import { callSae } from '../sae/sae.js';

export type SaeChoice = 'ARGUMENT' | 'WORKSPACE' | 'HOOK' | 'NONE';

export interface ChosenSae {
  info: SaeInfo__Output | null;
  choice: SaeChoice;
}

/** An SAE of an imported checkpoint may not know its model ('unknown'): it is taken at its word. */
function sameModel(info: SaeInfo__Output, model: string): boolean {
  return info.model === model || info.model === 'unknown';
}

/**
 * The SAE that explains a search: the one asked for; else the demo workspace's SAE when it reads the
 * collection's hook (the features a first-run user has explanations for); else the newest SAE of the
 * collection's model on that hook; else none (the search still runs, without features).
 */
export async function chooseSae(
  saeId: string | null | undefined,
  collection: DocumentCollection__Output,
  workspaceSaeId: string | null,
  ctx: GatewayContext,
  sae: SaeApi,
): Promise<ChosenSae> {
  if (saeId) {
    const info = await ctx.loaders.sae.load(saeId);
    if (!sameModel(info, collection.model))
      throw new UserInputError(
        `SAE "${saeId}" is an SAE of model ${info.model}, but collection "${collection.name}" was embedded with ${collection.model}: choose an SAE of ${collection.model}`,
      );
    return { info, choice: 'ARGUMENT' };
  }
  if (workspaceSaeId) {
    const info = await ctx.loaders.sae.load(workspaceSaeId).catch((error: unknown) => {
      // a workspace still training (or whose SAE was deleted) simply has no SAE yet
      if (error instanceof LoupeError && error.code === 'NOT_FOUND') return null;
      throw error;
    });
    if (info && info.hook === collection.hook && sameModel(info, collection.model))
      return { info, choice: 'WORKSPACE' };
  }
  const { saes } = await callSae(() => sae.ListSaes({ model: collection.model, hook: collection.hook }));
  const newest = saes.reduce<SaeInfo__Output | null>(
    (best, s) => (best === null || s.createdAt > best.createdAt ? s : best),
    null,
  );
  return newest ? { info: newest, choice: 'HOOK' } : { info: null, choice: 'NONE' };
}
