import { LoupeError } from '@loupe/common';
import type { NeuronRecordResponse__Output, QuantileBin__Output } from '@loupe/common/grpc';
import { Args, Context, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { connection } from '../graphql/connection.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkCount } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import {
  checkFeature,
  checkNeuron,
  type FeatureRef,
  formatUnitId,
  NEURON_EXAMPLE,
  type NeuronRef,
  parseUnitId,
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

async function recordOf(neuron: NeuronView, ctx: GatewayContext): Promise<NeuronRecordResponse__Output> {
  return neuron.record ?? ctx.loaders.neuronRecord.load(neuron.id);
}

/**
 * A feature that exists: its SAE (one GetSae per distinct SAE per request) has that model and index.
 * An unknown SAE is an unknown unit; the message also says where neurons live, in case a hook was meant.
 */
export async function loadFeature(ref: FeatureRef, ctx: GatewayContext): Promise<FeatureView> {
  const sae = await ctx.loaders.sae.load(ref.saeId).catch((error: unknown) => {
    if (error instanceof LoupeError && error.code === 'NOT_FOUND')
      throw new LoupeError(
        `unknown unit "${formatUnitId(ref)}": ${error.message}; neurons are model/blocks.{L}.mlp.hook_post/index, e.g. ${NEURON_EXAMPLE}`,
        'NOT_FOUND',
      );
    throw error;
  });
  checkFeature(ref, sae);
  return featureView(sae, ref.index);
}

/** A unit by id: shape checked here, then checked against its model (neuron) or its SAE (feature). */
export async function loadUnit(id: string, ctx: GatewayContext): Promise<NeuronView | FeatureView> {
  const ref = parseUnitId(id);
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

@Resolver('Neuron')
export class NeuronFields {
  @ResolveField('top')
  async top(
    @Parent() neuron: NeuronView,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    return connection((await recordOf(neuron, ctx)).top.map(recordWindow), { first, after });
  }

  @ResolveField('random')
  async random(
    @Parent() neuron: NeuronView,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    return connection((await recordOf(neuron, ctx)).random.map(recordWindow), { first, after });
  }

  @ResolveField('quantiles')
  async quantiles(
    @Parent() neuron: NeuronView,
    @Context() ctx: GatewayContext,
  ): Promise<QuantileBin__Output[]> {
    return (await recordOf(neuron, ctx)).quantiles;
  }

  @ResolveField('modelInfo')
  modelInfo(@Parent() neuron: NeuronView, @Context() ctx: GatewayContext) {
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
