import { LoupeError } from '@loupe/common';
import type { ExplainerApi, PublishedNeuron__Output, PublishedRecord__Output } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { callExplainer } from '../explainer/explainer.js';
import { connection, pageConnection, pageWindow } from '../graphql/connection.js';
import type { GatewayContext } from '../graphql/context.js';
import { EXPLAINER } from '../tokens.js';
import { storedExplanationView } from './explanation-views.js';

/**
 * A published neuron: from a list, its summary only (the rest is fetched when a field asks for it,
 * once per object); from GetPublishedNeuron, all of it.
 */
interface PublishedNode {
  unitId: string;
  layer: number;
  neuron: number;
  bestScore: number | null;
  bestExplanation: string | null;
  maxActivation: number | null;
  full?: Promise<PublishedNeuron__Output>;
}

const orNull = (v: number | null | undefined) => (v === undefined || v === null ? null : v);

function node(full: PublishedNeuron__Output): PublishedNode {
  return {
    unitId: full.unit,
    layer: full.layer,
    neuron: full.neuron,
    bestScore: orNull(full.bestScore),
    bestExplanation: full.bestExplanation || null,
    maxActivation: orNull(full.maxActivation),
    full: Promise.resolve(full),
  };
}

const record = (r: PublishedRecord__Output) => ({
  tokens: r.tokens,
  tokenIds: r.tokenIds.map((id) => (id < 0 ? null : id)),
  activations: r.activations,
});

/** GetPublishedNeuron, or null when the unit was not imported. */
async function published(explainer: ExplainerApi, unit: string): Promise<PublishedNeuron__Output | null> {
  return callExplainer(() => explainer.GetPublishedNeuron({ unit })).catch((error: unknown) => {
    if (error instanceof LoupeError && error.code === 'NOT_FOUND') return null;
    throw error;
  });
}

@Resolver()
export class PublishedQueries {
  constructor(@Inject(EXPLAINER) private readonly explainer: ExplainerApi) {}

  @Query('publishedNeuron')
  async publishedNeuron(@Args('unitId') unitId: string) {
    const full = await published(this.explainer, unitId);
    return full ? node(full) : null;
  }

  @Query('publishedNeurons')
  async publishedNeurons(
    @Args('model') model: string,
    @Args('layer') layer: number | undefined,
    @Args('minScore') minScore: number | undefined,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    const page = pageWindow({ first, after });
    const reply = await callExplainer(() =>
      this.explainer.ListPublishedNeurons({
        model,
        layer: layer ?? undefined,
        minScore: minScore ?? undefined,
        offset: page.start,
        // the explainer reads 0 as its default page; an empty page still needs the total
        limit: Math.max(page.first, 1),
      }),
    );
    const nodes: PublishedNode[] = reply.neurons.slice(0, page.first).map((n) => ({
      unitId: n.unit,
      layer: n.layer,
      neuron: n.neuron,
      bestScore: orNull(n.score),
      bestExplanation: n.explanation || null,
      maxActivation: orNull(n.maxActivation),
    }));
    const paged = pageConnection(nodes, page.start, reply.total);
    return {
      edges: paged.edges.map((e) => ({ cursor: e.cursor, node: e.node, score: e.node.bestScore })),
      pageInfo: paged.pageInfo,
      totalCount: reply.total,
    };
  }

  @Query('publishedScoresByLayer')
  async publishedScoresByLayer(
    @Args('model') model: string,
    @Args('bins') bins: number | undefined,
    @Args('threshold') threshold: number | undefined,
  ) {
    const reply = await callExplainer(() =>
      this.explainer.PublishedScoresByLayer({ model, bins: bins ?? 0, threshold: threshold ?? undefined }),
    );
    return {
      edges: reply.edges,
      threshold: reply.threshold,
      layers: reply.layers.map((l) => ({ ...l, mean: orNull(l.mean) })),
    };
  }
}

@Resolver('Neuron')
export class NeuronPublishedFields {
  constructor(@Inject(EXPLAINER) private readonly explainer: ExplainerApi) {}

  @ResolveField('published')
  async published(@Parent() neuron: { id: string }) {
    const full = await published(this.explainer, neuron.id);
    return full ? node(full) : null;
  }
}

@Resolver('PublishedNeuron')
export class PublishedNeuronFields {
  constructor(@Inject(EXPLAINER) private readonly explainer: ExplainerApi) {}

  private full(n: PublishedNode): Promise<PublishedNeuron__Output> {
    n.full ??= callExplainer(() => this.explainer.GetPublishedNeuron({ unit: n.unitId }));
    return n.full;
  }

  @ResolveField('source')
  async source(@Parent() n: PublishedNode) {
    return (await this.full(n)).source;
  }

  @ResolveField('publisher')
  async publisher(@Parent() n: PublishedNode) {
    return (await this.full(n)).publisher;
  }

  @ResolveField('mean')
  async mean(@Parent() n: PublishedNode) {
    return orNull((await this.full(n)).mean);
  }

  @ResolveField('variance')
  async variance(@Parent() n: PublishedNode) {
    return orNull((await this.full(n)).variance);
  }

  @ResolveField('skewness')
  async skewness(@Parent() n: PublishedNode) {
    return orNull((await this.full(n)).skewness);
  }

  @ResolveField('kurtosis')
  async kurtosis(@Parent() n: PublishedNode) {
    return orNull((await this.full(n)).kurtosis);
  }

  @ResolveField('quantileBoundaries')
  async quantileBoundaries(@Parent() n: PublishedNode) {
    return (await this.full(n)).quantileBoundaries;
  }

  @ResolveField('top')
  async top(@Parent() n: PublishedNode) {
    return (await this.full(n)).top.map(record);
  }

  @ResolveField('random')
  async random(@Parent() n: PublishedNode) {
    return (await this.full(n)).random.map(record);
  }

  @ResolveField('quantiles')
  async quantiles(@Parent() n: PublishedNode) {
    return (await this.full(n)).quantiles.map((q) => q.records.map(record));
  }

  @ResolveField('explanations')
  async explanations(
    @Parent() n: PublishedNode,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    const list = (await ctx.loaders.explanations.load(n.unitId)).map(storedExplanationView);
    return connection(list, { first, after });
  }
}
