import type { CorsOptions } from '@nestjs/common/interfaces/external/cors-options.interface.js';

/**
 * Which browser origins may call the gateway cross-origin (LOUPE_GATEWAY_CORS_ORIGINS). Unset: none,
 * no CORS headers are sent and browsers keep pages of other origins out (the web app proxies
 * /graphql, so it is same-origin). `*` allows any origin, without credentials.
 */
export function corsOptions(origins: string[] | undefined): CorsOptions | undefined {
  if (!origins?.length) return undefined;
  return {
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['content-type', 'authorization', 'x-request-id', 'apollo-require-preflight'],
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
  };
}
