import 'reflect-metadata';
import {
  createLogger,
  type Logger,
  loadConfig,
  REQUEST_ID_HEADER,
  requestAbort,
  requestIdFrom,
  withRequestContext,
} from '@loupe/common';
import { closeHealthClients, expectServing } from '@loupe/common/grpc';
import { healthHttpAnswer, registerReadiness } from '@loupe/common/metrics';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { GatewayModule } from './app.module.js';
import { GatewayDatabase } from './auth/database.js';
import type { ResponseCache } from './cache/response-cache.js';
import { ResolverErrorsFilter } from './graphql/resolver-errors.filter.js';
import { limitInFlight } from './limits/in-flight.js';
import { corsOptions } from './security/cors.js';
import { rateLimit, rateLimitKey } from './security/rate-limit.js';
import { bodyErrors, requireUtf8, unicodeOnly } from './security/request-body.js';
import { RESPONSE_CACHE } from './tokens.js';

/** Starts the GraphQL gateway on config.gatewayPort; returns its URL and a function that stops it. */
export async function startGateway(): Promise<{ url: string; close(): Promise<void> }> {
  const config = loadConfig();
  const log = createLogger('gateway', config.logLevel);
  const app = await NestFactory.create<NestExpressApplication>(GatewayModule.register(config, log), {
    logger: ['error', 'warn'],
  });
  app.disable('x-powered-by');
  app.useGlobalFilters(new ResolverErrorsFilter(log, app.getHttpAdapter()));
  // the web server renders pages and proxies the browser's GraphQL from loopback: its x-forwarded-for
  // names the browser, so per-client limits (rate, compute slots) count people, not the web server
  app.set('trust proxy', 'loopback');
  // first, so preflights are answered and even a 429 carries the CORS headers a browser needs to read it
  const cors = corsOptions(config.gatewayCorsOrigins);
  if (cors) app.enableCors(cors);
  // per API key (or client address), before any parsing or resolving; see security/rate-limit.ts
  app.use('/graphql', rateLimit(config.gatewayRateLimit));
  // a request may carry a text of maxTextChars (up to 6 bytes each as JSON escapes) plus steering vectors
  app.useBodyParser('json', { limit: config.maxTextChars * 6 + 4 * 1024 * 1024, verify: requireUtf8 });
  // malformed, oversized or non-UTF-8 bodies and lone surrogates: clear GraphQL errors (security/request-body.ts)
  app.use('/graphql', bodyErrors, unicodeOnly);
  // after the body parser, so the request id's async context reaches the resolvers and gRPC clients
  app.use(requestContexts(log, config.gatewayRequestTimeoutMs));
  // kept unit-page answers go out before any parsing or resolving (cache/response-cache.ts) ...
  app.use('/graphql', app.get<ResponseCache>(RESPONSE_CACHE).middleware());
  // ... and what must run is refused with UNAVAILABLE when too much already is (limits/in-flight.ts)
  app.use('/graphql', limitInFlight(config.gatewayMaxInFlight));
  app.use(healthEndpoints);
  // ready when its API key store answers and the capture service is SERVING (sae and explainer only
  // serve parts of the API; their state shows in their own probes)
  const unregister = registerReadiness('gateway', {
    database: async () => (await app.get(GatewayDatabase).sql())`SELECT 1`,
    capture: () => expectServing(config.captureAddress),
  });
  app.enableShutdownHooks();
  await app.listen(config.gatewayPort);
  const url = `http://127.0.0.1:${config.gatewayPort}/graphql`;
  log.info({ url, capture: config.captureAddress }, 'gateway listening');
  return {
    url,
    close: async () => {
      unregister();
      closeHealthClients();
      await app.close();
    },
  };
}

/**
 * Each HTTP request runs under the id the caller sent in x-request-id (or a fresh one), echoed back,
 * with a deadline and an abort signal that fires when the client goes away before the answer is sent:
 * the gRPC calls it made are cancelled, and the services stop their forward passes.
 */
function requestContexts(log: Logger, timeoutMs: number) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    const deadline = Date.now() + timeoutMs;
    const abort = requestAbort(deadline);
    res.once('close', () => {
      if (!res.writableFinished) abort.cancel('the client went away before the answer was sent');
      abort.release();
    });
    const context = { requestId, signal: abort.controller.signal, deadline, client: rateLimitKey(req) };
    withRequestContext(context, () => {
      log.debug({ method: req.method, path: req.path }, 'http request');
      next();
    });
  };
}

/** GET /healthz, /readyz and /metrics on the gateway's own port (see common/metrics). */
function healthEndpoints(req: Request, res: Response, next: NextFunction): void {
  if (req.method !== 'GET') {
    next();
    return;
  }
  healthHttpAnswer(req.path).then((answer) => {
    if (answer) res.status(answer.status).type(answer.contentType).send(answer.body);
    else next();
  }, next);
}
