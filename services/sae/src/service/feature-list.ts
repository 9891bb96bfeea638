import type {
  FeatureDensityResponse,
  ListFeaturesRequest__Output,
  ListFeaturesResponse,
} from '@loupe/common/grpc';
import { Injectable } from '@nestjs/common';
import { featureDensity, listFeatures } from '../store/feature-reads.js';
import { SaeDatabase } from './database.js';

/** ListFeatures (an SAE's feature statistics, ordered and paged) and FeatureDensity over them. */
@Injectable()
export class FeatureList {
  constructor(private readonly database: SaeDatabase) {}

  async list(request: ListFeaturesRequest__Output): Promise<ListFeaturesResponse> {
    return listFeatures(await this.database.sql(), request);
  }

  async density(saeId: string): Promise<FeatureDensityResponse> {
    return featureDensity(await this.database.sql(), saeId);
  }
}
