import { randomInt } from 'node:crypto';
import { type LoupeConfig, UserInputError } from '@loupe/common';
import type { CaptureApi, Continuation__Output, SaeApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Query, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkRange, checkText } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { type SteeringEditInput, toCaptureSteering } from '../steering/steering-edits.js';
import { CAPTURE, CONFIG, SAE } from '../tokens.js';
import { tokens } from './views.js';

interface SteerOptionsInput {
  model?: string | null;
  maxTokens?: number | null;
  temperature?: number | null;
  topK?: number | null;
  seed?: number | null;
}

function continuation(c: Continuation__Output) {
  return { text: c.text, tokens: tokens(c.ids, c.tokens), logprobs: c.logprobs };
}

@Resolver('Query')
export class SteerQueries {
  constructor(
    @Inject(CAPTURE) private readonly capture: CaptureApi,
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(SAE) private readonly sae: SaeApi,
  ) {}

  @Query('steer')
  async steer(
    @Args('prompt') prompt: string,
    @Args('edits') edits: SteeringEditInput[],
    @Args('options') options: SteerOptionsInput | undefined,
    @Context() ctx: GatewayContext,
  ) {
    checkText(prompt, 'prompt', this.config.maxTextChars);
    const { steering, clamps, models } = await toCaptureSteering(edits, ctx, this.sae);
    // feature edits name their model; without options.model the prompt runs on it
    const model = options?.model ?? models[0] ?? '';
    const other = models.find((m) => m !== model);
    if (other)
      throw new UserInputError(
        `the edits steer features of model ${other}, but the prompt runs on ${model || 'the default model'}`,
      );
    const maxTokens = checkRange(options?.maxTokens ?? 32, 'options.maxTokens', 1, LIMITS.maxNewTokens);
    const topK = checkRange(options?.topK ?? 0, 'options.topK', 0, 1_000_000);
    const temperature = options?.temperature ?? 1;
    if (!(temperature >= 0 && temperature <= 100))
      throw new UserInputError(`options.temperature must be 0-100 (0 = greedy), got ${temperature}`);
    // one seed for both runs, chosen here when absent so the client can reproduce the pair
    const seed = options?.seed ?? randomInt(0, 2 ** 31 - 1);
    checkRange(seed, 'options.seed', 0, 2 ** 31 - 1);
    const response = await callCapture(() =>
      this.capture.Generate({
        model,
        prompt,
        maxTokens,
        temperature,
        topK,
        seed,
        steering,
        clamps,
      }),
    );
    return {
      prompt,
      seed,
      steered: continuation(response.steered!),
      unsteered: continuation(response.unsteered!),
    };
  }
}
