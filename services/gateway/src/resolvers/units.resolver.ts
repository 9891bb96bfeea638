import type { NeuronRecordResponse__Output, QuantileBin__Output } from '@loupe/common/grpc';
import { Args, Context, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { connection } from '../graphql/connection.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkCount } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { checkNeuron, formatUnitId, type NeuronRef, parseUnitId } from '../units/unit-id.js';
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

/** A unit by id: shape checked here, neuron checked against the model, records from the capture service. */
async function loadUnit(id: string, ctx: GatewayContext): Promise<NeuronView> {
  const ref = parseUnitId(id);
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
  /** Neurons today; SAE features will say 'Feature'. */
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
