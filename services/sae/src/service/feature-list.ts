import { UserInputError } from '@loupe/common';
import type { ListFeaturesRequest__Output, ListFeaturesResponse } from '@loupe/common/grpc';
import { Injectable } from '@nestjs/common';
import { findSae } from '../features/feature-store.js';
import { SaeDatabase } from './database.js';

/** ListFeatures' orders: SQL of each (largest first; the feature breaks ties so pages are stable). */
const ORDERS: Record<string, string> = {
  feature: 'feature',
  max_activation: 'max_activation DESC, feature',
  frequency: 'frequency DESC, feature',
};

/** The statistics of an SAE's features, ordered and paged for browsing (FeatureStats without logits). */
@Injectable()
export class FeatureList {
  constructor(private readonly database: SaeDatabase) {}

  async list(request: ListFeaturesRequest__Output): Promise<ListFeaturesResponse> {
    const orderBy = request.orderBy || 'feature';
    const order = ORDERS[orderBy];
    if (!order)
      throw new UserInputError(`order_by "${orderBy}": expected one of ${Object.keys(ORDERS).join(', ')}`);
    if (request.offset < 0 || request.limit < 0)
      throw new UserInputError(`offset ${request.offset} and limit ${request.limit} must not be negative`);
    const sql = await this.database.sql();
    await findSae(sql, request.saeId);
    const [records] = await sql`SELECT tokens FROM feature_records WHERE sae_id = ${request.saeId}`;
    if (!records)
      throw new UserInputError(
        `SAE "${request.saeId}" has no feature records yet; compute them with \`loupe sae features ${request.saeId} --activations <capture-job-dir>\``,
        'NOT_FOUND',
      );
    const [{ total }] =
      await sql`SELECT count(*)::int AS total FROM feature_stats WHERE sae_id = ${request.saeId}`;
    const rows = await sql`
      SELECT feature, frequency, max_activation, mean_activation, histogram
      FROM feature_stats WHERE sae_id = ${request.saeId}
      ORDER BY ${sql.unsafe(order)}
      OFFSET ${request.offset} ${request.limit > 0 ? sql`LIMIT ${request.limit}` : sql``}`;
    return {
      saeId: request.saeId,
      total,
      tokens: Number(records.tokens),
      features: rows.map((r) => ({
        feature: r.feature,
        frequency: r.frequency,
        maxActivation: r.max_activation,
        meanActivation: r.mean_activation,
        histogram: r.histogram,
      })),
    };
  }
}
