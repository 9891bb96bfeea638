import 'reflect-metadata';
import { createLogger, loadConfig } from '@loupe/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { GatewayModule } from './app.module.js';

/** Starts the GraphQL gateway on config.gatewayPort; returns its URL and a function that stops it. */
export async function startGateway(): Promise<{ url: string; close(): Promise<void> }> {
  const config = loadConfig();
  const log = createLogger('gateway', config.logLevel);
  const app = await NestFactory.create<NestExpressApplication>(GatewayModule.register(config, log), {
    logger: ['error', 'warn'],
  });
  // a request may carry a text of maxTextChars (up to 6 bytes each as JSON escapes) plus steering vectors
  app.useBodyParser('json', { limit: config.maxTextChars * 6 + 4 * 1024 * 1024 });
  app.enableShutdownHooks();
  await app.listen(config.gatewayPort);
  const url = `http://127.0.0.1:${config.gatewayPort}/graphql`;
  log.info({ url, capture: config.captureAddress }, 'gateway listening');
  return { url, close: () => app.close() };
}
