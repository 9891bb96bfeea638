import { Command } from 'commander';
import { runCommand } from './run-command.js';

// Each action imports its module lazily: `loupe tokenize` must not pay for loading ONNX Runtime,
// the database client or NestJS.
const program = new Command()
  .name('loupe')
  .description('Loupe: an interpretability workbench for GPT-2 on ONNX Runtime')
  .showHelpAfterError();

const model = program.command('model').description('get and convert GPT-2 checkpoints');
model
  .command('convert')
  .argument(
    '<hf-dir>',
    'Hugging Face checkpoint folder (config.json, model.safetensors, vocab.json, merges.txt)',
  )
  .requiredOption('--out <model-dir>', 'where to write the converted model')
  .option('--name <name>', 'model name (default: the output folder name)')
  .option('--force', 'replace an existing model folder')
  .description('convert a checkpoint to an ONNX model folder with every hook as an output')
  .action((dir: string, options) =>
    runCommand(() => import('./commands/model.js').then((m) => m.convert(dir, options))),
  );
model
  .command('pull')
  .argument('<repo-id>', 'hub repository, e.g. gpt2 or openai-community/gpt2')
  .option('--revision <rev>', 'branch, tag or commit', 'main')
  .option('--out <model-dir>', 'converted model folder (default: $LOUPE_DATA_DIR/models/<repo name>)')
  .option('--force', 'replace an existing model folder')
  .description('download a checkpoint from the Hugging Face hub ($HF_ENDPOINT) and convert it')
  .action((repo: string, options) =>
    runCommand(() => import('./commands/model.js').then((m) => m.pull(repo, options))),
  );

program
  .command('tokenize')
  .requiredOption('--model <model>', 'a converted model folder, or a model name in $LOUPE_DATA_DIR/models')
  .requiredOption('--text <text>', 'text to tokenize')
  .description('print {"ids":[...],"tokens":[...]}')
  .action((options) => runCommand(() => import('./commands/tokenize.js').then((m) => m.tokenize(options))));

program
  .command('activations')
  .requiredOption('--model <model>', 'a converted model folder, or a model name in $LOUPE_DATA_DIR/models')
  .requiredOption('--text <text>', 'text to run')
  .option('--hooks <hooks>', 'comma-separated TransformerLens hook names', '')
  .option('--logits', 'also print logits')
  .option('--steer <json>', 'JSON list of {"hook":"blocks.L.hook_resid_pre","vector":[...],"strength":s}')
  .option(
    '--patch <json>',
    'JSON list of {"hook":H,"mode":"zero"|"replace"|"mean","positions":[p,...],"head":h,"values":[...]}: rewrite any hook',
  )
  .option('--json', 'print JSON (the only output format)')
  .description('run the model and print activations at the given hooks (attention hooks included)')
  .action((options) =>
    runCommand(() => import('./commands/activations.js').then((m) => m.activations(options))),
  );

program
  .command('lens')
  .requiredOption('--model <model>', 'a converted model folder, or a model name in $LOUPE_DATA_DIR/models')
  .requiredOption('--text <text>', 'text to run')
  .option(
    '--token <token>',
    "a token whose rank and probability to follow through the layers (e.g. ' Paris')",
  )
  .option('--top <k>', 'top tokens per layer and position', '5')
  .option('--json', 'print JSON (the only output format)')
  .description('logit lens: what each layer’s hook_resid_post predicts through ln_f and the unembedding')
  .action((options) => runCommand(() => import('./commands/research.js').then((m) => m.lens(options))));

program
  .command('dla')
  .requiredOption('--model <model>', 'a converted model folder, or a model name in $LOUPE_DATA_DIR/models')
  .requiredOption('--text <text>', 'text to run; the last position is attributed')
  .requiredOption('--token <token>', 'the token whose logit to attribute')
  .option('--wrong <token>', 'attribute the logit difference token − wrong instead')
  .option('--json', 'print JSON (the only output format)')
  .description(
    "direct logit attribution: each head's and MLP's share of a logit, through the frozen final LayerNorm",
  )
  .action((options) => runCommand(() => import('./commands/research.js').then((m) => m.dla(options))));

program
  .command('patch')
  .requiredOption('--model <model>', 'a converted model folder, or a model name in $LOUPE_DATA_DIR/models')
  .requiredOption('--clean <text>', 'the clean prompt')
  .requiredOption('--corrupted <text>', 'the corrupted prompt, of the same token length')
  .requiredOption('--answer <token>', 'the clean answer token')
  .requiredOption('--wrong <token>', 'the corrupted answer token')
  .option(
    '--hook <hook>',
    'resid_pre, attn_out, mlp_out (per layer and position) or z (per layer and head)',
    'resid_pre',
  )
  .option('--json', 'print JSON (the only output format)')
  .description('activation patching: the clean logit difference each patched slice restores, as a heat map')
  .action((options) => runCommand(() => import('./commands/research.js').then((m) => m.patch(options))));

program
  .command('capture')
  .requiredOption('--model <model>', 'a converted model folder, or a model name in $LOUPE_DATA_DIR/models')
  .option(
    '--dataset <path|default>',
    'JSONL or text file, a folder of them, or the bundled corpus',
    'default',
  )
  .requiredOption(
    '--hooks <hooks>',
    'comma-separated hooks: activation shards for each, neuron records for mlp.hook_post',
  )
  .option('--max-tokens <n>', 'stop after this many tokens', '1000000')
  .option('--shard-windows <n>', 'windows (of 64 tokens) per activation shard file', '64')
  .option(
    '--checkpoint-shards <n>',
    'shards per work item: what workers lease, and what a crash can lose',
    '4',
  )
  .option('--item-hooks <n>', "hooks per work item (0: all); smaller items bound each worker's memory", '0')
  .description('capture activation shards and neuron records over a dataset (resumable)')
  .action((options) => runCommand(() => import('./commands/capture.js').then((m) => m.capture(options))));

const sae = program.command('sae').description('train sparse autoencoders on captured activations');
sae
  .command('train')
  .requiredOption(
    '--activations <capture-job|path>',
    'a capture job (the id loupe capture printed, or its folder), a folder of activation shards, or one safetensors file of vectors',
  )
  .option(
    '--tensor <name>',
    'tensor to read (default: "activations" in shards, else the only 2-D float tensor)',
  )
  .option('--hook <hook>', 'hook to read when a capture job folder holds several')
  .option(
    '--arch <arch>',
    'architecture: topk, batchtopk, relu (L1), jumprelu or matryoshka (nested BatchTopK)',
    'topk',
  )
  .requiredOption('--width <m>', 'number of latents')
  .option('--k <k>', 'latents kept per vector (topk; on average for batchtopk)', '32')
  .option('--sparsity <c>', 'relu: L1 coefficient (default 0.5); jumprelu: L0 coefficient (default 0.1)')
  .requiredOption('--steps <n>', 'training steps')
  .option('--batch <b>', 'vectors per step', '4096')
  .option('--lr <lr>', "Adam learning rate (default: 2e-4 / sqrt(width / 16384), sparsify's rule)")
  .option('--seed <s>', 'seed for initialisation and shuffling', '0')
  .option('--shuffle-buffer <n>', 'vectors held by the shuffle buffer (bounds memory)', '65536')
  .option('--holdout <percent>', 'percentage of vectors, from the end, kept out of training', '0')
  .option('--normalize', 'scale activations to unit mean squared norm (folded into the saved weights)')
  .option('--normalize-vectors <n>', 'vectors to estimate the normalisation scale on', '65536')
  .option(
    '--b-dec-init <mean|geometric-median>',
    "b_dec from the first batch's mean or geometric median",
    'mean',
  )
  .option(
    '--dead-window <tokens>',
    'a latent is dead when it has not fired in this many tokens (dense: fires on > 10% of them)',
    '10000000',
  )
  .option(
    '--auxk <alpha>',
    'topk, batchtopk: AuxK coefficient for dead latents (0 turns it off; default 1/32)',
  )
  .option(
    '--checkpoint-every <n>',
    'steps between checkpoints in <out>/checkpoints (rerun to resume)',
    '1000',
  )
  .option(
    '--eval-vectors <n>',
    'held-out vectors to report reconstruction metrics on (with --holdout; plain TypeScript, so few)',
    '512',
  )
  .requiredOption('--out <sae-dir>', 'folder to write (SAELens layout: cfg.json + sae_weights.safetensors)')
  .option('--force', 'replace an SAE already in --out and start over, ignoring its checkpoints')
  .description('train an SAE with a progress bar; prints a JSON summary')
  .action((options) => runCommand(() => import('./commands/sae.js').then((m) => m.train(options))));
sae
  .command('eval')
  .argument('<sae-dir>', 'a SAELens folder (cfg.json + sae_weights.safetensors)')
  .requiredOption(
    '--activations <capture-job|shard-dir|file.safetensors>',
    'held-out activations of the hook the SAE reads (vectors it was not trained on)',
  )
  .option('--tensor <name>', 'tensor to read when the file holds several')
  .option('--hook <hook>', "hook to read from a capture job folder (default: the SAE's)")
  .option('--max-vectors <n>', 'vectors to evaluate on', '65536')
  .option('--model <model>', 'also splice the SAE into this model (folder or name): CE loss recovered and KL')
  .option('--dataset <path|default>', 'text the splice runs over', 'default')
  .option('--splice-tokens <n>', 'tokens (in 64-token windows) the splice runs over', '4096')
  .option('--json', 'print JSON (the only format)')
  .description(
    'held-out metrics: L0, MSE, FVU, explained variance, cosine, dead/dense; with --model the spliced loss',
  )
  .action((dir: string, options) =>
    runCommand(() => import('./commands/sae-eval.js').then((m) => m.evaluate(dir, options))),
  );
sae
  .command('import')
  .argument(
    '<saelens-dir>',
    'a SAELens folder (cfg.json + sae_weights.safetensors): standard, topk or jumprelu',
  )
  .option('--id <id>', 'library id (default: <model>:<hook>:<weights hash>)')
  .description('add an SAE to the library and its features (decoder directions) to the feature store')
  .action((dir: string, options) =>
    runCommand(() => import('./commands/sae.js').then((m) => m.importCommand(dir, options))),
  );
sae
  .command('pull')
  .argument('<repo-id>', 'hub repository holding SAELens SAEs, e.g. jbloom/GPT2-Small-SAEs-Reformatted')
  .option('--path <folder>', "the SAE's folder in the repository (default: its root)")
  .option('--revision <rev>', 'branch, tag or commit', 'main')
  .option('--id <id>', 'library id (default: <model>:<hook>:<weights hash>)')
  .option('--model <model>', 'converted model the SAE must fit (default: $LOUPE_MODEL when converted here)')
  .option(
    '--norm-scaling-factor <f>',
    "for normalize_activations expected_average_only_in: SAELens' norm_scaling_factor, folded into the weights",
  )
  .option(
    '--center-writing-weights',
    "the SAE read TransformerLens activations with centred writing weights (SAELens' config_overrides say so, e.g. gpt2-small-res-jb)",
  )
  .description(
    'download a SAELens SAE from the Hugging Face hub ($HF_ENDPOINT) and import it into the library and the feature store',
  )
  .action((repo: string, options) =>
    runCommand(() => import('./commands/sae-pull.js').then((m) => m.pull(repo, options))),
  );
sae
  .command('export')
  .argument('<sae-id>', 'library id, as printed by import')
  .requiredOption('--out <dir>', 'new or empty folder to write the SAELens files to')
  .description('write a library SAE out as a SAELens folder')
  .action((id: string, options) =>
    runCommand(() => import('./commands/sae.js').then((m) => m.exportCommand(id, options))),
  );
sae
  .command('features')
  .argument('<sae-id>', 'library id, as printed by import')
  .requiredOption(
    '--activations <capture-job>',
    "a capture job (the id loupe capture printed, or its folder) with shards for the SAE's hook",
  )
  .option(
    '--model <model>',
    'converted model (folder or name) for logit tokens (default: $LOUPE_DATA_DIR/models/<SAE model>)',
  )
  .option('--no-logits', 'skip logit tokens')
  .option('--rows <n>', 'token rows per encoder call (bounds memory: rows × d_sae floats)', '1024')
  .description('compute feature statistics, records and logit tokens over captured activations')
  .action((id: string, options) =>
    runCommand(() => import('./commands/sae-features.js').then((m) => m.features(id, options))),
  );

const apikey = program.command('apikey').description('API keys for the GraphQL gateway (mutations need one)');
apikey
  .command('create')
  .option('--name <name>', 'a label to tell keys apart', 'default')
  .description('create a key and print it once (only its sha256 is stored)')
  .action((options) => runCommand(() => import('./commands/apikey.js').then((m) => m.create(options))));

const llmFlags = (command: Command) =>
  command
    .requiredOption('--records <file.json>', '{"top":[{"tokens":[...],"activations":[...]}],"random":[...]}')
    .option(
      '--simulator <kind>',
      'openai-all-at-once, openai-token-by-token, line-logprobs, json or baseline (default: LOUPE_SIMULATOR, else line-logprobs with an LLM, baseline without)',
    )
    .option(
      '--llm-base-url <url>',
      'OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (default: $LOUPE_LLM_BASE_URL)',
    )
    .option('--llm-model <model>', 'model name (default: $LOUPE_LLM_MODEL)')
    .option('--seed <s>', 'seed for the bootstrap interval and example order', '0')
    .option('--bootstrap <n>', 'bootstrap resamples for the 95% interval', '1000')
    .option('--json', 'print JSON (the only output format)');
llmFlags(program.command('score'))
  .requiredOption('--explanation <text>', 'the explanation to score')
  .option('--method <method>', 'simulation, detection or fuzzing', 'simulation')
  .description('score an explanation against records: correlation of simulated and true activations')
  .action((options) => runCommand(() => import('./commands/explain.js').then((m) => m.score(options))));
llmFlags(program.command('explain'))
  .option('--candidates <n>', 'explanations to ask for; the best by simulation is kept', '1')
  .option(
    '--record-split <split>',
    "openai (OpenAI's train / calibration / valid / test, scored on valid) or halves (even explain, odd score); default openai, or halves for a unit with fewer than 4 top records",
  )
  .description(
    'explain a unit from its records (statistical baseline without an LLM) and score it on held-out records',
  )
  .action((options) => runCommand(() => import('./commands/explain.js').then((m) => m.explain(options))));
const jobs = program.command('jobs').description('durable batch jobs');
jobs
  .command('score')
  .option('--units <spec>', 'units to score: model/hook/0-99, model/sae-id/3,7,12; several joined by ";"')
  .option('--job <id>', 'resume this job instead of starting one')
  .option('--method <method>', 'simulation, detection or fuzzing', 'simulation')
  .option(
    '--simulator <kind>',
    'openai-all-at-once, openai-token-by-token, line-logprobs, json or baseline (default: LOUPE_SIMULATOR, else line-logprobs with an LLM, baseline without)',
  )
  .option('--llm-base-url <url>', 'OpenAI-compatible server (default: $LOUPE_LLM_BASE_URL)')
  .option('--llm-model <model>', 'model name (default: $LOUPE_LLM_MODEL)')
  .option(
    '--budget-tokens <n>',
    'stop starting units after this many prompt+completion tokens (0 = no limit)',
    '0',
  )
  .option('--concurrency <c>', 'units scored at once', '4')
  .option('--max-attempts <n>', 'attempts per unit before it is marked failed', '3')
  .option('--seed <s>', 'seed for bootstrap intervals and example order', '0')
  .option(
    '--records-dir <dir>',
    'read records from <dir>/<model>/<hook>/<index>.json instead of the services',
  )
  .option('--out <file.jsonl>', 'write one JSON line per unit when the job stops')
  .description('explain and score many units with a progress bar; prints the job summary')
  .action((options) => runCommand(() => import('./commands/explain.js').then((m) => m.jobsScore(options))));
jobs
  .command('export')
  .argument('<job-id>', 'a scoring job id')
  .option('--out <file.jsonl>', 'file to write (default: stdout)')
  .description("write a scoring job's results as JSONL, one unit per line")
  .action((id: string, options) =>
    runCommand(() => import('./commands/explain.js').then((m) => m.jobsExport(id, options))),
  );

const importCommand = program.command('import').description('import published interpretability data');
importCommand
  .command('openai-neurons')
  .option(
    '--source <url|folder>',
    "the dataset root holding collated-activations/ and explanations/ (default: OpenAI's public URL)",
  )
  .requiredOption('--model <model>', 'a converted model folder, or a model name in $LOUPE_DATA_DIR/models')
  .option('--layers <A-B>', 'layers to import (default: every layer of the model)')
  .option('--neurons <A-B>', 'neurons of each layer to import (default: all)')
  .option('--concurrency <n>', 'neurons fetched at once (one request each in flight)', '16')
  .option('--json', 'print JSON (the only output format)')
  .description(
    "OpenAI's published neuron records and scored explanations as units <model>/blocks.L.mlp.hook_post/N (resumable)",
  )
  .action((options) =>
    runCommand(() => import('./commands/import.js').then((m) => m.importOpenAiNeuronsCommand(options))),
  );

const published = program.command('published').description('browse imported published neurons');
published
  .command('list')
  .requiredOption('--model <name>', 'the model name the units were imported under, e.g. gpt2-xl')
  .option('--layer <L>', 'one layer only')
  .option('--min-score <s>', 'only neurons whose best published score is at least s, e.g. 0.8')
  .option('--offset <n>', 'skip this many', '0')
  .option('--limit <n>', 'at most this many (1-1000)', '50')
  .option('--json', 'print JSON (the only output format)')
  .description('imported neurons by best published score, best first: {"total","neurons":[...]}')
  .action((options) =>
    runCommand(() => import('./commands/import.js').then((m) => m.publishedList(options))),
  );
published
  .command('layers')
  .requiredOption('--model <name>', 'the model name the units were imported under, e.g. gpt2-xl')
  .option('--bins <n>', 'histogram bins over [-1, 1]', '20')
  .option('--threshold <s>', 'count the neurons at or above this score', '0.8')
  .option('--json', 'print JSON (the only output format)')
  .description('per layer: histogram, mean and count ≥ threshold of the best published scores')
  .action((options) =>
    runCommand(() => import('./commands/import.js').then((m) => m.publishedLayers(options))),
  );

const shop = program
  .command('demo')
  .description('demos built on the services')
  .command('shop')
  .description('product search over a generated catalog: index it, evaluate plain and steered search');
const catalogFlags = (command: Command) =>
  command
    .option('--products <n>', 'catalog size (deterministic per seed)', '3000')
    .option('--seed <s>', 'catalog seed', '1')
    .option('--hook <hook>', 'hook whose pooled activations embed each product')
    .option('--pooling <pooling>', 'mean (over the text tokens) or last', 'mean')
    .option('--model <name>', "model name (default: the capture service's)");
catalogFlags(shop.command('index'))
  .option('--collection <name>', 'collection to (re)create', 'shop')
  .description('generate the catalog (also written as a capture dataset) and index it in the capture service')
  .action((options) => runCommand(() => import('./commands/shop.js').then((m) => m.index(options))));
catalogFlags(shop.command('eval'))
  .option('--collection <name>', 'collection to (re)create for the evaluation', 'shop-eval')
  .option('--sae <id>', 'steer SAE features (one per attribute) instead of mean-difference directions')
  .option('--strength-scale <x>', 'steering vector norm, in mean product-embedding norms', '1')
  .option('--json', 'print JSON (the only output format)')
  .description('precision@10 and nDCG@10 of plain and steered search on labelled catalog queries')
  .action((options) => runCommand(() => import('./commands/shop.js').then((m) => m.evaluate(options))));

program
  .command('serve')
  .description('start the Loupe services on this machine')
  .action(() => runCommand(() => import('./commands/serve.js').then((m) => m.serve())));

await program.parseAsync(process.argv);
