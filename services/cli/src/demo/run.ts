import type { Logger } from '@loupe/common';
import type { CaptureApi, ExplainerApi, SaeApi } from '@loupe/common/grpc';
import { type DemoPlan, planDemo, scoringUnits } from './plan.js';
import {
  captureStep,
  readWorkspace,
  resumeWorkspace,
  type StepKind,
  type StepState,
  scoresStep,
  shopIndexed,
  step,
  trainingSteps,
  type WorkspaceState,
  withStep,
  writeWorkspace,
} from './state.js';

export interface DemoContext {
  /** $LOUPE_DATA_DIR/workspace.json */
  file: string;
  model: string;
  offline: boolean;
  capture: CaptureApi;
  sae: SaeApi;
  explainer: ExplainerApi;
  /** pulls or makes the model (the model step); resolves at once when it is already there */
  prepareModel(): Promise<void>;
  /** aborted when `loupe serve` stops: the jobs carry on at the next start */
  signal: AbortSignal;
  log: Logger;
  pollMs?: number;
}

class Stopped extends Error {}

/**
 * Prepares the demo workspace step by step through the services' gRPC APIs, saving progress to the
 * workspace file after every change. Steps already done are skipped; a step with a job carries on
 * with that job (capture and training requests are idempotent: the same request resumes the same
 * unfinished job). Stops at the first failed step, leaving it for the next start to try again.
 */
export async function runDemo(ctx: DemoContext): Promise<WorkspaceState> {
  let state = resumeWorkspace(await readWorkspace(ctx.file), ctx.model, ctx.offline);
  const save = async (next: WorkspaceState) => {
    state = next;
    await writeWorkspace(ctx.file, state);
  };
  const update = (kind: StepKind, change: Partial<StepState>) => save(withStep(state, kind, change));
  await save(state);
  try {
    if (step(state, 'model').status !== 'done') {
      await update('model', { status: 'running' });
      await ctx.prepareModel();
      await update('model', { status: 'done', progress: 1 });
    }
    const info = await ctx.capture.ModelInfo({ model: ctx.model });
    const plan = planDemo(ctx.model, info);
    const captureJobId = await captureSlice(ctx, plan, state, update);
    const saeId = await trainSae(ctx, plan, captureJobId, () => state, update);
    await save({ ...state, saeId });
    await scoreUnits(ctx, plan, saeId, () => state, update);
    await indexShop(ctx, plan, () => state, update);
    ctx.log.info({ model: ctx.model, sae: saeId }, 'demo workspace ready');
  } catch (error) {
    if (error instanceof Stopped || ctx.signal.aborted) return state;
    const running = state.steps.find((s) => s.status !== 'done');
    const message = (error as Error).message;
    if (running) await save(withStep(state, running.kind, { status: 'failed', error: message }));
    ctx.log.warn({ step: running?.kind, err: message }, 'demo workspace stopped; the next start tries again');
  }
  return state;
}

type Update = (kind: StepKind, change: Partial<StepState>) => Promise<void>;

async function captureSlice(ctx: DemoContext, plan: DemoPlan, state: WorkspaceState, update: Update) {
  const saved = step(state, 'capture');
  if (saved.status === 'done' && saved.jobId) return saved.jobId;
  // the same request names the same job until it is done, so this resumes an interrupted capture
  let job = await ctx.capture.StartCapture({ model: plan.model, ...plan.capture });
  for (;;) {
    const change = captureStep(job);
    await update('capture', change);
    if (change.status === 'done') return job.id;
    if (change.status === 'failed') throw new Error(`capture job ${job.id}: ${change.error}`);
    await pause(ctx);
    job = await ctx.capture.GetCaptureJob({ id: job.id });
  }
}

async function trainSae(
  ctx: DemoContext,
  plan: DemoPlan,
  captureJobId: string,
  current: () => WorkspaceState,
  update: Update,
): Promise<string> {
  const saved = step(current(), 'records');
  const savedSae = current().saeId;
  if (saved.status === 'done' && savedSae) return savedSae;
  const previous = step(current(), 'train').jobId;
  // asking for a job after a restart is what starts it again (the SAE service resumes on request)
  let job = previous ? await ctx.sae.GetTrainingJob({ id: previous }).catch(() => null) : null;
  if (!job || job.status === 'failed' || job.status === 'cancelled') {
    const { hook, ...settings } = plan.sae;
    job = await ctx.sae.Train({ captureJobId, hook, ...settings, checkpointEvery: 100 });
  }
  for (;;) {
    const { train, records } = trainingSteps(job);
    await update('train', train);
    await update('records', records);
    if (records.status === 'done') return job.saeId;
    const failed = train.status === 'failed' ? train : records.status === 'failed' ? records : null;
    if (failed) throw new Error(`training job ${job.id}: ${failed.error}`);
    await pause(ctx);
    job = await ctx.sae.GetTrainingJob({ id: job.id });
  }
}

async function scoreUnits(
  ctx: DemoContext,
  plan: DemoPlan,
  saeId: string,
  current: () => WorkspaceState,
  update: Update,
): Promise<void> {
  const saved = step(current(), 'scores');
  if (saved.status === 'done') return;
  let job = saved.jobId ? await ctx.explainer.GetJob({ id: saved.jobId }).catch(() => null) : null;
  if (!job || ['failed', 'cancelled', 'budget_exhausted'].includes(job.status)) {
    job = await ctx.explainer.StartScoringJob({
      units: scoringUnits(plan, saeId),
      method: plan.scoring.method,
      llm: { simulator: plan.scoring.simulator },
      seed: 0,
    });
  }
  for (;;) {
    const change = scoresStep(job);
    await update('scores', change);
    if (change.status === 'done') return;
    if (change.status === 'failed') throw new Error(`scoring job ${job.id}: ${change.error}`);
    await pause(ctx);
    job = await ctx.explainer.GetJob({ id: job.id });
  }
}

/**
 * The shop demo's catalog, indexed at the SAE's hook so /shop shows the query's features and why each
 * result was found. One IndexDocuments call (no job): a collection already holding the catalog at that
 * hook (an interrupted start that got this far, or `loupe demo shop index`) is kept; anything else under
 * the name is replaced, which makes a retry after a crash the same as a first try.
 */
async function indexShop(
  ctx: DemoContext,
  plan: DemoPlan,
  current: () => WorkspaceState,
  update: Update,
): Promise<void> {
  if (step(current(), 'shop').status === 'done') return;
  await update('shop', { status: 'running', progress: 0, error: null });
  const { collection, hook, products, seed } = plan.shop;
  const existing = await ctx.capture.GetCollection({ collection }).catch(() => null);
  if (!shopIndexed(existing, plan)) {
    ctx.log.info({ collection, hook, products }, 'indexing the shop catalog');
    await ctx.capture.IndexDocuments({
      collection,
      model: plan.model,
      hook,
      pooling: 'mean',
      catalog: { products, seed },
      replace: true,
    });
  }
  await update('shop', { status: 'done', progress: 1, error: null });
}

function pause(ctx: DemoContext): Promise<void> {
  if (ctx.signal.aborted) return Promise.reject(new Stopped());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ctx.signal.removeEventListener('abort', onAbort);
      resolve();
    }, ctx.pollMs ?? 1000);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Stopped());
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
}
