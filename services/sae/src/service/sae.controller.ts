import type {
  DecodeRequest__Output,
  DecodeResponse,
  EncodeRequest__Output,
  EncodeResponse,
  EvalMetrics,
  EvaluateRequest__Output,
  FeatureDensityResponse,
  FeatureRecordsResponse,
  FeatureRequest__Output,
  FeatureStatsResponse,
  FeatureWeightsResponse,
  GetSaeRequest__Output,
  GetTrainingJobRequest__Output,
  ListFeaturesRequest__Output,
  ListFeaturesResponse,
  ListJobsRequest__Output,
  ListSaesRequest__Output,
  ListSaesResponse,
  ListTrainingJobsResponse,
  NearestFeaturesRequest__Output,
  NearestFeaturesResponse,
  SaeInfo,
  TrainingJob,
  TrainRequest__Output,
} from '@loupe/common/grpc';
import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { FeatureData } from './feature-data.js';
import { FeatureList } from './feature-list.js';
import { SaeEvaluation } from './sae-evaluation.js';
import { SaeInference } from './sae-inference.js';
import { toSaeInfo } from './sae-info.js';
import { SaeRegistry } from './sae-registry.js';
import { TrainingJobs } from './training-jobs.js';

/** Translates SaeService RPCs to the providers; no SAE logic lives here. */
@Controller()
export class SaeController {
  constructor(
    private readonly saes: SaeRegistry,
    private readonly inference: SaeInference,
    private readonly evaluation: SaeEvaluation,
    private readonly features: FeatureData,
    private readonly featureList: FeatureList,
    private readonly training: TrainingJobs,
  ) {}

  @GrpcMethod('SaeService', 'GetSae')
  async getSae(request: GetSaeRequest__Output): Promise<SaeInfo> {
    const record = await this.saes.record(request.id);
    return toSaeInfo(record, (await this.features.computed([record.id])).has(record.id));
  }

  @GrpcMethod('SaeService', 'ListSaes')
  async listSaes(request: ListSaesRequest__Output): Promise<ListSaesResponse> {
    const records = await this.saes.list({ model: request.model, hook: request.hook });
    const computed = await this.features.computed(records.map((r) => r.id));
    return { saes: records.map((record) => toSaeInfo(record, computed.has(record.id))) };
  }

  @GrpcMethod('SaeService', 'Encode')
  encode(request: EncodeRequest__Output): Promise<EncodeResponse> {
    return this.inference.encode(request);
  }

  @GrpcMethod('SaeService', 'Decode')
  decode(request: DecodeRequest__Output): Promise<DecodeResponse> {
    return this.inference.decode(request);
  }

  @GrpcMethod('SaeService', 'FeatureWeights')
  featureWeights(request: FeatureRequest__Output): Promise<FeatureWeightsResponse> {
    return this.inference.featureWeights(request);
  }

  @GrpcMethod('SaeService', 'NearestFeatures')
  nearestFeatures(request: NearestFeaturesRequest__Output): Promise<NearestFeaturesResponse> {
    return this.inference.nearest({
      saeId: request.saeId,
      query: request.query,
      feature: request.feature ?? 0,
      vector: request.vector ?? null,
      k: request.k,
      exact: request.exact,
      efSearch: request.efSearch,
    });
  }

  @GrpcMethod('SaeService', 'Evaluate')
  evaluate(request: EvaluateRequest__Output): Promise<EvalMetrics> {
    return this.evaluation.evaluate(request);
  }

  @GrpcMethod('SaeService', 'Train')
  train(request: TrainRequest__Output): Promise<TrainingJob> {
    return this.training.train(request);
  }

  @GrpcMethod('SaeService', 'GetTrainingJob')
  getTrainingJob(request: GetTrainingJobRequest__Output): Promise<TrainingJob> {
    return this.training.get(request.id);
  }

  @GrpcMethod('SaeService', 'ListTrainingJobs')
  listTrainingJobs(request: ListJobsRequest__Output): Promise<ListTrainingJobsResponse> {
    return this.training.list(request);
  }

  @GrpcMethod('SaeService', 'CancelTrainingJob')
  cancelTrainingJob(request: GetTrainingJobRequest__Output): Promise<TrainingJob> {
    return this.training.cancel(request.id);
  }

  @GrpcMethod('SaeService', 'FeatureRecords')
  featureRecords(request: FeatureRequest__Output): Promise<FeatureRecordsResponse> {
    return this.features.records(request);
  }

  @GrpcMethod('SaeService', 'FeatureStats')
  featureStats(request: FeatureRequest__Output): Promise<FeatureStatsResponse> {
    return this.features.stats(request);
  }

  @GrpcMethod('SaeService', 'ListFeatures')
  listFeatures(request: ListFeaturesRequest__Output): Promise<ListFeaturesResponse> {
    return this.featureList.list(request);
  }

  @GrpcMethod('SaeService', 'FeatureDensity')
  featureDensity(request: GetSaeRequest__Output): Promise<FeatureDensityResponse> {
    return this.featureList.density(request.id);
  }
}
