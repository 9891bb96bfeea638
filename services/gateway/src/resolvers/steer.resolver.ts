import { randomInt } from 'node:crypto';
import { type LoupeConfig, UserInputError } from '@loupe/common';
import type { CaptureApi, Continuation__Output, ResidualSteering } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Query, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import { checkCount, checkRange, checkText } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { CAPTURE, CONFIG } from '../tokens.js';
import { tokens } from './views.js';

export interface SteeringEditInput {
  hook?: string | null;
  vector?: number[] | null;
  unit?: string | null;
  strength?: number | null;
  mode?: 'ADD' | 'CLAMP' | 'ABLATE' | null;
}

interface SteerOptionsInput {
  model?: string | null;
  maxTokens?: number | null;
  temperature?: number | null;
  topK?: number | null;
  seed?: number | null;
}

/**
 * Today's edits are raw residual additions (hook + vector). Edits by unit (SAE features, with add,
 * clamp or ablate) need the SAE service; the input type already has their shape.
 */
export function toResidualSteering(edits: SteeringEditInput[]): ResidualSteering[] {
  checkCount(edits.length, 'steering edits', LIMITS.maxEdits);
  return edits.map((edit, i) => {
    if (edit.unit)
      throw new UserInputError(
        `edits[${i}]: steering by unit needs the SAE service, which this gateway does not reach yet; ` +
          'give hook (a blocks.{L}.hook_resid_pre) and vector instead',
      );
    if (!edit.hook || !edit.vector)
      throw new UserInputError(
        `edits[${i}]: give hook (a blocks.{L}.hook_resid_pre) and vector (d_model values)`,
      );
    if ((edit.mode ?? 'ADD') !== 'ADD')
      throw new UserInputError(
        `edits[${i}]: mode ${edit.mode} applies to SAE features; a raw vector can only be ADDed`,
      );
    return { hook: edit.hook, vector: edit.vector, strength: edit.strength ?? 1 };
  });
}

function continuation(c: Continuation__Output) {
  return { text: c.text, tokens: tokens(c.ids, c.tokens), logprobs: c.logprobs };
}

@Resolver('Query')
export class SteerQueries {
  constructor(
    @Inject(CAPTURE) private readonly capture: CaptureApi,
    @Inject(CONFIG) private readonly config: LoupeConfig,
  ) {}

  @Query('steer')
  async steer(
    @Args('prompt') prompt: string,
    @Args('edits') edits: SteeringEditInput[],
    @Args('options') options: SteerOptionsInput | undefined,
  ) {
    checkText(prompt, 'prompt', this.config.maxTextChars);
    const steering = toResidualSteering(edits);
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
        model: options?.model ?? '',
        prompt,
        maxTokens,
        temperature,
        topK,
        seed,
        steering,
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
