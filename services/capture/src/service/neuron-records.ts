import { approximateBytes, ByteLru, type LoupeConfig, UserInputError } from '@loupe/common';
import type { NeuronRecordResponse, RecordWindow } from '@loupe/common/grpc';
import type { WindowActivations } from '@loupe/records';
import { readNeuronRecord } from '@loupe/records';
import { Inject, Injectable } from '@nestjs/common';
import { CaptureDatabase } from './database.js';
import { ModelRegistry } from './model-registry.js';
import { neuronLayer } from './neuron-ref.js';
import { CONFIG } from './tokens.js';

/**
 * A neuron's records from the newest finished capture job that recorded its hook. A finished job's
 * records never change, so the answer is kept by job and neuron (LOUPE_CACHE_MB, LRU by bytes): only
 * the query for the newest job runs again, and a caller that already holds that job's record
 * (known_job_id) gets a short "unchanged" answer instead of the windows.
 */
@Injectable()
export class NeuronRecords {
  private readonly cache: ByteLru<string, NeuronRecordResponse>;

  constructor(
    private readonly database: CaptureDatabase,
    private readonly models: ModelRegistry,
    @Inject(CONFIG) config: LoupeConfig,
  ) {
    this.cache = new ByteLru(config.cacheMb * 1024 * 1024);
  }

  async get(request: {
    model: string;
    hook: string;
    neuron: number;
    knownJobId?: string;
  }): Promise<NeuronRecordResponse> {
    const { runner } = await this.models.get(request.model);
    const { dims } = runner.manifest;
    neuronLayer(request, dims);
    const sql = await this.database.sql();
    const [row] = await sql`
      SELECT r.job_id, r.records_file FROM neuron_records r JOIN capture_jobs j ON j.id = r.job_id
      WHERE r.model = ${runner.name} AND r.hook = ${request.hook} AND r.neuron = ${request.neuron} AND j.status = 'done'
      ORDER BY j.finished_at DESC LIMIT 1`;
    if (!row) {
      throw new UserInputError(
        `no records for ${runner.name}/${request.hook}/${request.neuron} yet: run a capture job on that hook`,
        'NOT_FOUND',
      );
    }
    const jobId: string = row.job_id;
    if (request.knownJobId === jobId)
      return { model: runner.name, hook: request.hook, neuron: request.neuron, jobId, unchanged: true };
    const key = `${jobId}/${request.hook}/${request.neuron}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const answer = await this.read(sql, runner, request, row.records_file, jobId);
    this.cache.set(key, answer, approximateBytes(answer));
    return answer;
  }

  private async read(
    sql: Awaited<ReturnType<CaptureDatabase['sql']>>,
    runner: Awaited<ReturnType<ModelRegistry['get']>>['runner'],
    request: { hook: string; neuron: number },
    recordsFile: string,
    jobId: string,
  ): Promise<NeuronRecordResponse> {
    const record = await readNeuronRecord(recordsFile, request.neuron);
    const used = [...record.top, ...record.random, ...record.quantiles.flatMap((q) => q.windows)].map(
      (w) => w.window,
    );
    const windows = new Map<number, number[]>();
    for (const w of await sql`
      SELECT window_index, token_ids FROM record_windows WHERE job_id = ${jobId} AND window_index = ANY(${[...new Set(used)]})`) {
      windows.set(Number(w.window_index), w.token_ids as number[]);
    }
    const toWire = (w: WindowActivations): RecordWindow => {
      const ids = windows.get(w.window) ?? [];
      return { window: w.window, ids, tokens: runner.tokenizer.tokenStrings(ids), values: w.values };
    };
    return {
      model: runner.name,
      hook: request.hook,
      neuron: request.neuron,
      jobId,
      maxActivation: record.stats.max,
      minActivation: record.stats.min,
      meanActivation: record.stats.mean,
      fractionNonzero: record.stats.fractionNonZero,
      tokens: record.stats.tokens,
      histogram: record.histogram.counts,
      top: record.top.map(toWire),
      random: record.random.map(toWire),
      quantiles: record.quantiles.map((q) => ({ from: q.from, to: q.to, windows: q.windows.map(toWire) })),
    };
  }
}
