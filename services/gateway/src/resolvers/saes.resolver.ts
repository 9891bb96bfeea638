import { UserInputError } from '@loupe/common';
import type { ModelInfoResponse__Output, SaeApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { connection } from '../graphql/connection.js';
import type { GatewayContext } from '../graphql/context.js';
import { callSae } from '../sae/sae.js';
import { SAE } from '../tokens.js';
import { type SaeView, saeView } from './sae-views.js';
import { loadFeature } from './units.resolver.js';

/** One ListSaes call per connection field; the SAE service filters by model and hook. */
async function saeConnection(
  sae: SaeApi,
  filter: { model?: string | null; hook?: string | null },
  page: { first?: number; after?: string },
) {
  const { saes } = await callSae(() => sae.ListSaes({ model: filter.model ?? '', hook: filter.hook ?? '' }));
  return connection(saes.map(saeView), page);
}

@Resolver('Query')
export class SaeQueries {
  constructor(@Inject(SAE) private readonly sae: SaeApi) {}

  @Query('saes')
  saes(
    @Args('model') model: string | undefined,
    @Args('hook') hook: string | undefined,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    return saeConnection(this.sae, { model, hook }, { first, after });
  }

  @Query('sae')
  async saeById(@Args('id') id: string, @Context() ctx: GatewayContext) {
    return saeView(await ctx.loaders.sae.load(id));
  }
}

@Resolver('ModelInfo')
export class ModelSaeFields {
  constructor(@Inject(SAE) private readonly sae: SaeApi) {}

  @ResolveField('saes')
  saes(
    @Parent() model: ModelInfoResponse__Output,
    @Args('hook') hook: string | undefined,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    return saeConnection(this.sae, { model: model.name, hook }, { first, after });
  }
}

@Resolver('Sae')
export class SaeFields {
  constructor(@Inject(SAE) private readonly sae: SaeApi) {}

  @ResolveField('featureDensity')
  async featureDensity(@Parent() sae: SaeView) {
    if (!sae.hasFeatureRecords) return null;
    const density = await callSae(() => this.sae.FeatureDensity({ id: sae.id }));
    return { ...density, tokens: Number(density.tokens) };
  }

  @ResolveField('modelInfo')
  modelInfo(@Parent() sae: SaeView, @Context() ctx: GatewayContext) {
    return ctx.loaders.modelInfo.load(sae.model === 'unknown' ? '' : sae.model);
  }

  @ResolveField('feature')
  feature(@Parent() sae: SaeView, @Args('index') index: number, @Context() ctx: GatewayContext) {
    if (!Number.isInteger(index) || index < 0)
      throw new UserInputError(`index must be 0 or more, got ${index}`);
    return loadFeature({ kind: 'feature', model: sae.model, saeId: sae.id, index }, ctx);
  }
}
