import { UserInputError } from '@loupe/common';
import type { ExplainerApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Mutation, Query, Resolver } from '@nestjs/graphql';
import { callExplainer } from '../explainer/explainer.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkRange } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { EXPLAINER } from '../tokens.js';
import { servedNeuronExample } from '../units/unit-id.js';
import {
  type LlmChoiceInput,
  llmChoice,
  type ScoringMethod,
  scoringJobView,
  toMethod,
} from './explanation-views.js';

interface StartScoringJobInput {
  units: string;
  method?: ScoringMethod | null;
  budgetTokens?: number | null;
  concurrency?: number | null;
  seed?: number | null;
  maxAttempts?: number | null;
  llm?: LlmChoiceInput | null;
}

/** Batch scoring jobs of the explainer: starting needs an API key, reading does not (cancelJob: cancel-jobs.resolver.ts). */
@Resolver()
export class ScoringJobResolvers {
  constructor(@Inject(EXPLAINER) private readonly explainer: ExplainerApi) {}

  @Query('scoringJob')
  async scoringJob(@Args('id') id: string) {
    return scoringJobView(await callExplainer(() => this.explainer.GetJob({ id })));
  }

  @Mutation('startScoringJob')
  async startScoringJob(@Args('input') input: StartScoringJobInput, @Context() ctx: GatewayContext) {
    await ctx.requireApiKey();
    if (input.units.trim() === '')
      throw new UserInputError(`units is empty: give e.g. "${await servedNeuronExample(ctx)}-99"`);
    const budget = input.budgetTokens ?? 0;
    if (!Number.isSafeInteger(budget) || budget < 0)
      throw new UserInputError(`budgetTokens must be a whole number of tokens, 0 = no limit; got ${budget}`);
    const request = {
      units: input.units,
      method: toMethod(input.method),
      llm: llmChoice(input.llm),
      budgetTokens: budget,
      concurrency: checkRange(input.concurrency ?? 4, 'concurrency', 1, LIMITS.maxJobConcurrency),
      seed: input.seed ?? 0,
      maxAttempts: checkRange(input.maxAttempts ?? 3, 'maxAttempts', 1, 10),
    };
    return scoringJobView(await callExplainer(() => this.explainer.StartScoringJob(request)));
  }
}
