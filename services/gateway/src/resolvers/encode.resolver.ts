import type { LoupeConfig } from '@loupe/common';
import type { SaeApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Query, Resolver } from '@nestjs/graphql';
import type { GatewayContext } from '../graphql/context.js';
import { checkRange, checkText } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { callSae } from '../sae/sae.js';
import { CONFIG, SAE } from '../tokens.js';
import { featureView, saeView } from './sae-views.js';

/** "Which units fire on this text": the SAE service runs the model and encodes every token. */
@Resolver('Query')
export class EncodeQueries {
  constructor(
    @Inject(SAE) private readonly sae: SaeApi,
    @Inject(CONFIG) private readonly config: LoupeConfig,
  ) {}

  @Query('encode')
  async encode(
    @Args('text') text: string,
    @Args('saeId') saeId: string,
    @Args('perToken') perToken: number,
    @Args('top') top: number,
    @Context() ctx: GatewayContext,
  ) {
    checkText(text, 'text', this.config.maxTextChars);
    checkRange(perToken, 'perToken', 1, LIMITS.maxFeaturesPerToken);
    checkRange(top, 'top', 1, LIMITS.maxPage);
    const [info, encoded] = await Promise.all([
      ctx.loaders.sae.load(saeId),
      callSae(() => this.sae.Encode({ saeId, text, perToken, top })),
    ]);
    const feature = (index: number) => featureView(info, index);
    return {
      sae: saeView(info),
      tokens: encoded.tokens.map((t) => ({
        token: { id: t.id, text: t.token },
        l0: t.l0,
        features: t.features.map((f) => ({ feature: feature(f.feature), value: f.value })),
      })),
      top: encoded.top.map((s) => ({
        feature: feature(s.feature),
        maxValue: s.maxValue,
        tokens: s.tokens,
        maxPosition: s.maxPosition,
      })),
    };
  }
}
