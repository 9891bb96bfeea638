import { type LoupeConfig, readWorkspace, UserInputError, workspaceFile } from '@loupe/common';
import type {
  CaptureApi,
  DocumentCollection__Output,
  SaeApi,
  SaeInfo__Output,
  SearchRun__Output,
} from '@loupe/common/grpc';
import { Inject } from '@nestjs/common';
import { Args, Context, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import type DataLoader from 'dataloader';
import { callCapture } from '../capture/capture.js';
import type { GatewayContext } from '../graphql/context.js';
import { checkRange, checkText } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { productFields } from '../shop/product.js';
import { chooseSae } from '../shop/sae-choice.js';
import { sharedFeatures, type TextFeatures } from '../shop/shared-features.js';
import { textFeaturesLoader } from '../shop/text-features.js';
import { type SteeringEditInput, toCaptureSteering } from '../steering/steering-edits.js';
import { CAPTURE, CONFIG, SAE } from '../tokens.js';
import { featureView, saeView } from './sae-views.js';

/** What a search's results need to say why they were found: the SAE, its loader and the query's features. */
interface Explainer {
  sae: SaeInfo__Output;
  features: DataLoader<string, TextFeatures>;
  query: TextFeatures;
}

/** A ShopResult as its field resolvers read it. */
interface ResultView {
  rank: number;
  id: string;
  text: string;
  metadataJson: string;
  score: number;
  title: string;
  price: number | null;
  category: string | null;
  attributes: string[];
  explainer: Explainer | null;
}

export function collectionView(c: DocumentCollection__Output) {
  return { ...c, count: Number(c.count) };
}

function resultViews(run: SearchRun__Output | null, explainer: Explainer | null): ResultView[] {
  return (run?.results ?? []).map((r) => ({
    rank: r.rank,
    id: r.id,
    text: r.text,
    metadataJson: r.metadataJson,
    score: r.score,
    ...productFields(r.metadataJson, r.text),
    explainer,
  }));
}

/**
 * The shop demo over GraphQL: SearchDocuments (steered and unsteered side by side from one call), the
 * query's SAE features with their explanations (Feature.explanations, through the request's loaders),
 * and per result the features it shares with the query, encoded only when a client asks for `why`.
 */
@Resolver('Query')
export class ShopQueries {
  constructor(
    @Inject(CAPTURE) private readonly capture: CaptureApi,
    @Inject(SAE) private readonly sae: SaeApi,
    @Inject(CONFIG) private readonly config: LoupeConfig,
  ) {}

  @Query('shopCollections')
  async shopCollections() {
    const { collections } = await callCapture(() => this.capture.ListCollections({}));
    return collections.map(collectionView);
  }

  @Query('shopSearch')
  async shopSearch(
    @Args('query') query: string,
    @Args('steering') edits: SteeringEditInput[] | null | undefined,
    @Args('k') k: number,
    @Args('collection') name: string,
    @Args('saeId') saeId: string | null | undefined,
    @Args('features') top: number,
    @Context() ctx: GatewayContext,
  ) {
    checkText(query, 'query', this.config.maxTextChars);
    checkRange(k, 'k', 1, LIMITS.maxShopResults);
    checkRange(top, 'features', 1, LIMITS.maxFeaturesPerToken);
    const [collection, { steering, clamps, models }, workspace] = await Promise.all([
      callCapture(() => this.capture.GetCollection({ collection: name })),
      toCaptureSteering(edits ?? [], ctx, this.sae),
      readWorkspace(workspaceFile(this.config.dataDir)),
    ]);
    const other = models.find((m) => m !== collection.model);
    if (other)
      throw new UserInputError(
        `the steering edits steer features of model ${other}, but collection "${collection.name}" was embedded with ${collection.model}`,
      );
    const chosen = await chooseSae(saeId, collection, workspace?.saeId ?? null, ctx, this.sae);
    const loader = chosen.info ? textFeaturesLoader(this.sae, chosen.info.id, top) : null;
    const [search, queryFeatures] = await Promise.all([
      callCapture(() => this.capture.SearchDocuments({ collection: name, query, k, steering, clamps })),
      loader ? loader.load(query) : Promise.resolve(new Map() as TextFeatures),
    ]);
    const explainer =
      chosen.info && loader ? { sae: chosen.info, features: loader, query: queryFeatures } : null;
    return {
      query,
      collection: collectionView(search.collection ?? collection),
      sae: chosen.info,
      saeChoice: chosen.choice,
      queryFeatures: explainer
        ? [...queryFeatures].map(([index, f]) => ({
            feature: featureView(explainer.sae, index),
            value: f.value,
            tokens: f.tokens,
          }))
        : [],
      results: resultViews(search.steered, explainer),
      unsteered: search.unsteered ? resultViews(search.unsteered, explainer) : null,
    };
  }
}

@Resolver('ShopSearchResult')
export class ShopSearchFields {
  @ResolveField('sae')
  sae(@Parent() parent: { sae: SaeInfo__Output | null }) {
    return parent.sae ? saeView(parent.sae) : null;
  }
}

@Resolver('ShopResult')
export class ShopResultFields {
  /** Encodes the result's text (batched with the page's other results) and intersects with the query. */
  @ResolveField('why')
  async why(@Parent() result: ResultView) {
    const explainer = result.explainer;
    if (!explainer) return [];
    const features = await explainer.features.load(result.text);
    return sharedFeatures(explainer.query, features).map((s) => ({
      feature: featureView(explainer.sae, s.feature),
      queryValue: s.queryValue,
      resultValue: s.resultValue,
    }));
  }
}
