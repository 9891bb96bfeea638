import type { ExplainerApi, ExplanationHit__Output } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { callExplainer } from '../explainer/explainer.js';
import { pageConnection, pageWindow } from '../graphql/connection.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkText } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { EXPLAINER } from '../tokens.js';
import { storedExplanationView } from './explanation-views.js';
import { loadUnit } from './units.resolver.js';

/** Explanation search: each hit's unit and its full stored explanation come through the request's loaders. */
@Resolver()
export class SearchQueries {
  constructor(@Inject(EXPLAINER) private readonly explainer: ExplainerApi) {}

  /**
   * The explainer returns the best hits up to a limit, with no offset: a page after a cursor asks for
   * the hits up to the end of that page, plus one to know whether there is a next page.
   */
  @Query('searchExplanations')
  async searchExplanations(
    @Args('query') query: string,
    @Args('semantic') semantic: boolean | undefined,
    @Args('unitPrefix') unitPrefix: string | undefined,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    checkText(query.trim(), 'query', LIMITS.maxExplanationChars);
    const page = pageWindow({ first, after });
    const limit = Math.min(page.start + page.first + 1, LIMITS.maxSearchHits);
    const { hits } = await callExplainer(() =>
      this.explainer.SearchExplanations({
        query,
        limit,
        unitPrefix: unitPrefix ?? '',
        semantic: semantic ?? false,
      }),
    );
    const shown = hits.slice(page.start, page.start + page.first);
    const paged = pageConnection(shown, page.start, hits.length);
    return { edges: paged.edges.map((e) => ({ cursor: e.cursor, hit: e.node })), pageInfo: paged.pageInfo };
  }
}

@Resolver('ExplanationSearchEdge')
export class ExplanationSearchEdgeFields {
  @ResolveField('node')
  node(@Parent() edge: { hit: ExplanationHit__Output }, @Context() ctx: GatewayContext) {
    return loadUnit(edge.hit.unit, ctx);
  }

  @ResolveField('relevance')
  relevance(@Parent() edge: { hit: ExplanationHit__Output }) {
    return edge.hit.relevance;
  }

  /** The whole stored explanation (intervals, provenance): the unit's explanations hold it. */
  @ResolveField('explanation')
  async explanation(@Parent() edge: { hit: ExplanationHit__Output }, @Context() ctx: GatewayContext) {
    const row = (await ctx.loaders.explanations.load(edge.hit.unit)).find((e) => e.id === edge.hit.id);
    if (!row) throw new Error(`the explainer found explanation ${edge.hit.id} but does not list it`);
    return storedExplanationView(row);
  }
}
