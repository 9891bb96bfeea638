import { parseUnitId, UserInputError } from '@loupe/common';
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
import { Inject, Injectable } from '@nestjs/common';
import { explainUnit } from '../explain/explain-unit.js';
import {
  cancelJob,
  createJob,
  getJob,
  JOB_METHODS,
  type JobMethod,
  type JobRow,
  jobSources,
  listJobs,
} from '../jobs/job-store.js';
import { UsageMeter } from '../llm/types.js';
import type { UnitRecords } from '../records/records.js';
import { scoreExplanation } from '../score/score.js';
import { classificationScore } from '../scorers/classify.js';
import {
  fromClassificationReport,
  fromScoreReport,
  listExplanations,
  type ScoredExplanation,
  saveExplanation,
  searchExplanations,
  semanticSearchExplanations,
} from '../store/explanations.js';
import type { RecordSource } from '../units/record-source.js';
import { parseUnitSpec } from '../units/unit-id.js';
import { ExplainerDatabase } from './database.js';
import { JobWorker } from './job-worker.js';
import { Models } from './models.js';
import { RECORD_SOURCE } from './tokens.js';
import {
  classificationToWire,
  hitToWire,
  jobToWire,
  llmChoice,
  recordsFromWire,
  scoreToWire,
  simulationToWire,
  storedToWire,
  usageToWire,
} from './wire.js';

const MAX_CANDIDATES = 16;
/** longest search query (the gateway's own limit on explanation text too) */
const MAX_QUERY_CHARS = 2000;
const DEFAULT_JOB_CONCURRENCY = 4;
const DEFAULT_MAX_ATTEMPTS = 3;

/** The RPCs' logic over the library: records from the request or from capture/SAE, optional saving. */
@Injectable()
export class ExplainerApi {
  constructor(
    @Inject(RECORD_SOURCE) private readonly source: RecordSource,
    private readonly database: ExplainerDatabase,
    private readonly models: Models,
    private readonly worker: JobWorker,
  ) {}

  async explain(request: ExplainRequest__Output): Promise<ExplainResponse> {
    const candidates = request.candidates || 1;
    if (candidates < 1 || candidates > MAX_CANDIDATES)
      throw new UserInputError(`candidates ${candidates}: expected 1 to ${MAX_CANDIDATES}`);
    const records = await this.records(request.unit, request.records);
    const models = this.models.forChoice(llmChoice(request.llm));
    const result = await explainUnit(records, {
      ...models,
      candidates,
      seed: request.seed,
      meter: new UsageMeter(),
    });
    const explanationId = request.save
      ? await this.save(request.unit, fromScoreReport(request.unit, result.score))
      : '';
    return {
      explanation: result.explanation,
      explainerModel: result.explainer_model,
      candidates: result.candidates.map((c) => ({
        explanation: c.explanation,
        ...(c.selection_score === null ? {} : { selectionScore: c.selection_score }),
      })),
      score: scoreToWire(result.score),
      explanationId,
    };
  }

  async simulate(request: SimulateRequest__Output): Promise<SimulateResponse> {
    if (request.explanation.trim() === '') throw new UserInputError('explanation is empty');
    if (request.sequences.length === 0)
      throw new UserInputError('sequences: give at least one list of tokens');
    const { simulator } = this.models.forChoice(llmChoice(request.llm));
    const meter = new UsageMeter();
    const outcomes = await simulator.simulate(
      request.explanation,
      request.sequences.map((s) => s.tokens),
      meter,
    );
    return {
      sequences: outcomes.map(simulationToWire),
      simulatorModel: simulator.model,
      usage: usageToWire(meter.snapshot()),
    };
  }

  async score(request: ScoreRequest__Output): Promise<ScoreResponse> {
    if (request.explanation.trim() === '') throw new UserInputError('explanation is empty');
    const method = parseMethod(request.method || 'simulation');
    const records = await this.records(request.unit, request.records);
    const models = this.models.forChoice(llmChoice(request.llm));
    const meter = new UsageMeter();
    let row: ScoredExplanation;
    let score: ScoreResponse['score'];
    if (method === 'simulation') {
      const report = await scoreExplanation(request.explanation, records, models.simulator, {
        seed: request.seed,
        meter,
      });
      row = fromScoreReport(request.unit, report);
      score = scoreToWire(report);
    } else {
      const report = await classificationScore(method, request.explanation, records, {
        judge: models.judge,
        seed: request.seed,
        meter,
      });
      row = fromClassificationReport(request.unit, report, null);
      score = classificationToWire(report);
    }
    return { score, explanationId: request.save ? await this.save(request.unit, row) : '' };
  }

  async startScoringJob(request: StartScoringJobRequest__Output): Promise<ScoringJob> {
    const units = parseUnitSpec(request.units);
    const method = parseMethod(request.method || 'simulation');
    const concurrency = request.concurrency || DEFAULT_JOB_CONCURRENCY;
    const maxAttempts = request.maxAttempts || DEFAULT_MAX_ATTEMPTS;
    if (concurrency < 1 || maxAttempts < 1 || request.budgetTokens < 0)
      throw new UserInputError('concurrency, max_attempts and budget_tokens must be positive (0 = default)');
    const sql = await this.database.sql();
    const id = await createJob(sql, {
      units,
      method,
      llm: this.models.resolveForJob(llmChoice(request.llm)),
      budgetTokens: request.budgetTokens,
      concurrency,
      seed: request.seed,
      maxAttempts,
      prices: this.models.prices(),
    });
    this.worker.kick();
    return this.jobMessage(await getJob(sql, id));
  }

  async getJob(request: GetJobRequest__Output): Promise<ScoringJob> {
    return this.jobMessage(await getJob(await this.database.sql(), request.id));
  }

  async cancelJob(request: CancelJobRequest__Output): Promise<ScoringJob> {
    return this.jobMessage(await cancelJob(await this.database.sql(), request.id));
  }

  async listJobs(request: ListJobsRequest__Output): Promise<ListScoringJobsResponse> {
    const sql = await this.database.sql();
    const page = await listJobs(sql, request);
    const sources = await jobSources(
      sql,
      page.jobs.map((j) => j.id),
    );
    return {
      jobs: page.jobs.map((j) => jobToWire(j, sources.get(j.id))),
      nextPageToken: page.nextPageToken,
      total: page.total,
    };
  }

  async search(request: SearchExplanationsRequest__Output): Promise<SearchExplanationsResponse> {
    if (request.query.length > MAX_QUERY_CHARS)
      throw new UserInputError(
        `search query has ${request.query.length} characters; the limit is ${MAX_QUERY_CHARS}`,
        'TOO_LONG',
      );
    // Postgres text cannot hold U+0000; a query or prefix with one can match nothing anyway
    for (const [field, text] of [
      ['search query', request.query],
      ['unit prefix', request.unitPrefix],
    ] as const)
      if (text.includes('\0'))
        throw new UserInputError(
          `${field} contains a NUL character (U+0000), which no explanation or unit id has`,
        );
    const options = { query: request.query, limit: request.limit, unitPrefix: request.unitPrefix };
    if (!request.semantic)
      return { hits: (await searchExplanations(await this.database.sql(), options)).map(hitToWire) };
    if (request.query.trim() === '')
      throw new UserInputError('search query is empty: give words to look for');
    const embedding = await this.models.embedQuery(request.query);
    const hits = await semanticSearchExplanations(await this.database.sql(), embedding, options);
    return { hits: hits.map(hitToWire) };
  }

  async list(request: ListExplanationsRequest__Output): Promise<ListExplanationsResponse> {
    const rows = await listExplanations(await this.database.sql(), {
      units: request.units,
      unitPrefix: request.unitPrefix,
      bestOnly: request.bestOnly,
      method: request.method,
    });
    return { explanations: rows.map(storedToWire) };
  }

  private async jobMessage(job: JobRow): Promise<ScoringJob> {
    const sources = await jobSources(await this.database.sql(), [job.id]);
    return jobToWire(job, sources.get(job.id));
  }

  private async records(unit: string, wire: ExplainRequest__Output['records']): Promise<UnitRecords> {
    const given = recordsFromWire(wire);
    if (given) return given;
    if (!unit)
      throw new UserInputError('give records, or a unit whose records the capture or SAE service has');
    parseUnitId(unit);
    return this.source.records(unit);
  }

  private async save(unit: string, row: ScoredExplanation): Promise<string> {
    if (!unit) throw new UserInputError('save needs the unit the explanation is about');
    parseUnitId(unit);
    return saveExplanation(await this.database.sql(), row, await this.models.embed(row.explanation));
  }
}

function parseMethod(method: string): JobMethod {
  const found = JOB_METHODS.find((m) => m === method);
  if (!found) throw new UserInputError(`method "${method}": expected one of ${JOB_METHODS.join(', ')}`);
  return found;
}
