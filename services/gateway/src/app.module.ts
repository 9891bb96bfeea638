import type { Logger, LoupeConfig } from '@loupe/common';
import { type CaptureApi, captureServiceClient } from '@loupe/common/grpc';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { type DynamicModule, Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { GraphQLModule } from '@nestjs/graphql';
import { ApiKeys } from './auth/api-key-guard.js';
import { GatewayDatabase } from './auth/database.js';
import { createContext } from './graphql/context.js';
import { formatError } from './graphql/errors.js';
import { SCHEMA_FILE } from './graphql/schema-file.js';
import { LIMITS } from './limits/limits.js';
import { costLimit, depthLimit } from './limits/query-limits.js';
import { CaptureJobResolvers } from './resolvers/capture-jobs.resolver.js';
import {
  HookActivationsFields,
  HookFields,
  ModelInfoFields,
  ModelQueries,
} from './resolvers/models.resolver.js';
import { SteerQueries } from './resolvers/steer.resolver.js';
import { NeuronFields, QuantileBinFields, UnitQueries, UnitType } from './resolvers/units.resolver.js';
import { CAPTURE, CONFIG, LOGGER } from './tokens.js';

/** Closes the capture channel when the app stops. */
class CaptureChannel implements OnApplicationShutdown {
  constructor(@Inject(CAPTURE) private readonly capture: CaptureApi) {}
  onApplicationShutdown(): void {
    this.capture.close();
  }
}

/** Configuration, the log, the service clients and the API key store: shared by everything. */
@Global()
@Module({})
class GatewayCore {
  static register(config: LoupeConfig, log: Logger): DynamicModule {
    const providers = [
      { provide: CONFIG, useValue: config },
      { provide: LOGGER, useValue: log },
      { provide: CAPTURE, useValue: captureServiceClient(config.captureAddress) },
      GatewayDatabase,
      ApiKeys,
    ];
    return {
      module: GatewayCore,
      providers: [...providers, CaptureChannel],
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
          inject: [CAPTURE, ApiKeys],
          useFactory: (capture: CaptureApi, apiKeys: ApiKeys): ApolloDriverConfig => ({
            path: '/graphql',
            typePaths: [SCHEMA_FILE],
            validationRules: [
              depthLimit(LIMITS.maxDepth),
              costLimit(LIMITS.maxCost, { defaultPage: LIMITS.defaultPage, maxPage: LIMITS.maxPage }),
            ],
            formatError: formatError(log),
            includeStacktraceInErrorResponses: false,
            introspection: true,
            context: ({ req }: { req: Parameters<typeof createContext>[0] }) =>
              createContext(req, capture, apiKeys, log),
          }),
        }),
      ],
      providers: [
        ModelQueries,
        ModelInfoFields,
        HookFields,
        HookActivationsFields,
        UnitQueries,
        UnitType,
        NeuronFields,
        QuantileBinFields,
        SteerQueries,
        CaptureJobResolvers,
      ],
    };
  }
}
