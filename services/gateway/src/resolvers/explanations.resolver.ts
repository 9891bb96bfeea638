import type { ExplainerApi, StoredExplanation__Output } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Mutation, Parent, ResolveField, Resolver } from '@nestjs/graphql';
import { callExplainer } from '../explainer/explainer.js';
import { connection } from '../graphql/connection.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkRange, checkText } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { EXPLAINER } from '../tokens.js';
import {
  type ExplanationView,
  type LlmChoiceInput,
  llmChoice,
  type ScoringMethod,
  scoreView,
  simulationView,
  storedExplanationView,
  toMethod,
} from './explanation-views.js';
import { loadUnit } from './units.resolver.js';

interface ExplainOptions {
  candidates?: number | null;
  seed?: number | null;
  llm?: LlmChoiceInput | null;
}

interface ScoreOptions {
  seed?: number | null;
  llm?: LlmChoiceInput | null;
  save?: boolean | null;
}

/** A unit's explanations (one ListExplanations for every unit of the request), best score first. */
async function explanationsOf(unitId: string, ctx: GatewayContext): Promise<ExplanationView[]> {
  return (await ctx.loaders.explanations.load(unitId)).map(storedExplanationView);
}

/** The stored explanation just saved, read back so mutations answer with what queries will show. */
async function saved(unitId: string, id: string, ctx: GatewayContext): Promise<ExplanationView> {
  ctx.loaders.explanations.clear(unitId);
  const row = (await ctx.loaders.explanations.load(unitId)).find(
    (e: StoredExplanation__Output) => e.id === id,
  );
  // a bug of the explainer, not the client's: a plain Error reaches clients as INTERNAL
  if (!row) throw new Error(`the explainer saved explanation ${id} but does not list it`);
  return storedExplanationView(row);
}

function explanationsConnection(
  unit: { id: string },
  first: number | undefined,
  after: string | undefined,
  ctx: GatewayContext,
) {
  return explanationsOf(unit.id, ctx).then((list) => connection(list, { first, after }));
}

@Resolver('Neuron')
export class NeuronExplanationFields {
  @ResolveField('explanations')
  explanations(
    @Parent() unit: { id: string },
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    return explanationsConnection(unit, first, after, ctx);
  }
}

@Resolver('Feature')
export class FeatureExplanationFields {
  @ResolveField('explanations')
  explanations(
    @Parent() unit: { id: string },
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    return explanationsConnection(unit, first, after, ctx);
  }
}

@Resolver('Explanation')
export class ExplanationFields {
  @ResolveField('unit')
  unit(@Parent() explanation: ExplanationView, @Context() ctx: GatewayContext) {
    return loadUnit(explanation.unitId, ctx);
  }
}

/** Explaining and scoring units: each needs an API key and costs LLM tokens (or baseline CPU). */
@Resolver()
export class ExplainMutations {
  constructor(@Inject(EXPLAINER) private readonly explainer: ExplainerApi) {}

  /** Explains a unit from its records (held-out score) and saves it; the unit must exist and have records. */
  @Mutation('explain')
  async explain(
    @Args('unit') unit: string,
    @Args('options') options: ExplainOptions | undefined,
    @Context() ctx: GatewayContext,
  ) {
    await ctx.requireApiKey();
    const candidates = checkRange(options?.candidates ?? 1, 'candidates', 1, LIMITS.maxCandidates);
    const { id } = await loadUnit(unit, ctx);
    const reply = await callExplainer(() =>
      this.explainer.Explain({
        unit: id,
        llm: llmChoice(options?.llm),
        candidates,
        seed: options?.seed ?? 0,
        save: true,
      }),
    );
    return {
      explanation: await saved(id, reply.explanationId, ctx),
      candidates: reply.candidates.map((c) => ({
        text: c.explanation,
        selectionScore: c.selectionScore ?? null,
      })),
      simulatedTop: reply.score?.simulatedTop.map(simulationView) ?? [],
      simulatedRandom: reply.score?.simulatedRandom.map(simulationView) ?? [],
    };
  }

  /** Scores an explanation of a unit on all its records (no split); saved unless options.save is false. */
  @Mutation('score')
  async score(
    @Args('unit') unit: string,
    @Args('explanation') explanation: string,
    @Args('method') method: ScoringMethod | undefined,
    @Args('options') options: ScoreOptions | undefined,
    @Context() ctx: GatewayContext,
  ) {
    await ctx.requireApiKey();
    checkText(explanation.trim(), 'explanation', LIMITS.maxExplanationChars);
    const { id } = await loadUnit(unit, ctx);
    const save = options?.save ?? true;
    const reply = await callExplainer(() =>
      this.explainer.Score({
        unit: id,
        explanation,
        method: toMethod(method),
        llm: llmChoice(options?.llm),
        seed: options?.seed ?? 0,
        save,
      }),
    );
    const score = reply.score!;
    return {
      score: scoreView(score, { explainer: '', simulator: '' }),
      explanation: save ? await saved(id, reply.explanationId, ctx) : null,
      simulatedTop: score.simulatedTop.map(simulationView),
      simulatedRandom: score.simulatedRandom.map(simulationView),
    };
  }
}
