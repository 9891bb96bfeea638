import type { ListFeaturesRequest__Output, ListFeaturesResponse } from '@loupe/common/grpc';
import { Injectable } from '@nestjs/common';
import { listFeatures } from '../store/feature-reads.js';
import { SaeDatabase } from './database.js';

/** ListFeatures: the statistics of an SAE's features, ordered and paged (see listFeatures). */
@Injectable()
export class FeatureList {
  constructor(private readonly database: SaeDatabase) {}

  async list(request: ListFeaturesRequest__Output): Promise<ListFeaturesResponse> {
    return listFeatures(await this.database.sql(), request);
  }
}
