import type { LoupeConfig } from '@loupe/common';
import type { FeatureRecordsResponse, FeatureStatsResponse, RecordWindow } from '@loupe/common/grpc';
import { Inject, Injectable } from '@nestjs/common';
import { type FeatureRecordWindow, featureRecords, featureStats } from '../store/feature-reads.js';
import { findSae, saesWithFeatureRecords } from '../store/sae-store.js';
import { SaeDatabase } from './database.js';
import { Tokenizers } from './tokenizers.js';
import { CONFIG } from './tokens.js';

/** FeatureStats and FeatureRecords from the feature store, with token strings from the model's vocabulary. */
@Injectable()
export class FeatureData {
  constructor(
    private readonly database: SaeDatabase,
    private readonly tokenizers: Tokenizers,
    @Inject(CONFIG) private readonly config: LoupeConfig,
  ) {}

  async stats(request: { saeId: string; feature: number }): Promise<FeatureStatsResponse> {
    const sql = await this.database.sql();
    const stats = await featureStats(sql, request.saeId, request.feature);
    const { model } = await findSae(sql, request.saeId);
    const ids = [...stats.positiveLogits, ...stats.negativeLogits].map((t) => t.id);
    const strings = ids.length ? (await this.tokenizers.get(model)).tokenStrings(ids) : [];
    const named = (list: { id: number; value: number }[], offset: number) =>
      list.map((t, i) => ({ id: t.id, token: strings[offset + i], value: t.value }));
    return {
      ...stats,
      positiveLogits: named(stats.positiveLogits, 0),
      negativeLogits: named(stats.negativeLogits, stats.positiveLogits.length),
    };
  }

  async records(request: { saeId: string; feature: number }): Promise<FeatureRecordsResponse> {
    const sql = await this.database.sql();
    const records = await featureRecords(sql, this.config.dataDir, request.saeId, request.feature);
    const { model } = await findSae(sql, request.saeId);
    const tokenizer = await this.tokenizers.get(model);
    const toWire = (w: FeatureRecordWindow): RecordWindow => ({
      window: w.window,
      ids: w.ids,
      tokens: tokenizer.tokenStrings(w.ids),
      values: w.values,
    });
    return {
      saeId: records.saeId,
      feature: records.feature,
      top: records.top.map(toWire),
      random: records.random.map(toWire),
      quantiles: records.quantiles.map((q) => ({ from: q.from, to: q.to, windows: q.windows.map(toWire) })),
    };
  }

  /** Whether records and statistics have been computed for each of these SAEs. */
  async computed(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    return saesWithFeatureRecords(await this.database.sql(), ids);
  }
}
