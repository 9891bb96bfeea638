import { UserInputError } from '@loupe/common';
import type { SaeApi, TrainingJob__Output, TrainRequest } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import type { GatewayContext } from '../graphql/context.js';
import { checkRange } from '../limits/input-checks.js';
import { callSae } from '../sae/sae.js';
import { SAE } from '../tokens.js';
import { saeView } from './sae-views.js';

interface StartTrainingInput {
  captureJobId?: string | null;
  activationsFile?: string | null;
  hook: string;
  tensor?: string | null;
  architecture: string;
  width: number;
  k?: number | null;
  sparsity?: number | null;
  steps: number;
  batchSize?: number | null;
  lr?: number | null;
  seed?: number | null;
  checkpointEvery?: number | null;
  saeId?: string | null;
}

export function trainingJob(j: TrainingJob__Output) {
  const progress = j.status === 'done' ? 1 : j.steps > 0 ? j.step / j.steps : 0;
  return {
    ...j,
    kind: 'TRAINING' as const,
    progress: Math.min(1, progress),
    tokens: Number(j.tokens),
    saeId: j.saeId || null,
    error: j.error || null,
  };
}

/** The TrainRequest of the input: exactly one source of activations; 0 means "the service's default". */
export function trainRequest(input: StartTrainingInput): TrainRequest {
  if (Boolean(input.captureJobId) === Boolean(input.activationsFile))
    throw new UserInputError(
      'give exactly one source of activations: captureJobId (a finished capture job) or activationsFile ' +
        '(a safetensors file under $LOUPE_DATA_DIR)',
    );
  checkRange(input.width, 'width', 1, 1 << 24);
  checkRange(input.steps, 'steps', 1, 10_000_000);
  return {
    ...(input.captureJobId
      ? { captureJobId: input.captureJobId }
      : { activationsFile: input.activationsFile! }),
    hook: input.hook,
    tensor: input.tensor ?? '',
    architecture: input.architecture,
    width: input.width,
    k: input.k ?? 0,
    sparsity: input.sparsity ?? 0,
    steps: input.steps,
    batchSize: input.batchSize ?? 0,
    lr: input.lr ?? 0,
    seed: input.seed ?? 0,
    checkpointEvery: input.checkpointEvery ?? 0,
    saeId: input.saeId ?? '',
  };
}

/** SAE training jobs: starting one needs an API key; reading its status does not. */
@Resolver()
export class TrainingJobResolvers {
  constructor(@Inject(SAE) private readonly sae: SaeApi) {}

  @Query('trainingJob')
  async trainingJob(@Args('id') id: string) {
    return trainingJob(await callSae(() => this.sae.GetTrainingJob({ id })));
  }

  @Mutation('startTraining')
  async startTraining(@Args('input') input: StartTrainingInput, @Context() ctx: GatewayContext) {
    await ctx.requireApiKey();
    const request = trainRequest(input);
    return trainingJob(await callSae(() => this.sae.Train(request)));
  }
}

@Resolver('TrainingJob')
export class TrainingJobFields {
  /** The trained SAE once the job made one. */
  @ResolveField('sae')
  async sae(@Parent() job: { saeId: string | null }, @Context() ctx: GatewayContext) {
    return job.saeId ? saeView(await ctx.loaders.sae.load(job.saeId)) : null;
  }
}
