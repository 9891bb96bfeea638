import { LoupeError, UserInputError } from '@loupe/common';
import type { CaptureApi, ExplainerApi, SaeApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Mutation, ResolveField, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import { callExplainer } from '../explainer/explainer.js';
import type { GatewayContext } from '../graphql/context.js';
import type { JobKind } from '../jobs/job-list.js';
import { callSae } from '../sae/sae.js';
import { CAPTURE, EXPLAINER, SAE } from '../tokens.js';
import { job as captureJob } from './capture-jobs.resolver.js';
import { scoringJobView } from './explanation-views.js';
import { trainingJob } from './training-jobs.resolver.js';

type Kind = 'CaptureJob' | 'TrainingJob' | 'ScoringJob';
const TYPE_OF: Record<JobKind, Kind> = {
  CAPTURE: 'CaptureJob',
  TRAINING: 'TrainingJob',
  SCORING: 'ScoringJob',
};

/**
 * cancelJob for every kind of job. Job ids are random UUIDs, so the one service that knows the id owns
 * the job: each is asked, and the owner cancels it. A service that cannot be reached only matters when
 * no other one knows the id.
 */
@Resolver()
export class CancelJobResolvers {
  constructor(
    @Inject(CAPTURE) private readonly capture: CaptureApi,
    @Inject(SAE) private readonly sae: SaeApi,
    @Inject(EXPLAINER) private readonly explainer: ExplainerApi,
  ) {}

  @Mutation('cancelJob')
  async cancelJob(@Args('id') id: string, @Context() ctx: GatewayContext) {
    await ctx.requireApiKey();
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id))
      throw new UserInputError(`"${id}" is not a job id (a UUID)`);
    const lookups: [Kind, () => Promise<unknown>][] = [
      ['CaptureJob', () => callCapture(() => this.capture.GetCaptureJob({ id }))],
      ['TrainingJob', () => callSae(() => this.sae.GetTrainingJob({ id }))],
      ['ScoringJob', () => callExplainer(() => this.explainer.GetJob({ id }))],
    ];
    const found = await Promise.allSettled(lookups.map(([, look]) => look()));
    const owner = found.findIndex((r) => r.status === 'fulfilled');
    if (owner < 0) {
      const down = found.find(
        (r): r is PromiseRejectedResult => r.status === 'rejected' && !isNotFound(r.reason),
      );
      if (down) throw down.reason;
      throw new LoupeError(
        `unknown job ${id} (no capture, training or scoring job has this id)`,
        'NOT_FOUND',
      );
    }
    switch (lookups[owner][0]) {
      case 'CaptureJob':
        return captureJob(await callCapture(() => this.capture.CancelCaptureJob({ id })));
      case 'TrainingJob':
        return trainingJob(await callSae(() => this.sae.CancelTrainingJob({ id })));
      default:
        return scoringJobView(await callExplainer(() => this.explainer.CancelJob({ id })));
    }
  }
}

/** Every job view carries its kind (capture-jobs, training-jobs resolvers, explanation-views). */
@Resolver('Job')
export class JobType {
  @ResolveField('__resolveType')
  resolveType(job: { kind: JobKind }): Kind {
    return TYPE_OF[job.kind];
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof LoupeError && error.code === 'NOT_FOUND';
}
