import { hookWidth, type LoupeConfig, requirePositionHook, UserInputError } from '@loupe/common';
import type {
  DocumentCollection,
  IndexDocumentsRequest__Output,
  ListCollectionsResponse,
  ResidualSteering__Output,
  SearchDocumentsRequest__Output,
  SearchDocumentsResponse,
  SearchRun,
} from '@loupe/common/grpc';
import type { ResidualAddition } from '@loupe/model';
import { toFeatureClamps, toResidualAdditions } from '@loupe/model';
import { generateCatalog, productMetadata } from '@loupe/shop';
import { Inject, Injectable } from '@nestjs/common';
import {
  checkSteeringReaches,
  documentIds,
  type EmbeddingModel,
  embedIds,
  embedTexts,
} from '../documents/embed.js';
import { parsePooling } from '../documents/pooling.js';
import {
  addDocuments,
  type Collection,
  checkCollectionName,
  findCollection,
  getCollection,
  type Hit,
  listCollections,
  openCollection,
  searchCollection,
} from '../documents/store.js';
import { CaptureDatabase } from './database.js';
import { ModelRegistry, type ServedModel } from './model-registry.js';
import { CONFIG } from './tokens.js';

const DEFAULT_K = 10;
const MAX_DOCUMENTS = 100_000;

/** IndexDocuments, SearchDocuments, GetCollection and ListCollections: document embeddings in pgvector. */
@Injectable()
export class DocumentSearch {
  constructor(
    private readonly models: ModelRegistry,
    private readonly database: CaptureDatabase,
    @Inject(CONFIG) private readonly config: LoupeConfig,
  ) {}

  async index(request: IndexDocumentsRequest__Output): Promise<DocumentCollection> {
    const documents = this.documents(request);
    const sql = await this.database.sql();
    // an existing collection decides the model, hook and pooling unless it is being replaced
    const existing = request.replace
      ? null
      : await findCollection(sql, checkCollectionName(request.collection));
    const served = await this.models.get(request.model || existing?.model || '');
    const { manifest } = served.runner;
    const { nLayer } = manifest.dims;
    const hook = request.hook || existing?.hook || `blocks.${nLayer - 1}.hook_resid_post`;
    const ref = requirePositionHook(hook, nLayer, 'document embeddings');
    const pooling = request.pooling ? parsePooling(request.pooling) : (existing?.pooling ?? parsePooling(''));
    const spec = {
      name: request.collection,
      model: manifest.name,
      modelSha256: manifest.source.sha256,
      hook,
      pooling,
      dim: hookWidth(ref, manifest.dims),
    };
    // checked before the forward passes; a replaced collection is dropped only once they succeeded
    const kept = request.replace ? null : await openCollection(sql, spec);
    const embeddings = await embedTexts(
      embeddingModel(served),
      documents.map((d) => d.text),
      { hook, pooling },
    );
    const collection = kept ?? (await openCollection(sql, spec, { replace: true }));
    await addDocuments(
      sql,
      collection,
      documents.map((d, i) => ({ ...d, embedding: embeddings[i] })),
    );
    return wireCollection(await getCollection(sql, collection.name));
  }

  async search(request: SearchDocumentsRequest__Output): Promise<SearchDocumentsResponse> {
    const sql = await this.database.sql();
    const collection = await getCollection(sql, request.collection);
    const served = await this.models.get(collection.model);
    const model = embeddingModel(served);
    if (served.runner.manifest.source.sha256 !== collection.modelSha256) {
      throw new UserInputError(
        `collection "${collection.name}" was embedded with another version of model ${collection.model}; index it again`,
      );
    }
    const k = request.k === 0 ? DEFAULT_K : request.k;
    const text = request.query.trim();
    if (text.length === 0) throw new UserInputError('query is empty');
    if (text.length > this.config.maxTextChars)
      throw new UserInputError(
        `query has ${text.length} characters; the limit is ${this.config.maxTextChars}`,
        'TOO_LONG',
      );
    // the same checks as Activations (hooks, widths; the runner checks layers and finite values)
    const edits = {
      steering: toAdditions(request.steering, model.nLayer),
      clamps: toFeatureClamps(request.clamps, model.nLayer, served.runner.manifest.dims.dModel),
    };
    checkSteeringReaches(collection.hook, edits, model.nLayer);
    const edited = edits.steering.length > 0 || edits.clamps.length > 0;
    const ids = documentIds(model, text);
    const spec = { hook: collection.hook, pooling: collection.pooling };
    const options = { k, embeddings: request.includeEmbeddings };
    // both forwards at once: the batcher runs them as one batch
    const [steered, unsteered] = await Promise.all([
      embedIds(model, ids, spec, edits),
      edited ? embedIds(model, ids, spec) : null,
    ]);
    const run = async (embedding: Float32Array): Promise<SearchRun> => ({
      queryEmbedding: Array.from(embedding),
      results: (await searchCollection(sql, collection, embedding, options)).map(wireHit),
    });
    const queryIds = ids.slice(1);
    return {
      collection: wireCollection(collection),
      queryIds,
      queryTokens: served.runner.tokenizer.tokenStrings(queryIds),
      steered: await run(steered),
      unsteered: unsteered ? await run(unsteered) : undefined,
    };
  }

  async get(name: string): Promise<DocumentCollection> {
    return wireCollection(await getCollection(await this.database.sql(), name));
  }

  async list(): Promise<ListCollectionsResponse> {
    return { collections: (await listCollections(await this.database.sql())).map(wireCollection) };
  }

  /** The request's documents, checked, or the generated catalog's products. */
  private documents(request: IndexDocumentsRequest__Output) {
    if (request.source === 'catalog') {
      const catalog = request.catalog;
      return generateCatalog({ products: catalog?.products, seed: catalog?.seed }).map((p) => ({
        id: p.id,
        text: p.text,
        metadataJson: productMetadata(p),
      }));
    }
    const documents = request.documents?.documents ?? [];
    if (documents.length === 0)
      throw new UserInputError('no documents: give documents or a catalog to index');
    if (documents.length > MAX_DOCUMENTS)
      throw new UserInputError(`${documents.length} documents in one call; the limit is ${MAX_DOCUMENTS}`);
    const seen = new Set<string>();
    return documents.map((d, i) => {
      if (d.id === '' || d.id.length > 200)
        throw new UserInputError(`documents[${i}]: id must be 1-200 characters`);
      if (seen.has(d.id)) throw new UserInputError(`documents[${i}]: id "${d.id}" appears twice`);
      seen.add(d.id);
      if (d.text.trim() === '') throw new UserInputError(`documents[${i}] ("${d.id}"): text is empty`);
      if (d.text.length > this.config.maxTextChars)
        throw new UserInputError(
          `documents[${i}] ("${d.id}"): text has ${d.text.length} characters; the limit is ${this.config.maxTextChars}`,
          'TOO_LONG',
        );
      return { id: d.id, text: d.text, metadataJson: d.metadataJson };
    });
  }
}

function embeddingModel(served: ServedModel): EmbeddingModel {
  const { runner } = served;
  return {
    forward: (request) => served.forward(request),
    tokenizer: runner.tokenizer,
    nLayer: runner.manifest.dims.nLayer,
    nPositions: runner.manifest.dims.nPositions,
  };
}

function toAdditions(specs: ResidualSteering__Output[], nLayer: number): ResidualAddition[] {
  return toResidualAdditions(
    specs.map((s) => ({ hook: s.hook, vector: s.vector, strength: s.strength ?? undefined })),
    nLayer,
  );
}

function wireCollection(c: Collection): DocumentCollection {
  return {
    name: c.name,
    model: c.model,
    hook: c.hook,
    pooling: c.pooling,
    dim: c.dim,
    count: c.count,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

function wireHit(hit: Hit, index: number) {
  return {
    id: hit.id,
    text: hit.text,
    metadataJson: hit.metadataJson,
    score: hit.score,
    rank: index + 1,
    embedding: hit.embedding ?? [],
  };
}
