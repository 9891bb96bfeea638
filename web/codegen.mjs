// @ts-check
/**
 * GraphQL Code Generator for the web app: typed documents (the client preset's `graphql()` in lib/gql/)
 * for every query, mutation, subscription and fragment written as `graphql(`…`)` in app/, components/
 * and lib/, typed against the gateway's schema file.
 *
 *   node codegen.mjs          (re)write lib/gql/
 *   node codegen.mjs --check  exit 1 when lib/gql/ is not what the schema and the documents generate
 *
 * The configuration below is what a codegen.ts for `@graphql-codegen/cli` would hold. The CLI itself is
 * not used: its loaders and terminal UI depend on packages that need Node 22, and this repository runs on
 * Node 20. So this drives `@graphql-codegen/core` with the same preset, as the CLI does: the schema is
 * read from its file (sorted, as the CLI sorts it), the documents are plucked from the code with the
 * CLI's own pluck library and options, and nothing is fetched.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { preset } from '@graphql-codegen/client-preset';
import { codegen } from '@graphql-codegen/core';
import { gqlPluckFromCodeStringSync } from '@graphql-tools/graphql-tag-pluck';
import { buildSchema, lexicographicSortSchema, parse, printSchema } from 'graphql';

const config = {
  schema: '../services/gateway/schema.graphql',
  /** folders whose .ts and .tsx files are searched for graphql() documents */
  documents: ['app', 'components', 'lib'],
  /** the client preset writes graphql.ts (types and documents), gql.ts (graphql()) and index.ts */
  output: 'lib/gql/',
  presetConfig: {
    // Apollo Client hands a component the whole result: fragments are spread into the types, not masked
    fragmentMasking: false,
  },
  config: {
    useTypeImports: true,
    // the CLI's default: extensionless imports between the generated files
    emitLegacyCommonJSImports: true,
  },
};

const here = path.dirname(fileURLToPath(import.meta.url));
const outputDir = path.join(here, config.output);

function documentFiles() {
  return config.documents
    .flatMap((folder) =>
      readdirSync(path.join(here, folder), { recursive: true, encoding: 'utf8' }).map((file) =>
        path.join(here, folder, file),
      ),
    )
    .filter((file) => /\.tsx?$/.test(file) && !file.startsWith(outputDir))
    .sort();
}

/** The generated files' contents by path (relative to this folder). */
async function generate() {
  const sdl = readFileSync(path.join(here, config.schema), 'utf8');
  const schemaAst = lexicographicSortSchema(buildSchema(sdl));
  const documents = documentFiles().flatMap((file) =>
    gqlPluckFromCodeStringSync(file, readFileSync(file, 'utf8'), { skipIndent: true }).map((source) => ({
      location: path.relative(here, file),
      rawSDL: source.body,
      document: parse(source),
    })),
  );
  const outputs = await preset.buildGeneratesSection({
    baseOutputDir: config.output,
    presetConfig: config.presetConfig,
    plugins: [],
    pluginMap: {},
    schema: parse(printSchema(schemaAst)),
    schemaAst,
    documents,
    config: config.config,
  });
  /** @type {Map<string, string>} */
  const files = new Map();
  for (const output of outputs) files.set(output.filename, await codegen({ ...output, schemaAst }));
  return files;
}

/** @type {Map<string, string>} */
let files;
try {
  files = await generate();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
}

if (process.argv.includes('--check')) {
  const stale = [...files]
    .filter(
      ([file, content]) =>
        !existsSync(path.join(here, file)) || readFileSync(path.join(here, file), 'utf8') !== content,
    )
    .map(([file]) => file);
  const extra = existsSync(outputDir)
    ? readdirSync(outputDir)
        .map((name) => path.join(config.output, name))
        .filter((file) => !files.has(file))
    : [];
  if (stale.length > 0 || extra.length > 0) {
    for (const file of stale) console.error(`stale: ${file}`);
    for (const file of extra) console.error(`not generated: ${file}`);
    console.error(
      `${config.output} does not match the schema and the graphql() documents: run npm run codegen`,
    );
    process.exit(1);
  }
  console.log(`${config.output} is up to date with the schema and the graphql() documents`);
} else {
  mkdirSync(outputDir, { recursive: true });
  for (const [file, content] of files) writeFileSync(path.join(here, file), content);
  console.log(`wrote ${[...files.keys()].join(', ')}`);
}
