import { UserInputError } from '@loupe/common';
import type {
  GetPublishedNeuronRequest__Output,
  ListPublishedNeuronsRequest__Output,
  ListPublishedNeuronsResponse,
  PublishedNeuron,
  PublishedRecord,
  PublishedScoresByLayerRequest__Output,
  PublishedScoresByLayerResponse,
} from '@loupe/common/grpc';
import { Injectable } from '@nestjs/common';
import { listPublishedNeurons, publishedScoresByLayer } from '../published/browse-published.js';
import { getPublishedNeuron, type StoredRecord } from '../published/published-store.js';
import { ExplainerDatabase } from './database.js';

const optional = (value: number | null) => (value === null ? undefined : value);
const record = (r: StoredRecord): PublishedRecord => ({
  tokens: r.tokens,
  tokenIds: r.ids.map((id) => id ?? -1),
  activations: r.activations,
});

/** The RPCs over imported published neurons (`loupe import openai-neurons`). */
@Injectable()
export class PublishedApi {
  constructor(private readonly database: ExplainerDatabase) {}

  async get(request: GetPublishedNeuronRequest__Output): Promise<PublishedNeuron> {
    const row = await getPublishedNeuron(await this.database.sql(), request.unit);
    if (!row)
      throw new UserInputError(
        `${request.unit} was not imported from a published dataset (loupe import openai-neurons)`,
        'NOT_FOUND',
      );
    return {
      unit: row.unit,
      source: row.source,
      publisher: row.publisher,
      layer: row.layer,
      neuron: row.neuron,
      mean: optional(row.mean),
      variance: optional(row.variance),
      skewness: optional(row.skewness),
      kurtosis: optional(row.kurtosis),
      maxActivation: optional(row.maxActivation),
      quantileBoundaries: row.quantileBoundaries ?? [],
      top: row.records?.top.map(record) ?? [],
      random: row.records?.random.map(record) ?? [],
      quantiles: row.records?.quantiles?.map((q) => ({ records: q.map(record) })) ?? [],
      bestScore: optional(row.bestScore),
      bestExplanation: row.bestExplanation ?? '',
      explanations: row.explanations ?? 0,
    };
  }

  async list(request: ListPublishedNeuronsRequest__Output): Promise<ListPublishedNeuronsResponse> {
    const page = await listPublishedNeurons(await this.database.sql(), {
      model: request.model,
      layer: request.layer ?? undefined,
      minScore: request.minScore ?? undefined,
      offset: request.offset,
      limit: request.limit || undefined,
    });
    return {
      total: page.total,
      neurons: page.neurons.map((n) => ({
        unit: n.unit,
        layer: n.layer,
        neuron: n.neuron,
        score: optional(n.score),
        explanation: n.explanation ?? '',
        maxActivation: optional(n.maxActivation),
      })),
    };
  }

  async byLayer(request: PublishedScoresByLayerRequest__Output): Promise<PublishedScoresByLayerResponse> {
    const picture = await publishedScoresByLayer(await this.database.sql(), {
      model: request.model,
      bins: request.bins || undefined,
      threshold: request.threshold ?? undefined,
    });
    return {
      edges: picture.edges,
      threshold: picture.threshold,
      layers: picture.layers.map((l) => ({ ...l, mean: optional(l.mean) })),
    };
  }
}
