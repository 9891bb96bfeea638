import type {
  CancelJobRequest__Output,
  ExplainRequest__Output,
  ExplainResponse,
  GetJobRequest__Output,
  ListExplanationsRequest__Output,
  ListExplanationsResponse,
  ListJobsRequest__Output,
  ListScoringJobsResponse,
  ScoreRequest__Output,
  ScoreResponse,
  ScoringJob,
  SearchExplanationsRequest__Output,
  SearchExplanationsResponse,
  SimulateRequest__Output,
  SimulateResponse,
  StartScoringJobRequest__Output,
} from '@loupe/common/grpc';
import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { ExplainerApi } from './explainer-api.js';

/** Translates ExplainerService RPCs to the API provider; no explainer logic lives here. */
@Controller()
export class ExplainerController {
  constructor(private readonly api: ExplainerApi) {}

  @GrpcMethod('ExplainerService', 'Explain')
  explain(request: ExplainRequest__Output): Promise<ExplainResponse> {
    return this.api.explain(request);
  }

  @GrpcMethod('ExplainerService', 'Simulate')
  simulate(request: SimulateRequest__Output): Promise<SimulateResponse> {
    return this.api.simulate(request);
  }

  @GrpcMethod('ExplainerService', 'Score')
  score(request: ScoreRequest__Output): Promise<ScoreResponse> {
    return this.api.score(request);
  }

  @GrpcMethod('ExplainerService', 'StartScoringJob')
  startScoringJob(request: StartScoringJobRequest__Output): Promise<ScoringJob> {
    return this.api.startScoringJob(request);
  }

  @GrpcMethod('ExplainerService', 'GetJob')
  getJob(request: GetJobRequest__Output): Promise<ScoringJob> {
    return this.api.getJob(request);
  }

  @GrpcMethod('ExplainerService', 'CancelJob')
  cancelJob(request: CancelJobRequest__Output): Promise<ScoringJob> {
    return this.api.cancelJob(request);
  }

  @GrpcMethod('ExplainerService', 'ListJobs')
  listJobs(request: ListJobsRequest__Output): Promise<ListScoringJobsResponse> {
    return this.api.listJobs(request);
  }

  @GrpcMethod('ExplainerService', 'SearchExplanations')
  searchExplanations(request: SearchExplanationsRequest__Output): Promise<SearchExplanationsResponse> {
    return this.api.search(request);
  }

  @GrpcMethod('ExplainerService', 'ListExplanations')
  listExplanations(request: ListExplanationsRequest__Output): Promise<ListExplanationsResponse> {
    return this.api.list(request);
  }
}
