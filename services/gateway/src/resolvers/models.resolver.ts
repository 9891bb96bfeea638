import { type LoupeConfig, UserInputError } from '@loupe/common';
import type { CaptureApi, HookInfo__Output, ModelInfoResponse__Output } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import { connection } from '../graphql/connection.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkHooks, checkText } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { CAPTURE, CONFIG } from '../tokens.js';
import { type TokenView, tokens } from './views.js';

type HookView = HookInfo__Output & { modelName: string };

interface HookActivationsView {
  hook: string;
  width: number;
  rows: number;
  shape: number[];
  data: Float32Array;
}

interface HookPatchInput {
  hook: string;
  mode: string;
  positions?: number[] | null;
  head?: number | null;
  values?: (number | null)[] | null;
}

/** Models and their hooks; tokenizing and activations of a text. */
@Resolver('Query')
export class ModelQueries {
  constructor(
    @Inject(CAPTURE) private readonly capture: CaptureApi,
    @Inject(CONFIG) private readonly config: LoupeConfig,
  ) {}

  @Query('models')
  async models(
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    // the capture service has no model list yet: its default model is the one it serves
    return connection([await ctx.loaders.modelInfo.load('')], { first, after });
  }

  @Query('model')
  model(@Args('name') name: string | undefined, @Context() ctx: GatewayContext) {
    return ctx.loaders.modelInfo.load(name ?? '');
  }

  @Query('tokenize')
  async tokenize(@Args('text') text: string, @Args('model') model: string | undefined) {
    checkText(text, 'text', this.config.maxTextChars);
    const response = await callCapture(() => this.capture.Tokenize({ model: model ?? '', text }));
    return { tokens: tokens(response.ids, response.tokens) };
  }

  @Query('activations')
  async activations(
    @Args('text') text: string,
    @Args('hooks') hooks: string[],
    @Args('model') model: string | undefined,
    @Args('patches') patches: HookPatchInput[] | undefined,
  ): Promise<{ tokens: TokenView[]; hooks: HookActivationsView[] }> {
    checkText(text, 'text', this.config.maxTextChars);
    checkHooks(hooks);
    const wirePatches = (patches ?? []).map((p) => ({
      hook: p.hook,
      mode: p.mode,
      positions: p.positions ?? [],
      ...(p.head === null || p.head === undefined ? {} : { head: p.head }),
      // a null (masked) score travels as -infinity, as the capture service reads it
      values: (p.values ?? []).map((v) => v ?? Number.NEGATIVE_INFINITY),
    }));
    const response = await callCapture(() =>
      this.capture.Activations({ model: model ?? '', text, hooks, logits: false, patches: wirePatches }),
    );
    return {
      tokens: tokens(response.ids, response.tokens),
      hooks: hooks.map((hook) => {
        const tensor = response.activations[hook];
        const copy = Buffer.from(tensor.data);
        const data = new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
        const shape = tensor.shape.map(Number);
        // values' rows: every axis but the last (a [head, q, k] hook gives head · q rows of k)
        const width = shape.at(-1) ?? 0;
        return { hook, rows: width === 0 ? 0 : data.length / width, width, shape, data };
      }),
    };
  }
}

@Resolver('ModelInfo')
export class ModelInfoFields {
  @ResolveField('hooks')
  hooks(
    @Parent() model: ModelInfoResponse__Output,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    const hooks: HookView[] = model.hooks.map((hook) => ({ ...hook, modelName: model.name }));
    return connection(hooks, { first, after });
  }
}

@Resolver('Hook')
export class HookFields {
  @ResolveField('model')
  model(@Parent() hook: HookView, @Context() ctx: GatewayContext) {
    return ctx.loaders.modelInfo.load(hook.modelName);
  }
}

@Resolver('HookActivations')
export class HookActivationsFields {
  @ResolveField('tensor')
  tensor(@Parent() view: HookActivationsView): (number | null)[] {
    if (view.data.length > LIMITS.maxValuesPerHook)
      throw new UserInputError(
        `${view.hook} has ${view.data.length} values, more than ${LIMITS.maxValuesPerHook}: use values with indices, or a shorter text`,
        'TOO_LONG',
      );
    return Array.from(view.data, (v) => (v === Number.NEGATIVE_INFINITY ? null : v));
  }

  /** Rows per token; with indices, only those columns, so a wide hook stays a small answer. */
  @ResolveField('values')
  values(@Parent() view: HookActivationsView, @Args('indices') indices: number[] | undefined): number[][] {
    const { rows, width, data } = view;
    if (view.hook.endsWith('attn.hook_attn_scores'))
      throw new UserInputError(
        `${view.hook} has masked entries, which values cannot hold: ask for tensor (null where masked)`,
      );
    if (indices) {
      const bad = indices.find((i) => !Number.isInteger(i) || i < 0 || i >= width);
      if (bad !== undefined)
        throw new UserInputError(`index ${bad} is outside ${view.hook}, which has columns 0-${width - 1}`);
    }
    const columns = indices?.length ?? width;
    if (rows * columns > LIMITS.maxValuesPerHook)
      throw new UserInputError(
        `${rows} tokens × ${columns} columns of ${view.hook} is more than ${LIMITS.maxValuesPerHook} values: ` +
          'pass indices to pick columns, or a shorter text',
        'TOO_LONG',
      );
    return Array.from({ length: rows }, (_, t) => {
      const row = data.subarray(t * width, (t + 1) * width);
      return indices ? indices.map((i) => row[i]) : Array.from(row);
    });
  }
}
