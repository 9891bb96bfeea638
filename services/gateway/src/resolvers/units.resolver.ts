import { blockHook, LoupeError } from '@loupe/common';
import type {
  CaptureApi,
  LogitToken__Output,
  NeuronConnection__Output,
  NeuronRecordResponse__Output,
  QuantileBin__Output,
} from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import { connection, decodeCursor } from '../graphql/connection.js';
import { type GatewayContext, NEAREST_NEURONS } from '../graphql/context.js';
import { checkCount } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { CAPTURE } from '../tokens.js';
import {
  checkFeature,
  checkNeuron,
  type FeatureRef,
  formatUnitId,
  type NeuronRef,
  parseServedUnitId,
  servedNeuronExample,
} from '../units/unit-id.js';
import { type FeatureView, featureView } from './sae-views.js';
import { recordWindow } from './views.js';

/** The statistics a neuron's page shows, from NeuronRecord or from a ListNeurons row. */
interface NeuronStatsFields {
  maxActivation: number;
  minActivation: number;
  meanActivation: number;
  fractionNonzero: number;
  tokens: number;
  histogram: number[];
}

export interface NeuronView extends NeuronRef {
  __typename: 'Neuron';
  id: string;
  captureJobId: string;
  stats: Omit<NeuronStatsFields, 'histogram'>;
  histogram: { min: number; max: number; counts: number[] };
  /** absent for a neuron from a list: its windows are loaded (through the loader) when asked for */
  record?: NeuronRecordResponse__Output;
}

/** A neuron known by id only (another neuron's neighbour): statistics and windows load when asked for. */
export type NeuronNode = NeuronView | (NeuronRef & { __typename: 'Neuron'; id: string });

/** Connections per list on a neuron's page (the loader's answer holds NEAREST_NEURONS). */
const CONNECTIONS = 10;

/** The neuron of a NeuronNeighbour or NeuronConnection of `model`. */
function neighbourNode(model: string, n: { hook: string; neuron: number }): NeuronNode {
  const layer = Number(/^blocks\.(\d+)\./.exec(n.hook)?.[1]);
  const ref: NeuronRef = {
    kind: 'neuron',
    model,
    hook: blockHook(layer, 'mlp.hook_post'),
    layer,
    index: n.neuron,
  };
  return { __typename: 'Neuron', ...ref, id: formatUnitId(ref) };
}

/** The page's logit tokens as LogitToken objects: a feature's (FeatureStats) or a neuron's (NeuronWeights). */
export function logitTokens(list: LogitToken__Output[]) {
  return list.map((t) => ({ token: { id: t.id, text: t.token }, value: t.value }));
}

/** A neuron with its statistics; the record windows come with `record` or on demand. */
export function neuronView(
  ref: NeuronRef,
  jobId: string,
  s: NeuronStatsFields,
  record?: NeuronRecordResponse__Output,
): NeuronView {
  return {
    __typename: 'Neuron',
    ...ref,
    id: formatUnitId(ref),
    captureJobId: jobId,
    stats: {
      maxActivation: s.maxActivation,
      minActivation: s.minActivation,
      meanActivation: s.meanActivation,
      fractionNonzero: s.fractionNonzero,
      tokens: Number(s.tokens),
    },
    histogram: { min: s.minActivation, max: s.maxActivation, counts: s.histogram },
    record,
  };
}

async function recordOf(neuron: NeuronNode, ctx: GatewayContext): Promise<NeuronRecordResponse__Output> {
  return ('record' in neuron ? neuron.record : undefined) ?? ctx.loaders.neuronRecord.load(neuron.id);
}

/** A neuron's view with its statistics: the one given, or one made from its record. */
async function viewOf(neuron: NeuronNode, ctx: GatewayContext): Promise<NeuronView> {
  if ('stats' in neuron) return neuron;
  const record = await recordOf(neuron, ctx);
  return neuronView(neuron, record.jobId, record, record);
}

/**
 * A feature that exists: its SAE (one GetSae per distinct SAE per request) has that model and index.
 * An unknown SAE is an unknown unit; the message also says where neurons live, in case a hook was meant.
 */
export async function loadFeature(ref: FeatureRef, ctx: GatewayContext): Promise<FeatureView> {
  const sae = await ctx.loaders.sae.load(ref.saeId).catch(async (error: unknown) => {
    if (error instanceof LoupeError && error.code === 'NOT_FOUND')
      throw new LoupeError(
        `unknown unit "${formatUnitId(ref)}": ${error.message}; neurons are model/blocks.{L}.mlp.hook_post/index, e.g. ${await servedNeuronExample(ctx)}`,
        'NOT_FOUND',
      );
    throw error;
  });
  checkFeature(ref, sae);
  return featureView(sae, ref.index);
}

/** A unit by id: shape checked here, then checked against its model (neuron) or its SAE (feature). */
export async function loadUnit(id: string, ctx: GatewayContext): Promise<NeuronView | FeatureView> {
  const ref = await parseServedUnitId(id, ctx);
  if (ref.kind === 'feature') return loadFeature(ref, ctx);
  checkNeuron(ref, await ctx.loaders.modelInfo.load(ref.model));
  const record = await ctx.loaders.neuronRecord.load(formatUnitId(ref));
  return neuronView(ref, record.jobId, record, record);
}

@Resolver('Query')
export class UnitQueries {
  @Query('unit')
  unit(@Args('id') id: string, @Context() ctx: GatewayContext) {
    return loadUnit(id, ctx);
  }

  @Query('units')
  units(@Args('ids') ids: string[], @Context() ctx: GatewayContext) {
    checkCount(ids.length, 'units', LIMITS.maxUnits);
    return Promise.all(ids.map((id) => loadUnit(id, ctx)));
  }
}

@Resolver('Unit')
export class UnitType {
  @ResolveField('__resolveType')
  resolveType(unit: { __typename: string }): string {
    return unit.__typename;
  }
}

/** Neighbour lists of either kind of unit carry their type name (Feature… or Neuron…). */
@Resolver('UnitNeighbourConnection')
export class UnitNeighbourConnectionType {
  @ResolveField('__resolveType')
  resolveType(list: { __typename: string }): string {
    return list.__typename;
  }
}

@Resolver('UnitNeighbourEdge')
export class UnitNeighbourEdgeType {
  @ResolveField('__resolveType')
  resolveType(edge: { __typename: string }): string {
    return edge.__typename;
  }
}

@Resolver('Neuron')
export class NeuronFields {
  constructor(@Inject(CAPTURE) private readonly capture: CaptureApi) {}

  @ResolveField('captureJobId')
  async captureJobId(@Parent() neuron: NeuronNode, @Context() ctx: GatewayContext) {
    return (await viewOf(neuron, ctx)).captureJobId;
  }

  @ResolveField('stats')
  async stats(@Parent() neuron: NeuronNode, @Context() ctx: GatewayContext) {
    return (await viewOf(neuron, ctx)).stats;
  }

  @ResolveField('histogram')
  async histogram(@Parent() neuron: NeuronNode, @Context() ctx: GatewayContext) {
    return (await viewOf(neuron, ctx)).histogram;
  }

  @ResolveField('positiveLogits')
  async positiveLogits(@Parent() neuron: NeuronNode, @Context() ctx: GatewayContext) {
    return logitTokens((await ctx.loaders.neuronWeights.load(neuron.id)).positiveLogits);
  }

  @ResolveField('negativeLogits')
  async negativeLogits(@Parent() neuron: NeuronNode, @Context() ctx: GatewayContext) {
    return logitTokens((await ctx.loaders.neuronWeights.load(neuron.id)).negativeLogits);
  }

  @ResolveField('positiveInputTokens')
  async positiveInputTokens(@Parent() neuron: NeuronNode, @Context() ctx: GatewayContext) {
    return logitTokens((await ctx.loaders.neuronWeights.load(neuron.id)).positiveInputTokens);
  }

  @ResolveField('negativeInputTokens')
  async negativeInputTokens(@Parent() neuron: NeuronNode, @Context() ctx: GatewayContext) {
    return logitTokens((await ctx.loaders.neuronWeights.load(neuron.id)).negativeInputTokens);
  }

  @ResolveField('connections')
  async connections(@Parent() neuron: NeuronNode, @Context() ctx: GatewayContext) {
    const weights = await ctx.loaders.neuronWeights.load(neuron.id);
    const list = (connections: NeuronConnection__Output[]) =>
      connections.slice(0, CONNECTIONS).map((c) => ({
        neuron: neighbourNode(neuron.model, c),
        weight: c.weight,
      }));
    return {
      upstreamPositive: list(weights.upstreamPositive),
      upstreamNegative: list(weights.upstreamNegative),
      downstreamPositive: list(weights.downstreamPositive),
      downstreamNegative: list(weights.downstreamNegative),
    };
  }

  /**
   * Neurons whose output directions are nearest by cosine, of the same layer or of every layer. The
   * loader's answer holds the first NEAREST_NEURONS of both lists; a page past them asks the capture
   * service for the neighbours up to the end of that page (plus one, to know whether there is a next).
   */
  @ResolveField('nearest')
  async nearest(
    @Parent() neuron: NeuronNode,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Args('acrossLayers') acrossLayers: boolean | undefined,
    @Context() ctx: GatewayContext,
  ) {
    const model = await ctx.loaders.modelInfo.load(neuron.model);
    const others = (acrossLayers ? model.nLayer * model.dMlp : model.dMlp) - 1;
    const page = Math.min(Math.max(first ?? LIMITS.defaultPage, 0), LIMITS.maxPage);
    // the capture service gives at most the 1,000 nearest, and no more than a layer has in either list
    const wanted = Math.min((after ? decodeCursor(after) + 1 : 0) + page + 1, others, model.dMlp - 1, 1000);
    const weights =
      wanted <= NEAREST_NEURONS
        ? await ctx.loaders.neuronWeights.load(neuron.id)
        : await callCapture(() =>
            this.capture.NeuronWeights({
              model: neuron.model,
              hook: neuron.hook,
              neuron: neuron.index,
              k: wanted,
            }),
          );
    const list = acrossLayers ? weights.nearestInModel : weights.nearestInLayer;
    const edges = list.map((n) => ({ node: neighbourNode(neuron.model, n), cosine: n.cosine }));
    const paged = connection(edges, { first, after });
    return {
      __typename: 'NeuronNeighbourConnection',
      edges: paged.edges.map((e) => ({
        __typename: 'NeuronNeighbourEdge',
        cursor: e.cursor,
        node: e.node.node,
        cosine: e.node.cosine,
      })),
      pageInfo: paged.pageInfo,
      totalCount: others,
    };
  }

  @ResolveField('top')
  async top(
    @Parent() neuron: NeuronNode,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    return connection((await recordOf(neuron, ctx)).top.map(recordWindow), { first, after });
  }

  @ResolveField('random')
  async random(
    @Parent() neuron: NeuronNode,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    return connection((await recordOf(neuron, ctx)).random.map(recordWindow), { first, after });
  }

  @ResolveField('quantiles')
  async quantiles(
    @Parent() neuron: NeuronNode,
    @Context() ctx: GatewayContext,
  ): Promise<QuantileBin__Output[]> {
    return (await recordOf(neuron, ctx)).quantiles;
  }

  @ResolveField('modelInfo')
  modelInfo(@Parent() neuron: NeuronNode, @Context() ctx: GatewayContext) {
    return ctx.loaders.modelInfo.load(neuron.model);
  }
}

@Resolver('QuantileBin')
export class QuantileBinFields {
  @ResolveField('windows')
  windows(
    @Parent() bin: QuantileBin__Output,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    return connection(bin.windows.map(recordWindow), { first, after });
  }
}
