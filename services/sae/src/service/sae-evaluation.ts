import path from 'node:path';
import { type Logger, type LoupeConfig, UserInputError } from '@loupe/common';
import type { EvalMetrics } from '@loupe/common/grpc';
import { captureJobDir } from '@loupe/records';
import { Inject, Injectable } from '@nestjs/common';
import { openActivationSource } from '../data/activation-source.js';
import { captureSpliceModel } from '../eval/capture-splice-model.js';
import {
  evaluateSource,
  type ReconstructionEval,
  ReconstructionEvaluator,
} from '../eval/reconstruction-eval.js';
import { type SplicedLoss, splicedLossWith, spliceLayer } from '../eval/spliced-loss.js';
import { saesHaveMetrics, saveSaeMetrics } from '../store/sae-store.js';
import { CaptureClient } from './capture-client.js';
import { SaeDatabase } from './database.js';
import { captureModel } from './sae-inference.js';
import { toEvalMetrics } from './sae-info.js';
import { type LoadedSae, SaeRegistry } from './sae-registry.js';
import { CONFIG, LOGGER } from './tokens.js';

const DEFAULT_MAX_VECTORS = 65_536;
const MAX_VECTORS = 10_000_000;
const MAX_TEXTS = 256;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface EvaluateInput {
  saeId: string;
  activations?: 'captureJobId' | 'activationsFile';
  captureJobId?: string;
  activationsFile?: string;
  tensor: string;
  maxVectors: number;
  texts: string[];
}

/**
 * Evaluate: reconstruction metrics on held-out activations (a capture job's shards for the SAE's hook
 * or a safetensors file, both inside the data directory) and, with texts, the spliced-in loss through
 * the capture service. With texts only, the reconstruction metrics are over the texts' activations.
 */
@Injectable()
export class SaeEvaluation {
  private hasMetricsColumn: Promise<boolean> | null = null;

  constructor(
    private readonly saes: SaeRegistry,
    private readonly capture: CaptureClient,
    private readonly database: SaeDatabase,
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async evaluate(request: EvaluateInput): Promise<EvalMetrics> {
    const maxVectors = request.maxVectors === 0 ? DEFAULT_MAX_VECTORS : request.maxVectors;
    if (!Number.isInteger(maxVectors) || maxVectors < 1 || maxVectors > MAX_VECTORS)
      throw new UserInputError(
        `max_vectors must be 0 (the default, ${DEFAULT_MAX_VECTORS}) to ${MAX_VECTORS}, got ${request.maxVectors}`,
      );
    if (request.texts.length > MAX_TEXTS)
      throw new UserInputError(`${request.texts.length} texts given; at most ${MAX_TEXTS} per evaluation`);
    const location = this.location(request);
    if (!location && request.texts.length === 0)
      throw new UserInputError(
        'nothing to evaluate on: give capture_job_id or activations_file, and/or texts',
      );
    const loaded = await this.saes.get(request.saeId);
    const { sae, record } = loaded;
    const encoder = await loaded.encoder();
    const encode = (x: Float32Array, rows: number) => encoder.encode(x, rows);

    let reconstruction: ReconstructionEval | null = null;
    if (location) {
      const source = await openActivationSource(location.path, {
        ...(request.tensor ? { tensor: request.tensor } : {}),
        ...(location.isJob ? { hook: record.hook } : {}),
        expectedWidth: record.dIn,
      });
      if (source.hook && source.hook !== record.hook)
        throw new UserInputError(
          `${location.label} holds activations of ${source.hook}; SAE "${record.id}" reads ${record.hook}`,
        );
      reconstruction = await evaluateSource(sae, source, maxVectors, encode);
    }

    let spliced: SplicedLoss | null = null;
    if (request.texts.length > 0) {
      const result = await this.splice(
        loaded,
        request.texts,
        location ? null : new ReconstructionEvaluator(sae, encode),
      );
      spliced = result.spliced;
      reconstruction ??= result.reconstruction;
    }
    const metrics = toEvalMetrics(reconstruction, spliced);
    await this.record(record.id, metrics);
    return metrics;
  }

  private async splice(
    loaded: LoadedSae,
    texts: string[],
    evaluator: ReconstructionEvaluator | null,
  ): Promise<{ spliced: SplicedLoss; reconstruction: ReconstructionEval | null }> {
    const { sae, record } = loaded;
    const model = await captureSpliceModel(this.capture.api, captureModel(record.model));
    spliceLayer(sae, model.dims); // a clear refusal before any text is sent
    const windows: number[][] = [];
    for (const [i, text] of texts.entries()) {
      if (text === '') throw new UserInputError(`texts[${i}] is empty`);
      // too long a text is refused by the capture service with the model's limit
      windows.push(await this.capture.tokenize(captureModel(record.model), text));
    }
    const encoder = await loaded.encoder();
    const spliced = await splicedLossWith(model, sae, windows, {
      // x̂ from the ONNX encoder and the sparse decode; the same pass feeds the reconstruction metrics
      reconstruct: (x, rows) =>
        evaluator
          ? evaluator.add(x, rows)
          : new ReconstructionEvaluator(sae, (v, n) => encoder.encode(v, n)).add(x, rows),
    });
    return { spliced, reconstruction: evaluator?.result() ?? null };
  }

  /** Only inside the data directory: a client never makes the service read other files. */
  private location(request: EvaluateInput): { path: string; isJob: boolean; label: string } | null {
    const { dataDir } = this.config;
    if (request.activations === 'captureJobId') {
      const job = request.captureJobId ?? '';
      if (!UUID.test(job))
        throw new UserInputError(`capture_job_id "${job}" is not a capture job id (a UUID)`);
      return { path: captureJobDir(dataDir, job), isJob: true, label: `capture job ${job}` };
    }
    if (request.activations === 'activationsFile') {
      const file = request.activationsFile ?? '';
      const root = path.resolve(dataDir);
      const resolved = path.resolve(root, file);
      if (file === '' || !resolved.startsWith(`${root}${path.sep}`))
        throw new UserInputError(
          `activations_file "${file}" must name a file inside the data directory ${root}`,
        );
      return { path: resolved, isJob: false, label: file };
    }
    return null;
  }

  /** The SAE's last evaluation, where the schema has a metrics column (added with training jobs). */
  private async record(id: string, metrics: EvalMetrics): Promise<void> {
    const sql = await this.database.sql();
    this.hasMetricsColumn ??= saesHaveMetrics(sql);
    if (!(await this.hasMetricsColumn)) return;
    await saveSaeMetrics(sql, id, metrics);
    this.log.info({ sae: id }, 'evaluation recorded');
  }
}
