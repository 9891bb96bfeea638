import type { SaeApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Parent, ResolveField, Resolver } from '@nestjs/graphql';
import { connection, decodeCursor } from '../graphql/connection.js';
import type { GatewayContext } from '../graphql/context.js';
import { LIMITS } from '../limits/limits.js';
import { callSae } from '../sae/sae.js';
import { SAE } from '../tokens.js';
import { type FeatureView, featureView, saeView } from './sae-views.js';
import { logitTokens } from './units.resolver.js';
import { recordWindow } from './views.js';

@Resolver('Feature')
export class FeatureFields {
  constructor(@Inject(SAE) private readonly sae: SaeApi) {}

  @ResolveField('sae')
  saeField(@Parent() feature: FeatureView) {
    return saeView(feature.saeInfo);
  }

  /**
   * UnitStats of a feature: frequency is fractionNonzero; features are never negative (ReLU, TopK and
   * JumpReLU SAEs), so the minimum is 0 unless the feature fires on every token (then it is unknown).
   */
  @ResolveField('stats')
  async stats(@Parent() feature: FeatureView, @Context() ctx: GatewayContext) {
    const s = feature.listed ?? (await ctx.loaders.featureStats.load(feature.id));
    return {
      maxActivation: s.maxActivation,
      minActivation: s.frequency < 1 ? 0 : null,
      meanActivation: s.meanActivation,
      fractionNonzero: s.frequency,
      tokens: Number(s.tokens),
    };
  }

  /** Counts over equal bins from 0 to the max of the non-zero values (the SAE service's histogram). */
  @ResolveField('histogram')
  async histogram(@Parent() feature: FeatureView, @Context() ctx: GatewayContext) {
    const s = feature.listed ?? (await ctx.loaders.featureStats.load(feature.id));
    return { min: 0, max: s.maxActivation, counts: s.histogram };
  }

  @ResolveField('positiveLogits')
  async positiveLogits(@Parent() feature: FeatureView, @Context() ctx: GatewayContext) {
    return logitTokens((await ctx.loaders.featureStats.load(feature.id)).positiveLogits);
  }

  @ResolveField('negativeLogits')
  async negativeLogits(@Parent() feature: FeatureView, @Context() ctx: GatewayContext) {
    return logitTokens((await ctx.loaders.featureStats.load(feature.id)).negativeLogits);
  }

  @ResolveField('top')
  async top(
    @Parent() feature: FeatureView,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    const records = await ctx.loaders.featureRecords.load(feature.id);
    return connection(records.top.map(recordWindow), { first, after });
  }

  @ResolveField('random')
  async random(
    @Parent() feature: FeatureView,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    const records = await ctx.loaders.featureRecords.load(feature.id);
    return connection(records.random.map(recordWindow), { first, after });
  }

  @ResolveField('quantiles')
  async quantiles(@Parent() feature: FeatureView, @Context() ctx: GatewayContext) {
    return (await ctx.loaders.featureRecords.load(feature.id)).quantiles;
  }

  /**
   * Features whose decoder directions are nearest (cosine) to this one's, from the SAE service's
   * index. A page after a cursor asks for the neighbours up to the end of that page (plus one, to know
   * whether there is a next page); totalCount is every other feature of the SAE.
   */
  @ResolveField('nearest')
  async nearest(
    @Parent() feature: FeatureView,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    const page = first ?? LIMITS.defaultPage;
    const start = after ? decodeCursor(after) + 1 : 0;
    const others = feature.saeInfo.dSae - 1;
    // the connection helper checks first's range; ask the service for no more than it can give
    const k = Math.max(1, Math.min(start + Math.min(Math.max(page, 0), LIMITS.maxPage) + 1, others));
    const { neighbours } = await callSae(() =>
      this.sae.NearestFeatures({ saeId: feature.saeId, feature: feature.index, k }),
    );
    const edges = neighbours.map((n) => ({
      node: featureView(feature.saeInfo, n.feature),
      cosine: n.cosine,
    }));
    const paged = connection(edges, { first, after });
    return {
      __typename: 'FeatureNeighbourConnection',
      edges: paged.edges.map((e) => ({
        __typename: 'FeatureNeighbourEdge',
        cursor: e.cursor,
        node: e.node.node,
        cosine: e.node.cosine,
      })),
      pageInfo: paged.pageInfo,
      totalCount: others,
    };
  }
}
