import { blockHook, type Logger, type LoupeConfig, UserInputError } from '@loupe/common';
import type { NeuronWeightsRequest__Output, NeuronWeightsResponse } from '@loupe/common/grpc';
import { NeuronWeights } from '@loupe/model';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { ModelRegistry } from './model-registry.js';
import { neuronLayer } from './neuron-ref.js';
import { CONFIG, LOGGER } from './tokens.js';

const DEFAULT_K = 10;
const MAX_K = 1000;

/**
 * A neuron's logit tokens and nearest neurons from the model's weights (@loupe/model NeuronWeights).
 * The graph holding every layer's output directions and the unembedding opens on the first question
 * about a model and stays open for the next ones.
 */
@Injectable()
export class NeuronWeightsService implements OnApplicationShutdown {
  private readonly opened = new Map<string, Promise<NeuronWeights>>();

  constructor(
    private readonly models: ModelRegistry,
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async get(request: NeuronWeightsRequest__Output): Promise<NeuronWeightsResponse> {
    const { runner } = await this.models.get(request.model);
    const { dims } = runner.manifest;
    const layer = neuronLayer(request, dims, 'neuron weights');
    const k = request.k || DEFAULT_K;
    const most = Math.min(MAX_K, dims.dMlp - 1);
    if (!Number.isInteger(k) || k < 1 || k > most)
      throw new UserInputError(`k must be 1-${most} (0 = ${Math.min(DEFAULT_K, most)}), got ${k}`);
    const weights = await this.weightsOf(runner.name, runner.dir, runner.manifest);
    const answer = await weights.of(layer, request.neuron, k);
    const tokens = (list: { id: number; value: number }[]) => {
      const strings = runner.tokenizer.tokenStrings(list.map((t) => t.id));
      return list.map(({ id, value }, i) => ({ id, value, token: strings[i] }));
    };
    const neighbours = (list: { layer: number; neuron: number; cosine: number }[]) =>
      list.map((n) => ({ hook: blockHook(n.layer, 'mlp.hook_post'), neuron: n.neuron, cosine: n.cosine }));
    const connections = (list: { layer: number; neuron: number; weight: number }[]) =>
      list.map((n) => ({ hook: blockHook(n.layer, 'mlp.hook_post'), neuron: n.neuron, weight: n.weight }));
    return {
      model: runner.name,
      hook: request.hook,
      neuron: request.neuron,
      positiveLogits: tokens(answer.positive),
      negativeLogits: tokens(answer.negative),
      nearestInLayer: neighbours(answer.nearestInLayer),
      nearestInModel: neighbours(answer.nearestInModel),
      neurons: dims.nLayer * dims.dMlp,
      positiveInputTokens: tokens(answer.inputPositive),
      negativeInputTokens: tokens(answer.inputNegative),
      upstreamPositive: connections(answer.upstream.positive),
      upstreamNegative: connections(answer.upstream.negative),
      downstreamPositive: connections(answer.downstream.positive),
      downstreamNegative: connections(answer.downstream.negative),
    };
  }

  private weightsOf(
    name: string,
    dir: string,
    manifest: Parameters<typeof NeuronWeights.open>[1],
  ): Promise<NeuronWeights> {
    let weights = this.opened.get(name);
    if (!weights) {
      const settings = {
        device: this.config.device,
        intraOpThreads: this.config.intraOpThreads,
        owner: 'capture',
      };
      weights = NeuronWeights.open(dir, manifest, settings);
      weights.then(
        () => this.log.info({ model: name }, 'neuron weights loaded'),
        () => this.opened.delete(name),
      );
      this.opened.set(name, weights);
    }
    return weights;
  }

  async onApplicationShutdown(): Promise<void> {
    for (const weights of this.opened.values()) await (await weights.catch(() => null))?.close();
  }
}
