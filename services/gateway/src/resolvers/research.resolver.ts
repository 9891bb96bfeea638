import { type LoupeConfig, UserInputError } from '@loupe/common';
import type { CaptureApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Query, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import { checkText } from '../limits/input-checks.js';
import { CAPTURE, CONFIG } from '../tokens.js';
import { tokens } from './views.js';

/** Logit lens, direct logit attribution and activation patching: translations of the capture RPCs. */
@Resolver('Query')
export class ResearchQueries {
  constructor(
    @Inject(CAPTURE) private readonly capture: CaptureApi,
    @Inject(CONFIG) private readonly config: LoupeConfig,
  ) {}

  @Query('logitLens')
  async logitLens(
    @Args('text') text: string,
    @Args('model') model: string | undefined,
    @Args('token') token: string | undefined,
    @Args('top') top: number | undefined,
  ) {
    checkText(text, 'text', this.config.maxTextChars);
    if (top !== undefined && top !== null && (top < 1 || top > 100))
      throw new UserInputError(`top must be 1-100, got ${top}`);
    const lens = await callCapture(() =>
      this.capture.LogitLens({ model: model ?? '', text, token: token ?? '', top: top ?? 0 }),
    );
    const followed = Boolean(token);
    return {
      tokens: tokens(lens.ids, lens.tokens),
      token: followed ? { id: lens.tokenId, token: lens.token, probability: 0 } : null,
      cells: lens.layers.map((layer) =>
        layer.positions.map((cell) => ({
          top: cell.top.map((t) => ({ id: t.id, token: t.token, probability: t.value })),
          rank: followed ? cell.rank : null,
          probability: followed ? cell.probability : null,
        })),
      ),
    };
  }

  @Query('directLogitAttribution')
  async directLogitAttribution(
    @Args('text') text: string,
    @Args('token') token: string,
    @Args('wrong') wrong: string | undefined,
    @Args('model') model: string | undefined,
  ) {
    checkText(text, 'text', this.config.maxTextChars);
    const dla = await callCapture(() =>
      this.capture.DirectLogitAttribution({ model: model ?? '', text, token, wrong: wrong ?? '' }),
    );
    return {
      tokens: tokens(dla.ids, dla.tokens),
      position: dla.position,
      token: dla.token,
      wrong: wrong ? dla.wrong : null,
      logit: dla.logit,
      layers: dla.layers.map((layer, index) => ({ layer: index, ...layer })),
      embed: dla.embed,
      lnBias: dla.lnBias,
    };
  }

  @Query('activationPatching')
  async activationPatching(
    @Args('clean') clean: string,
    @Args('corrupted') corrupted: string,
    @Args('answer') answer: string,
    @Args('wrong') wrong: string,
    @Args('hook') hook: string,
    @Args('model') model: string | undefined,
  ) {
    checkText(clean, 'clean', this.config.maxTextChars);
    checkText(corrupted, 'corrupted', this.config.maxTextChars);
    const result = await callCapture(() =>
      this.capture.ActivationPatching({ model: model ?? '', clean, corrupted, answer, wrong, hook }),
    );
    return {
      hook: result.hook,
      tokens: tokens(result.ids, result.tokens),
      cleanDiff: result.cleanDiff,
      corruptedDiff: result.corruptedDiff,
      scores: result.layers.map((layer) => layer.scores.map((s) => (Number.isNaN(s) ? null : s))),
      diffs: result.layers.map((layer) => layer.diffs),
    };
  }
}
