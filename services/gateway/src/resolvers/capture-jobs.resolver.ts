import type { CaptureApi, CaptureJob__Output } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Mutation, Query, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkHooks } from '../limits/input-checks.js';
import { CAPTURE } from '../tokens.js';

interface StartCaptureInput {
  model?: string | null;
  dataset: string;
  hooks: string[];
  maxTokens: number;
}

export function job(j: CaptureJob__Output) {
  const progress = j.status === 'done' ? 1 : j.totalWindows > 0 ? j.windowsDone / j.totalWindows : 0;
  return { ...j, kind: 'CAPTURE' as const, progress: Math.min(1, progress), error: j.error || null };
}

/** Capture jobs: starting one needs an API key; reading its status does not. */
@Resolver()
export class CaptureJobResolvers {
  constructor(@Inject(CAPTURE) private readonly capture: CaptureApi) {}

  @Query('captureJob')
  async captureJob(@Args('id') id: string) {
    return job(await callCapture(() => this.capture.GetCaptureJob({ id })));
  }

  @Mutation('startCapture')
  async startCapture(@Args('input') input: StartCaptureInput, @Context() ctx: GatewayContext) {
    await ctx.requireApiKey();
    checkHooks(input.hooks);
    const started = await callCapture(() =>
      this.capture.StartCapture({
        model: input.model ?? '',
        dataset: input.dataset,
        hooks: input.hooks,
        maxTokens: input.maxTokens,
      }),
    );
    return job(started);
  }
}
