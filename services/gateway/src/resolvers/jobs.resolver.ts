import type { CaptureApi, ExplainerApi, ListJobsRequest, SaeApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Query, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import { callExplainer } from '../explainer/explainer.js';
import { type JobKind, type JobView, type ListJobs, mergedJobs } from '../jobs/job-list.js';
import { callSae } from '../sae/sae.js';
import { CAPTURE, EXPLAINER, SAE } from '../tokens.js';
import { job as captureJob } from './capture-jobs.resolver.js';
import { scoringJobView } from './explanation-views.js';
import { trainingJob } from './training-jobs.resolver.js';

/** `jobs`: each service's list RPC, merged newest first (jobs/job-list.ts). Reading needs no API key. */
@Resolver()
export class JobsQueries {
  private readonly lists: Record<JobKind, ListJobs<JobView>>;

  constructor(
    @Inject(CAPTURE) capture: CaptureApi,
    @Inject(SAE) sae: SaeApi,
    @Inject(EXPLAINER) explainer: ExplainerApi,
  ) {
    this.lists = {
      CAPTURE: async (request: ListJobsRequest) => {
        const page = await callCapture(() => capture.ListCaptureJobs(request));
        return { ...page, jobs: page.jobs.map(captureJob) };
      },
      TRAINING: async (request: ListJobsRequest) => {
        const page = await callSae(() => sae.ListTrainingJobs(request));
        return { ...page, jobs: page.jobs.map(trainingJob) };
      },
      SCORING: async (request: ListJobsRequest) => {
        const page = await callExplainer(() => explainer.ListJobs(request));
        return { ...page, jobs: page.jobs.map(scoringJobView) };
      },
    };
  }

  @Query('jobs')
  jobs(
    @Args('kind') kind: JobKind | undefined,
    @Args('status') status: string | undefined,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    return mergedJobs(this.lists, { kind, status, first, after });
  }
}
