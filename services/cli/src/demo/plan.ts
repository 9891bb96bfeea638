import { DEFAULT_CATALOG_PRODUCTS, DEFAULT_CATALOG_SEED } from '@loupe/shop';

/**
 * What the demo workspace holds, sized to the model so a 2-core laptop has it within minutes: a slice
 * of the bundled corpus captured at one layer in the middle (its residual stream before the block, the
 * MLP neurons, the residual stream after), a small TopK SAE on the residual stream, baseline
 * explanations with scores for the first neurons and features, and the shop demo's product catalog
 * indexed at the SAE's hook (so product searches come with the SAE's features and "why this result").
 */
export interface DemoPlan {
  model: string;
  capture: { dataset: 'default'; hooks: string[]; maxTokens: number };
  sae: {
    hook: string;
    architecture: 'topk';
    width: number;
    k: number;
    steps: number;
    batchSize: number;
    seed: number;
  };
  scoring: { neurons: string; featuresPerSae: number; method: 'simulation'; simulator: 'baseline' };
  /** the collection the web app's /shop searches by default, embedded where the SAE reads */
  shop: { collection: string; hook: string; products: number; seed: number };
}

export interface ModelShape {
  nLayer: number;
  dModel: number;
}

/** Models up to this width are toys (the offline fixture is 64 wide): they get a denser demo. */
const SMALL_MODEL_WIDTH = 256;
/** Units explained and scored at each of the two sources (neurons, features). */
const UNITS_SCORED = 16;

export function planDemo(model: string, shape: ModelShape): DemoPlan {
  if (
    !Number.isInteger(shape.nLayer) ||
    shape.nLayer < 1 ||
    !Number.isInteger(shape.dModel) ||
    shape.dModel < 1
  )
    throw new Error(`model ${model} reports ${shape.nLayer} layers of width ${shape.dModel}`);
  const layer = Math.floor(shape.nLayer / 2);
  const small = shape.dModel <= SMALL_MODEL_WIDTH;
  const residPre = `blocks.${layer}.hook_resid_pre`;
  const neurons = `blocks.${layer}.mlp.hook_post`;
  return {
    model,
    capture: {
      dataset: 'default',
      hooks: [residPre, neurons, `blocks.${layer}.hook_resid_post`],
      // GPT-2 small costs ~40× the fixture per token: fewer tokens (256 windows of 64) for it
      maxTokens: small ? 32_768 : 16_384,
    },
    sae: {
      hook: residPre,
      architecture: 'topk',
      width: (small ? 8 : 4) * shape.dModel,
      k: small ? 8 : 32,
      steps: small ? 300 : 500,
      batchSize: 256,
      seed: 0,
    },
    scoring: {
      neurons: `${model}/${neurons}/0-${UNITS_SCORED - 1}`,
      featuresPerSae: UNITS_SCORED,
      method: 'simulation',
      simulator: 'baseline',
    },
    shop: {
      collection: 'shop',
      hook: residPre,
      products: DEFAULT_CATALOG_PRODUCTS,
      seed: DEFAULT_CATALOG_SEED,
    },
  };
}

/** The scoring job's unit spec: the plan's neurons and the first features of the trained SAE. */
export function scoringUnits(plan: DemoPlan, saeId: string): string {
  return `${plan.scoring.neurons};${plan.model}/${saeId}/0-${plan.scoring.featuresPerSae - 1}`;
}
