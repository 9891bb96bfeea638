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

interface NeuronView extends NeuronRef {
  __typename: 'Neuron';
  id: string;
  captureJobId: string;
  stats: {
    maxActivation: number;
    minActivation: number;
    meanActivation: number;
    fractionNonzero: number;
    tokens: number;
  };
  histogram: { min: number; max: number; counts: number[] };
  record: NeuronRecordResponse__Output;
}

function neuronView(ref: NeuronRef, record: NeuronRecordResponse__Output): NeuronView {
  return {
    __typename: 'Neuron',
    ...ref,
    id: formatUnitId(ref),
    captureJobId: record.jobId,
    stats: {
      maxActivation: record.maxActivation,
      minActivation: record.minActivation,
      meanActivation: record.meanActivation,
      fractionNonzero: record.fractionNonzero,
      tokens: Number(record.tokens),
    },
    histogram: { min: record.minActivation, max: record.maxActivation, counts: record.histogram },
    record,
  };
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
async function loadUnit(id: string, ctx: GatewayContext): Promise<NeuronView | FeatureView> {
  const ref = parseUnitId(id);
  if (ref.kind === 'feature') return loadFeature(ref, ctx);
  checkNeuron(ref, await ctx.loaders.modelInfo.load(ref.model));
  return neuronView(ref, await ctx.loaders.neuronRecord.load(formatUnitId(ref)));
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
  top(
    @Parent() neuron: NeuronView,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    return connection(neuron.record.top.map(recordWindow), { first, after });
  }

  @ResolveField('random')
  random(
    @Parent() neuron: NeuronView,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    return connection(neuron.record.random.map(recordWindow), { first, after });
  }

  @ResolveField('quantiles')
  quantiles(@Parent() neuron: NeuronView): QuantileBin__Output[] {
    return neuron.record.quantiles;
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
