import type { CaptureApi, ExplainerApi, SaeApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Resolver, Subscription } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import { callExplainer } from '../explainer/explainer.js';
import { progress } from '../jobs/progress.js';
import { LIMITS } from '../limits/limits.js';
import { callSae } from '../sae/sae.js';
import { CAPTURE, EXPLAINER, SAE } from '../tokens.js';
import { job as captureJob } from './capture-jobs.resolver.js';
import { scoringJobView } from './explanation-views.js';
import { trainingJob } from './training-jobs.resolver.js';

/** Live job progress over graphql-ws: the gateway polls the service's Get*Job and pushes each change. */
@Resolver('Subscription')
export class ProgressSubscriptions {
  constructor(
    @Inject(CAPTURE) private readonly capture: CaptureApi,
    @Inject(SAE) private readonly sae: SaeApi,
    @Inject(EXPLAINER) private readonly explainer: ExplainerApi,
  ) {}

  @Subscription('captureJobProgress')
  captureJobProgress(@Args('id') id: string) {
    return progress(
      'captureJobProgress',
      async () => captureJob(await callCapture(() => this.capture.GetCaptureJob({ id }))),
      LIMITS.progressPollMs,
    );
  }

  @Subscription('trainingJobProgress')
  trainingJobProgress(@Args('id') id: string) {
    return progress(
      'trainingJobProgress',
      async () => trainingJob(await callSae(() => this.sae.GetTrainingJob({ id }))),
      LIMITS.progressPollMs,
    );
  }

  @Subscription('scoringJobProgress')
  scoringJobProgress(@Args('id') id: string) {
    return progress(
      'scoringJobProgress',
      async () => scoringJobView(await callExplainer(() => this.explainer.GetJob({ id }))),
      LIMITS.progressPollMs,
    );
  }
}
