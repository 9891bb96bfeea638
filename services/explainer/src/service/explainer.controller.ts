import type {
  CancelJobRequest__Output,
  ExplainRequest__Output,
  ExplainResponse,
  GetJobRequest__Output,
  GetPublishedNeuronRequest__Output,
  ListExplanationsRequest__Output,
  ListExplanationsResponse,
  ListJobsRequest__Output,
  ListPublishedNeuronsRequest__Output,
  ListPublishedNeuronsResponse,
  ListScoringJobsResponse,
  PublishedNeuron,
  PublishedScoresByLayerRequest__Output,
  PublishedScoresByLayerResponse,
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
import { PublishedApi } from './published-api.js';

/** Translates ExplainerService RPCs to the API provider; no explainer logic lives here. */
@Controller()
export class ExplainerController {
  constructor(
    private readonly api: ExplainerApi,
    private readonly published: PublishedApi,
  ) {}

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

  @GrpcMethod('ExplainerService', 'GetPublishedNeuron')
  getPublishedNeuron(request: GetPublishedNeuronRequest__Output): Promise<PublishedNeuron> {
    return this.published.get(request);
  }

  @GrpcMethod('ExplainerService', 'ListPublishedNeurons')
  listPublishedNeurons(request: ListPublishedNeuronsRequest__Output): Promise<ListPublishedNeuronsResponse> {
    return this.published.list(request);
  }

  @GrpcMethod('ExplainerService', 'PublishedScoresByLayer')
  publishedScoresByLayer(
    request: PublishedScoresByLayerRequest__Output,
  ): Promise<PublishedScoresByLayerResponse> {
    return this.published.byLayer(request);
  }
}
