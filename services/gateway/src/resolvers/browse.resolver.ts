import { UserInputError } from '@loupe/common';
import type { CaptureApi, ExplainerApi, SaeApi } from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Query, Resolver } from '@nestjs/graphql';
import { callCapture } from '../capture/capture.js';
import { callExplainer } from '../explainer/explainer.js';
import { pageConnection, pageWindow } from '../graphql/connection.js';
import type { GatewayContext } from '../graphql/context.js';
import { callSae } from '../sae/sae.js';
import { CAPTURE, EXPLAINER, SAE } from '../tokens.js';
import { featureId, parseUnitId } from '../units/unit-id.js';
import { type ScoringMethod, toMethod } from './explanation-views.js';
import { loadFeature, neuronView } from './units.resolver.js';

type UnitOrder = 'INDEX' | 'MAX_ACTIVATION' | 'FREQUENCY' | 'SCORE';

/** The capture and SAE services' order_by of each order (SCORE is the gateway's own, see below). */
const SERVICE_ORDER: Record<Exclude<UnitOrder, 'SCORE'>, { neuron: string; feature: string }> = {
  INDEX: { neuron: 'neuron', feature: 'feature' },
  MAX_ACTIVATION: { neuron: 'max_activation', feature: 'max_activation' },
  FREQUENCY: { neuron: 'frequency', feature: 'frequency' },
};

interface Ranked<R> {
  index: number;
  row: R;
  score: number | null;
}

/**
 * Browsing a hook's neurons or an SAE's features. By statistic, the service orders and pages. By score,
 * the gateway takes every unit's statistics (one list call) and each unit's best score of the method
 * (one ListExplanations over the hook's or SAE's unit prefix), and orders them itself: best score
 * first, unscored units after in index order. Each edge carries the unit's best score.
 */
@Resolver()
export class BrowseQueries {
  constructor(
    @Inject(CAPTURE) private readonly capture: CaptureApi,
    @Inject(SAE) private readonly sae: SaeApi,
    @Inject(EXPLAINER) private readonly explainer: ExplainerApi,
  ) {}

  @Query('hookUnits')
  async hookUnits(
    @Args('model') model: string | undefined,
    @Args('hook') hook: string,
    @Args('orderBy') orderBy: UnitOrder | undefined,
    @Args('scoreMethod') scoreMethod: ScoringMethod | undefined,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
  ) {
    const ref = parseUnitId(`${model ?? 'model'}/${hook}/0`);
    if (ref.kind !== 'neuron')
      throw new UserInputError(`hook "${hook}": neurons are listed for blocks.{L}.mlp.hook_post hooks only`);
    const page = pageWindow({ first, after });
    const order = orderBy ?? 'MAX_ACTIVATION';
    const list = (orderBy: string, offset: number, limit: number) =>
      callCapture(() => this.capture.ListNeurons({ model: model ?? '', hook, orderBy, offset, limit }));
    const reply =
      order === 'SCORE'
        ? await list('neuron', 0, 0)
        : await list(SERVICE_ORDER[order].neuron, page.start, page.first);
    const unitId = (neuron: number) => `${reply.model}/${hook}/${neuron}`;
    const ranked = await this.ranked(
      reply.neurons.map((row) => ({ index: row.neuron, row })),
      order,
      page,
      `${reply.model}/${hook}/`,
      unitId,
      scoreMethod,
    );
    const layer = Number(/^blocks\.(\d+)\./.exec(hook)![1]);
    const nodes = ranked.map((r) => ({
      node: neuronView(
        { kind: 'neuron', model: reply.model, hook, layer, index: r.index },
        reply.jobId,
        r.row,
      ),
      score: r.score,
    }));
    return this.connection(nodes, page.start, reply.total);
  }

  @Query('saeFeatures')
  async saeFeatures(
    @Args('saeId') saeId: string,
    @Args('orderBy') orderBy: UnitOrder | undefined,
    @Args('scoreMethod') scoreMethod: ScoringMethod | undefined,
    @Args('first') first: number | undefined,
    @Args('after') after: string | undefined,
    @Context() ctx: GatewayContext,
  ) {
    const page = pageWindow({ first, after });
    const order = orderBy ?? 'MAX_ACTIVATION';
    const info = await ctx.loaders.sae.load(saeId);
    const list = (orderBy: string, offset: number, limit: number) =>
      callSae(() => this.sae.ListFeatures({ saeId, orderBy, offset, limit }));
    const reply =
      order === 'SCORE'
        ? await list('feature', 0, 0)
        : await list(SERVICE_ORDER[order].feature, page.start, page.first);
    const unitId = (feature: number) => featureId(info.model, saeId, feature);
    const ranked = await this.ranked(
      reply.features.map((row) => ({ index: row.feature, row })),
      order,
      page,
      `${info.model}/${saeId}/`,
      unitId,
      scoreMethod,
    );
    const nodes = await Promise.all(
      ranked.map(async (r) => ({
        node: {
          ...(await loadFeature({ kind: 'feature', model: info.model, saeId, index: r.index }, ctx)),
          listed: { ...r.row, tokens: Number(reply.tokens) },
        },
        score: r.score,
      })),
    );
    return this.connection(nodes, page.start, reply.total);
  }

  /**
   * The page's units with their best scores. Ordered by a statistic, rows are already the page (one
   * ListExplanations for its units); by SCORE, rows are every unit, ordered and cut here.
   */
  private async ranked<R>(
    rows: { index: number; row: R }[],
    order: UnitOrder,
    page: { start: number; first: number },
    prefix: string,
    unitId: (index: number) => string,
    scoreMethod: ScoringMethod | undefined,
  ): Promise<Ranked<R>[]> {
    const method = toMethod(scoreMethod);
    if (order !== 'SCORE') {
      if (rows.length === 0) return [];
      const best = await this.bestScores({ units: rows.map((r) => unitId(r.index)), method });
      return rows.map((r) => ({ ...r, score: best.get(unitId(r.index)) ?? null }));
    }
    const best = await this.bestScores({ unitPrefix: prefix, method });
    const all = rows.map((r) => ({ ...r, score: best.get(unitId(r.index)) ?? null }));
    all.sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity) || a.index - b.index);
    return all.slice(page.start, page.start + page.first);
  }

  private async bestScores(request: { units?: string[]; unitPrefix?: string; method: string }) {
    const { explanations } = await callExplainer(() =>
      this.explainer.ListExplanations({ ...request, bestOnly: true }),
    );
    return new Map(explanations.map((e) => [e.unit, e.score?.score ?? null]));
  }

  private connection<N>(nodes: { node: N; score: number | null }[], start: number, total: number) {
    const paged = pageConnection(nodes, start, total);
    return {
      edges: paged.edges.map((e) => ({ cursor: e.cursor, node: e.node.node, score: e.node.score })),
      pageInfo: paged.pageInfo,
      totalCount: total,
    };
  }
}
