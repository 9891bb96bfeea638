import { currentRequest, type LoupeConfig, throwIfCancelled, UserInputError } from '@loupe/common';
import type {
  ActivationsRequest__Output,
  ActivationsResponse,
  CaptureJob,
  DocumentCollection,
  GenerateRequest__Output,
  GenerateResponse,
  GetCaptureJobRequest__Output,
  GetCollectionRequest__Output,
  IndexDocumentsRequest__Output,
  ListCaptureJobsResponse,
  ListCollectionsResponse,
  ListJobsRequest__Output,
  ListNeuronsRequest__Output,
  ListNeuronsResponse,
  ModelInfoRequest__Output,
  ModelInfoResponse,
  NeuronRecordRequest__Output,
  NeuronRecordResponse,
  NeuronWeightsRequest__Output,
  NeuronWeightsResponse,
  ResidualSteering__Output,
  SearchDocumentsRequest__Output,
  SearchDocumentsResponse,
  StartCaptureRequest__Output,
  TokenizeRequest__Output,
  TokenizeResponse,
} from '@loupe/common/grpc';
import { generatePair, toFeatureClamps, toResidualAdditions } from '@loupe/model';
import { Controller, Inject } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { CaptureJobs } from './capture-jobs.js';
import { DocumentSearch } from './document-search.js';
import { ModelRegistry } from './model-registry.js';
import { NeuronList } from './neuron-list.js';
import { NeuronRecords } from './neuron-records.js';
import { NeuronWeightsService } from './neuron-weights.js';
import { toWireTensor } from './tensors.js';
import { CONFIG } from './tokens.js';

const MAX_NEW_TOKENS = 256;

/** Translates CaptureService RPCs to the runtime; no model logic lives here. */
@Controller()
export class CaptureController {
  constructor(
    private readonly models: ModelRegistry,
    private readonly jobs: CaptureJobs,
    private readonly records: NeuronRecords,
    private readonly neuronList: NeuronList,
    private readonly neuronWeights: NeuronWeightsService,
    private readonly documents: DocumentSearch,
    @Inject(CONFIG) private readonly config: LoupeConfig,
  ) {}

  @GrpcMethod('CaptureService', 'ModelInfo')
  async modelInfo(request: ModelInfoRequest__Output): Promise<ModelInfoResponse> {
    const { runner } = await this.models.get(request.model);
    const { manifest } = runner;
    return {
      name: manifest.name,
      nLayer: manifest.dims.nLayer,
      dModel: manifest.dims.dModel,
      nHead: manifest.dims.nHead,
      dMlp: manifest.dims.dMlp,
      nPositions: manifest.dims.nPositions,
      vocabSize: manifest.dims.vocabSize,
      hooks: manifest.hooks.map((hook) => ({ name: hook.name, width: hook.shape[2] })),
      executionProvider: await runner.provider(),
      sourceSha256: manifest.source.sha256,
      converterVersion: manifest.converterVersion,
      ...(runner.tokenizer.endOfTextId === null ? {} : { endOfTextId: runner.tokenizer.endOfTextId }),
    };
  }

  @GrpcMethod('CaptureService', 'Tokenize')
  async tokenize(request: TokenizeRequest__Output): Promise<TokenizeResponse> {
    const { runner } = await this.models.get(request.model);
    const ids = runner.tokenizer.encode(this.checkText(request.text, 'text'));
    return { ids, tokens: runner.tokenizer.tokenStrings(ids) };
  }

  @GrpcMethod('CaptureService', 'Activations')
  async activations(request: ActivationsRequest__Output): Promise<ActivationsResponse> {
    const served = await this.models.get(request.model);
    const { runner } = served;
    const ids =
      request.input === 'ids'
        ? (request.ids?.ids ?? [])
        : runner.tokenizer.encode(this.checkText(request.text ?? '', 'text'));
    if (request.hooks.length === 0 && !request.logits)
      throw new UserInputError('ask for at least one hook or for logits');
    const { nLayer, dModel } = runner.manifest.dims;
    const steering = this.steering(request.steering, nLayer);
    const clamps = toFeatureClamps(request.clamps, nLayer, dModel);
    throwIfCancelled(); // a request that waited in line and whose caller left costs no forward pass
    const result = await served.forward({
      ids,
      hooks: request.hooks,
      logits: request.logits,
      steering,
      clamps,
    });
    return {
      ids,
      tokens: runner.tokenizer.tokenStrings(ids),
      activations: Object.fromEntries(
        [...result.hooks].map(([hook, values]) => [hook, toWireTensor(values, ids.length)]),
      ),
      logits: result.logits ? toWireTensor(result.logits, ids.length) : undefined,
    };
  }

  @GrpcMethod('CaptureService', 'Generate')
  async generate(request: GenerateRequest__Output): Promise<GenerateResponse> {
    const served = await this.models.get(request.model);
    const { runner } = served;
    const promptIds = runner.tokenizer.encode(this.checkText(request.prompt, 'prompt'));
    const { dims, tokenizer } = runner.manifest;
    const steering = this.steering(request.steering, dims.nLayer);
    const clamps = toFeatureClamps(request.clamps, dims.nLayer, dims.dModel);
    // checked before either continuation starts, so a bad request costs no forward pass
    runner.validate({ ids: promptIds, hooks: [], logits: true, steering, clamps });
    const pair = await generatePair(
      (rows) => runner.decoder(rows),
      promptIds,
      {
        maxTokens: request.maxTokens,
        temperature: request.temperature,
        topK: request.topK,
        seed: request.seed,
        steering,
        clamps,
        stopAtEndOfText: true,
        // the caller going away or its deadline passing stops the loop between forward passes
        signal: currentRequest()?.signal,
      },
      {
        nPositions: dims.nPositions,
        vocabSize: dims.vocabSize,
        endOfTextId: tokenizer.endOfTextId,
        maxNewTokens: MAX_NEW_TOKENS,
      },
    );
    const continuation = (c: { ids: number[]; logprobs: number[] }) => ({
      ids: c.ids,
      tokens: runner.tokenizer.tokenStrings(c.ids),
      text: runner.tokenizer.decode(c.ids),
      logprobs: c.logprobs,
    });
    return {
      promptIds,
      steered: continuation(pair.steered),
      unsteered: continuation(pair.unsteered),
      seed: request.seed,
    };
  }

  @GrpcMethod('CaptureService', 'StartCapture')
  startCapture(request: StartCaptureRequest__Output): Promise<CaptureJob> {
    return this.jobs.start({
      model: request.model,
      dataset: request.dataset,
      hooks: request.hooks,
      maxTokens: request.maxTokens,
    });
  }

  @GrpcMethod('CaptureService', 'GetCaptureJob')
  getCaptureJob(request: GetCaptureJobRequest__Output): Promise<CaptureJob> {
    return this.jobs.get(request.id);
  }

  @GrpcMethod('CaptureService', 'CancelCaptureJob')
  cancelCaptureJob(request: GetCaptureJobRequest__Output): Promise<CaptureJob> {
    return this.jobs.cancel(request.id);
  }

  @GrpcMethod('CaptureService', 'ListCaptureJobs')
  listCaptureJobs(request: ListJobsRequest__Output): Promise<ListCaptureJobsResponse> {
    return this.jobs.list(request);
  }

  @GrpcMethod('CaptureService', 'NeuronRecord')
  neuronRecord(request: NeuronRecordRequest__Output): Promise<NeuronRecordResponse> {
    return this.records.get(request);
  }

  @GrpcMethod('CaptureService', 'ListNeurons')
  listNeurons(request: ListNeuronsRequest__Output): Promise<ListNeuronsResponse> {
    return this.neuronList.list(request);
  }

  @GrpcMethod('CaptureService', 'NeuronWeights')
  getNeuronWeights(request: NeuronWeightsRequest__Output): Promise<NeuronWeightsResponse> {
    return this.neuronWeights.get(request);
  }

  @GrpcMethod('CaptureService', 'IndexDocuments')
  indexDocuments(request: IndexDocumentsRequest__Output): Promise<DocumentCollection> {
    return this.documents.index(request);
  }

  @GrpcMethod('CaptureService', 'SearchDocuments')
  searchDocuments(request: SearchDocumentsRequest__Output): Promise<SearchDocumentsResponse> {
    return this.documents.search(request);
  }

  @GrpcMethod('CaptureService', 'GetCollection')
  getCollection(request: GetCollectionRequest__Output): Promise<DocumentCollection> {
    return this.documents.get(request.collection);
  }

  @GrpcMethod('CaptureService', 'ListCollections')
  listCollections(): Promise<ListCollectionsResponse> {
    return this.documents.list();
  }

  private checkText(text: string, field: string): string {
    if (text.length === 0) throw new UserInputError(`${field} is empty`);
    if (text.length > this.config.maxTextChars) {
      throw new UserInputError(
        `${field} has ${text.length} characters; the limit is ${this.config.maxTextChars}`,
        'TOO_LONG',
      );
    }
    return text;
  }

  private steering(specs: ResidualSteering__Output[], nLayer: number) {
    return toResidualAdditions(
      specs.map((s) => ({ hook: s.hook, vector: s.vector, strength: s.strength ?? undefined })),
      nLayer,
    );
  }
}
