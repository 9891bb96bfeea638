import { randomInt } from 'node:crypto';
import { type LoupeConfig, UserInputError } from '@loupe/common';
import type { CaptureApi, Continuation__Output, ResidualSteering, SaeApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Query, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkCount, checkRange, checkText } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { callSae } from '../sae/sae.js';
import { CAPTURE, CONFIG, SAE } from '../tokens.js';
import { parseUnitId } from '../units/unit-id.js';
import { loadFeature } from './units.resolver.js';
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

const RESID_PRE = /^blocks\.(0|[1-9]\d{0,3})\.hook_resid_pre$/;
const SUPPORTED =
  'supported today: a feature of an SAE on a blocks.{L}.hook_resid_pre hook with mode ADD, ' +
  'or hook (a blocks.{L}.hook_resid_pre) and vector';

/**
 * Every edit becomes a raw residual addition at a blocks.{L}.hook_resid_pre hook (what the capture
 * service's Generate applies). A feature edit (mode ADD) adds strength × its decoder direction W_dec[f],
 * which the SAE service gives as Decode({f: 1}) − Decode({}) (the second is b_dec), so the gateway never
 * reads SAE weights itself. CLAMP and ABLATE need the SAE spliced into generation, which is not served yet.
 */
export async function toResidualSteering(
  edits: SteeringEditInput[],
  ctx: GatewayContext,
  sae: SaeApi,
): Promise<{ steering: ResidualSteering[]; models: string[] }> {
  checkCount(edits.length, 'steering edits', LIMITS.maxEdits);
  const models: string[] = [];
  const steering = await Promise.all(
    edits.map(async (edit, i): Promise<ResidualSteering> => {
      const mode = edit.mode ?? 'ADD';
      const strength = edit.strength ?? 1;
      if (edit.unit) {
        if (edit.hook || edit.vector)
          throw new UserInputError(`edits[${i}]: give either unit, or hook and vector, not both`);
        const ref = parseUnitId(edit.unit);
        if (ref.kind === 'neuron')
          throw new UserInputError(
            `edits[${i}]: steering by neuron (${edit.unit}) is not supported; ${SUPPORTED}`,
          );
        if (mode !== 'ADD')
          throw new UserInputError(
            `edits[${i}]: mode ${mode} is not supported yet (it needs the SAE spliced into generation); ${SUPPORTED}`,
          );
        const feature = await loadFeature(ref, ctx);
        const { hook } = feature.saeInfo;
        if (!RESID_PRE.test(hook))
          throw new UserInputError(
            `edits[${i}]: SAE "${feature.saeId}" reads ${hook}; steering adds at blocks.{L}.hook_resid_pre only; ${SUPPORTED}`,
          );
        if (feature.model !== 'unknown') models.push(feature.model);
        return { hook, vector: await decoderDirection(sae, feature.saeId, feature.index), strength };
      }
      if (!edit.hook || !edit.vector)
        throw new UserInputError(
          `edits[${i}]: give unit (an SAE feature id) or hook (a blocks.{L}.hook_resid_pre) and vector (d_model values)`,
        );
      if (mode !== 'ADD')
        throw new UserInputError(
          `edits[${i}]: mode ${mode} applies to SAE features; a raw vector can only be ADDed`,
        );
      return { hook: edit.hook, vector: edit.vector, strength };
    }),
  );
  return { steering, models };
}

/** W_dec[feature] in the hook's raw space: the decode of a one-hot feature minus the decode of none (b_dec). */
async function decoderDirection(sae: SaeApi, saeId: string, feature: number): Promise<number[]> {
  const [one, none] = await Promise.all([
    callSae(() => sae.Decode({ saeId, features: [{ feature, value: 1 }] })),
    callSae(() => sae.Decode({ saeId, features: [] })),
  ]);
  return one.vector.map((v, j) => Math.fround(v - none.vector[j]));
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
    const { steering, models } = await toResidualSteering(edits, ctx, this.sae);
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
