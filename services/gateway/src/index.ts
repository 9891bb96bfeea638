// The light part of the gateway (no NestJS, no GraphQL server): what `loupe apikey` needs.
export * from './auth/api-keys.js';
export { SCHEMA_FILE } from './graphql/schema-file.js';
