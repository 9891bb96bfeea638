import {
  currentRequest,
  hookShape,
  type LoupeConfig,
  parseHook,
  throwIfCancelled,
  UserInputError,
} from '@loupe/common';
import type {
  ActivationPatchingRequest__Output,
  ActivationPatchingResponse,
  ActivationsRequest__Output,
  ActivationsResponse,
  CaptureJob,
  DirectLogitAttributionRequest__Output,
  DirectLogitAttributionResponse,
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
  LogitLensRequest__Output,
  LogitLensResponse,
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
import {
  activationPatching,
  directLogitAttribution,
  fromFlatPatches,
  generatePair,
  logitLens,
  type PatchSweepHook,
  resolveMeanPatches,
  singleToken,
  toFeatureClamps,
  toResidualAdditions,
} from '@loupe/model';
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
    const patches = await resolveMeanPatches(
      fromFlatPatches(request.patches, runner.manifest.dims, ids.length),
      runner.manifest.dims,
      ids.length,
      async (wanted) => (await served.forward({ ids, hooks: wanted, logits: false, steering, clamps })).hooks,
    );
    throwIfCancelled(); // a request that waited in line and whose caller left costs no forward pass
    const result = await served.forward({
      ids,
      hooks: request.hooks,
      logits: request.logits,
      steering,
      clamps,
      patches,
    });
    const shape = (hook: string) => hookShape(parseHook(hook, nLayer), runner.manifest.dims, ids.length);
    return {
      ids,
      tokens: runner.tokenizer.tokenStrings(ids),
      activations: Object.fromEntries(
        [...result.hooks].map(([hook, values]) => [hook, toWireTensor(values, ids.length, shape(hook))]),
      ),
      logits: result.logits ? toWireTensor(result.logits, ids.length) : undefined,
    };
  }

  @GrpcMethod('CaptureService', 'LogitLens')
  async logitLens(request: LogitLensRequest__Output): Promise<LogitLensResponse> {
    const { runner } = await this.models.get(request.model);
    const ids = runner.tokenizer.encode(this.checkText(request.text, 'text'));
    const token = request.token ? singleToken(runner.tokenizer, request.token, 'token') : undefined;
    if (request.top < 0 || request.top > 100)
      throw new UserInputError(`top must be 1-100, got ${request.top}`);
    const lens = await logitLens(runner, ids, { topK: request.top || 5, token });
    return {
      ids,
      tokens: lens.tokens,
      layers: lens.top.map((layer, l) => ({
        positions: layer.map((top, p) => ({
          top: top.map((t) => ({ id: t.id, token: t.token, value: t.probability })),
          rank: lens.chosen?.rank[l][p] ?? 0,
          probability: lens.chosen?.probability[l][p] ?? 0,
        })),
      })),
      tokenId: lens.chosen?.id ?? 0,
      token: lens.chosen?.token ?? '',
    };
  }

  @GrpcMethod('CaptureService', 'DirectLogitAttribution')
  async directLogitAttribution(
    request: DirectLogitAttributionRequest__Output,
  ): Promise<DirectLogitAttributionResponse> {
    const { runner } = await this.models.get(request.model);
    const ids = runner.tokenizer.encode(this.checkText(request.text, 'text'));
    const token = singleToken(runner.tokenizer, request.token, 'token');
    const wrong = request.wrong ? singleToken(runner.tokenizer, request.wrong, 'wrong') : undefined;
    const dla = await directLogitAttribution(runner, ids, token, wrong);
    return {
      ids,
      tokens: dla.tokens,
      position: dla.position,
      tokenId: dla.token.id,
      token: dla.token.token,
      wrongId: dla.wrong?.id ?? 0,
      wrong: dla.wrong?.token ?? '',
      logit: dla.logit,
      layers: dla.heads.map((heads, l) => ({
        heads,
        mlp: dla.mlps[l],
        attentionBias: dla.attentionBiases[l],
      })),
      embed: dla.embed,
      lnBias: dla.lnBias,
    };
  }

  @GrpcMethod('CaptureService', 'ActivationPatching')
  async activationPatching(request: ActivationPatchingRequest__Output): Promise<ActivationPatchingResponse> {
    const { runner } = await this.models.get(request.model);
    const { tokenizer } = runner;
    const result = await activationPatching(runner, {
      clean: tokenizer.encode(this.checkText(request.clean, 'clean')),
      corrupted: tokenizer.encode(this.checkText(request.corrupted, 'corrupted')),
      answer: singleToken(tokenizer, request.answer, 'answer'),
      wrong: singleToken(tokenizer, request.wrong, 'wrong'),
      hook: (request.hook || 'resid_pre') as PatchSweepHook,
    });
    return {
      hook: result.hook,
      ids: result.cleanIds,
      tokens: result.tokens,
      cleanDiff: result.cleanDiff,
      corruptedDiff: result.corruptedDiff,
      // proto doubles have no null: NaN where the prompts do not differ on the logit difference
      layers: result.scores.map((scores, l) => ({
        scores: scores.map((s) => s ?? Number.NaN),
        diffs: result.diffs[l],
      })),
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
