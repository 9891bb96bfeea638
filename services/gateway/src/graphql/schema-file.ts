import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The GraphQL schema (SDL), the one source of the API's types: the server is built from it and
 * clients generate their types from it. Found from this module whether it runs from src/ or dist/.
 */
export const SCHEMA_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../schema.graphql');
