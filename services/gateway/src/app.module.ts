import type { IncomingMessage } from 'node:http';
import type { Logger, LoupeConfig } from '@loupe/common';
import {
  type CaptureApi,
  captureServiceClient,
  type ExplainerApi,
  explainerServiceClient,
  type SaeApi,
  saeServiceClient,
} from '@loupe/common/grpc';
import { graphqlMetricsPlugin } from '@loupe/common/metrics';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { type DynamicModule, Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { GraphQLModule } from '@nestjs/graphql';
import { ApiKeys } from './auth/api-key-guard.js';
import { GatewayDatabase } from './auth/database.js';
import { readAccessPlugin, subscriptionAccessErrors } from './auth/read-access.js';
import { NeuronRecordCache } from './cache/neuron-records.js';
import { ResponseCache } from './cache/response-cache.js';
import { createContext } from './graphql/context.js';
import { formatError } from './graphql/errors.js';
import { SCHEMA_FILE } from './graphql/schema-file.js';
import { graphqlWsHooks } from './graphql/subscriptions.js';
import { computeLimitPlugin } from './limits/compute-cost.js';
import { ComputeSlots, limitCompute } from './limits/compute-slots.js';
import { LIMITS } from './limits/limits.js';
import { costLimit, depthLimit } from './limits/query-limits.js';
import { BrowseQueries } from './resolvers/browse.resolver.js';
import { CancelJobResolvers, JobType } from './resolvers/cancel-jobs.resolver.js';
import { CaptureJobResolvers } from './resolvers/capture-jobs.resolver.js';
import { EncodeQueries } from './resolvers/encode.resolver.js';
import {
  ExplainMutations,
  ExplanationFields,
  FeatureExplanationFields,
  NeuronExplanationFields,
} from './resolvers/explanations.resolver.js';
import { FeatureFields } from './resolvers/features.resolver.js';
import { JobsQueries } from './resolvers/jobs.resolver.js';
import {
  HookActivationsFields,
  HookFields,
  ModelInfoFields,
  ModelQueries,
} from './resolvers/models.resolver.js';
import { ProgressSubscriptions } from './resolvers/progress.resolver.js';
import {
  NeuronPublishedFields,
  PublishedNeuronFields,
  PublishedQueries,
} from './resolvers/published.resolver.js';
import { ResearchQueries } from './resolvers/research.resolver.js';
import { ModelSaeFields, SaeFields, SaeQueries } from './resolvers/saes.resolver.js';
import { ScoringJobResolvers } from './resolvers/scoring-jobs.resolver.js';
import { ExplanationSearchEdgeFields, SearchQueries } from './resolvers/search.resolver.js';
import { ShopQueries, ShopResultFields, ShopSearchFields } from './resolvers/shop.resolver.js';
import { SteerQueries } from './resolvers/steer.resolver.js';
import { TrainingJobFields, TrainingJobResolvers } from './resolvers/training-jobs.resolver.js';
import {
  NeuronFields,
  QuantileBinFields,
  UnitNeighbourConnectionType,
  UnitNeighbourEdgeType,
  UnitQueries,
  UnitType,
} from './resolvers/units.resolver.js';
import { WorkspaceResolvers } from './resolvers/workspace.resolver.js';
import { CAPTURE, CONFIG, EXPLAINER, LOGGER, RECORD_CACHE, RESPONSE_CACHE, SAE } from './tokens.js';

/**
 * Apollo's ApolloServerPluginCacheControlDisabled() spelled out: Nest's driver loads another copy of
 * @apollo/server than this package's, and the marker is all either copy looks at.
 */
const CACHE_CONTROL_DISABLED = {
  __internal_plugin_id__: 'CacheControl',
  __is_disabled_plugin__: true,
} as NonNullable<ApolloDriverConfig['plugins']>[number];

/** Closes the service channels when the app stops. */
class ServiceChannels implements OnApplicationShutdown {
  constructor(
    @Inject(CAPTURE) private readonly capture: CaptureApi,
    @Inject(SAE) private readonly sae: SaeApi,
    @Inject(EXPLAINER) private readonly explainer: ExplainerApi,
  ) {}
  onApplicationShutdown(): void {
    this.capture.close();
    this.sae.close();
    this.explainer.close();
  }
}

/** Headers of the request: Apollo passes { req } per HTTP request, graphql-ws its socket context. */
function headersOf(arg: { req?: IncomingMessage; extra?: { request?: IncomingMessage } }) {
  return (arg.req ?? arg.extra?.request)?.headers ?? {};
}

/** Subscriptions need an API key too when reads are closed (LOUPE_GATEWAY_PUBLIC_READS=false). */
function closedReads(hooks: ReturnType<typeof graphqlWsHooks>, config: LoupeConfig, apiKeys: ApiKeys) {
  return {
    ...hooks,
    onSubscribe: async (ctx: { extra: unknown }, id: string, payload: { query: string }) =>
      (await subscriptionAccessErrors(
        config.gatewayPublicReads,
        apiKeys,
        (ctx.extra as { request?: IncomingMessage } | undefined)?.request?.headers.authorization,
      )) ?? hooks.onSubscribe(ctx, id, payload),
  };
}

/** Configuration, the log, the service clients and the API key store: shared by everything. */
@Global()
@Module({})
class GatewayCore {
  static register(config: LoupeConfig, log: Logger): DynamicModule {
    const slots = new ComputeSlots(config.gatewayComputeSlots);
    const providers = [
      { provide: CONFIG, useValue: config },
      { provide: LOGGER, useValue: log },
      // forward passes run under per-client slots (limits/compute-slots.ts)
      {
        provide: CAPTURE,
        useValue: limitCompute(
          captureServiceClient(config.captureAddress),
          ['Generate', 'Activations', 'SearchDocuments'],
          slots,
        ),
      },
      { provide: SAE, useValue: limitCompute(saeServiceClient(config.saeAddress), ['Encode'], slots) },
      { provide: EXPLAINER, useValue: explainerServiceClient(config.explainerAddress) },
      // records of finished jobs and whole unit-page answers share LOUPE_CACHE_MB, half each
      { provide: RECORD_CACHE, useValue: new NeuronRecordCache((config.cacheMb * 1024 * 1024) / 2) },
      {
        provide: RESPONSE_CACHE,
        // only with public reads: a kept answer skips the API key check that closed reads need
        useValue: new ResponseCache(
          (config.cacheMb * 1024 * 1024) / 2,
          config.gatewayPublicReads ? config.gatewayResponseCacheMs : 0,
          `http://127.0.0.1:${config.gatewayPort}/graphql`,
        ),
      },
      GatewayDatabase,
      ApiKeys,
    ];
    return {
      module: GatewayCore,
      providers: [...providers, ServiceChannels],
      exports: providers.map((p) => ('provide' in p ? p.provide : p)),
    };
  }
}

@Module({})
export class GatewayModule {
  static register(config: LoupeConfig, log: Logger): DynamicModule {
    return {
      module: GatewayModule,
      imports: [
        GatewayCore.register(config, log),
        GraphQLModule.forRootAsync<ApolloDriverConfig>({
          driver: ApolloDriver,
          inject: [CAPTURE, SAE, EXPLAINER, ApiKeys, RECORD_CACHE, RESPONSE_CACHE],
          useFactory: (
            capture: CaptureApi,
            sae: SaeApi,
            explainer: ExplainerApi,
            apiKeys: ApiKeys,
            records: NeuronRecordCache,
            responses: ResponseCache,
          ): ApolloDriverConfig => ({
            path: '/graphql',
            typePaths: [SCHEMA_FILE],
            parseOptions: { maxTokens: LIMITS.maxTokens },
            validationRules: [
              depthLimit(LIMITS.maxDepth),
              costLimit(LIMITS.maxCost, { defaultPage: LIMITS.defaultPage, maxPage: LIMITS.maxPage }),
            ],
            formatError: formatError(log),
            includeStacktraceInErrorResponses: false,
            introspection: true,
            plugins: [
              // no @cacheControl hints in the schema: its per-field hook only cost time on every field
              CACHE_CONTROL_DISABLED,
              responses.plugin(),
              graphqlMetricsPlugin(),
              readAccessPlugin(config.gatewayPublicReads, apiKeys),
              computeLimitPlugin(LIMITS.maxComputeTokens),
            ],
            context: (arg: Parameters<typeof headersOf>[0]) =>
              createContext(headersOf(arg), { capture, sae, explainer, apiKeys, log, records }),
            // job progress subscriptions; graphql-ws does not go through Apollo: limits and errors are applied here
            subscriptions: { 'graphql-ws': closedReads(graphqlWsHooks(formatError(log)), config, apiKeys) },
          }),
        }),
      ],
      providers: [
        ModelQueries,
        ResearchQueries,
        ModelInfoFields,
        HookFields,
        HookActivationsFields,
        UnitQueries,
        UnitType,
        UnitNeighbourConnectionType,
        UnitNeighbourEdgeType,
        NeuronFields,
        NeuronPublishedFields,
        PublishedQueries,
        PublishedNeuronFields,
        QuantileBinFields,
        SteerQueries,
        CaptureJobResolvers,
        SaeQueries,
        ModelSaeFields,
        SaeFields,
        FeatureFields,
        EncodeQueries,
        TrainingJobResolvers,
        WorkspaceResolvers,
        TrainingJobFields,
        ProgressSubscriptions,
        NeuronExplanationFields,
        FeatureExplanationFields,
        ExplanationFields,
        ExplainMutations,
        ScoringJobResolvers,
        CancelJobResolvers,
        JobType,
        JobsQueries,
        SearchQueries,
        ExplanationSearchEdgeFields,
        BrowseQueries,
        ShopQueries,
        ShopSearchFields,
        ShopResultFields,
      ],
    };
  }
}
