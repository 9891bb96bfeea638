import { UserInputError } from '@loupe/common';
import type { FeatureClamp, ResidualSteering, SaeApi } from '@loupe/common/grpc';
import type { GatewayContext } from '../graphql/context.js';
import { checkCount } from '../limits/input-checks.js';
import { LIMITS } from '../limits/limits.js';
import { loadFeature } from '../resolvers/units.resolver.js';
import { callSae } from '../sae/sae.js';
import { parseServedUnitId } from '../units/unit-id.js';

/** One `{ unit, strength, mode }` edit (or a raw hook + vector) as the GraphQL SteeringEdit gives it. */
export interface SteeringEditInput {
  hook?: string | null;
  vector?: number[] | null;
  unit?: string | null;
  strength?: number | null;
  mode?: 'ADD' | 'CLAMP' | 'ABLATE' | null;
}

/** What the capture service's Generate / Activations / SearchDocuments take, plus the models the edited features belong to. */
export interface CaptureSteering {
  steering: ResidualSteering[];
  clamps: FeatureClamp[];
  models: string[];
}

const RESID_PRE = /^blocks\.(0|[1-9]\d{0,3})\.hook_resid_pre$/;
const SUPPORTED =
  'supported: a feature of a standard or JumpReLU SAE on a blocks.{L}.hook_resid_pre hook (mode ADD, CLAMP ' +
  'or ABLATE; TopK SAEs ADD only), or hook (a blocks.{L}.hook_resid_pre) and vector with mode ADD';

/**
 * Turns steering edits into capture steering messages; every caller of Generate, Activations or
 * SearchDocuments with edits goes through here. ADD of a feature adds strength × W_dec[f] (Decode of the one-hot feature
 * minus b_dec, so the gateway reads no SAE files). CLAMP holds the feature at `strength` and ABLATE at
 * 0, inside the SAE with its error term kept: capture computes x += (c − f(x))·W_dec[f] in the graph
 * from the feature's weights (FeatureWeights). TopK SAEs are refused for CLAMP / ABLATE: whether a
 * feature is active depends on all the others, which a one-feature clamp does not compute;
 * constant_norm_rescale SAEs are refused too (the clamp would not be linear in x).
 */
export async function toCaptureSteering(
  edits: SteeringEditInput[],
  ctx: GatewayContext,
  sae: SaeApi,
): Promise<CaptureSteering> {
  checkCount(edits.length, 'steering edits', LIMITS.maxEdits);
  const models: string[] = [];
  const steering: ResidualSteering[] = [];
  const clamps: FeatureClamp[] = [];
  const built = await Promise.all(edits.map((edit, i) => buildEdit(edit, i, ctx, sae)));
  for (const edit of built) {
    if (edit.model) models.push(edit.model);
    if (edit.steering) steering.push(edit.steering);
    if (edit.clamp) clamps.push(edit.clamp);
  }
  return { steering, clamps, models };
}

async function buildEdit(
  edit: SteeringEditInput,
  i: number,
  ctx: GatewayContext,
  sae: SaeApi,
): Promise<{ steering?: ResidualSteering; clamp?: FeatureClamp; model?: string }> {
  const mode = edit.mode ?? 'ADD';
  const strength = edit.strength ?? 1;
  if (!Number.isFinite(strength)) throw new UserInputError(`edits[${i}]: strength must be a finite number`);
  if (!edit.unit) {
    if (!edit.hook || !edit.vector)
      throw new UserInputError(
        `edits[${i}]: give unit (an SAE feature id) or hook (a blocks.{L}.hook_resid_pre) and vector (d_model values)`,
      );
    if (mode !== 'ADD')
      throw new UserInputError(
        `edits[${i}]: mode ${mode} applies to SAE features; a raw vector can only be ADDed`,
      );
    return { steering: { hook: edit.hook, vector: edit.vector, strength } };
  }
  if (edit.hook || edit.vector)
    throw new UserInputError(`edits[${i}]: give either unit, or hook and vector, not both`);
  const ref = await parseServedUnitId(edit.unit, ctx);
  if (ref.kind === 'neuron')
    throw new UserInputError(`edits[${i}]: steering by neuron (${edit.unit}) is not supported; ${SUPPORTED}`);
  const feature = await loadFeature(ref, ctx);
  const { hook } = feature.saeInfo;
  if (!RESID_PRE.test(hook))
    throw new UserInputError(
      `edits[${i}]: SAE "${feature.saeId}" reads ${hook}; steering acts at blocks.{L}.hook_resid_pre only; ${SUPPORTED}`,
    );
  const model = feature.model !== 'unknown' ? feature.model : undefined;
  if (mode === 'ADD') {
    return {
      steering: { hook, vector: await decoderDirection(sae, feature.saeId, feature.index), strength },
      model,
    };
  }
  const w = await callSae(() => sae.FeatureWeights({ saeId: feature.saeId, feature: feature.index }));
  if (w.architecture === 'topk')
    throw new UserInputError(
      `edits[${i}]: SAE "${feature.saeId}" is TopK, whose features are active only among the k largest of all of them; mode ${mode} is not supported for it (ADD is); ${SUPPORTED}`,
    );
  if (w.normalizeActivations !== 'none')
    throw new UserInputError(
      `edits[${i}]: SAE "${feature.saeId}" rescales its input (${w.normalizeActivations}); mode ${mode} is not supported for it (ADD is)`,
    );
  const clamp: FeatureClamp = {
    hook,
    encoderColumn: w.encoderColumn,
    encoderBias: w.encoderBias,
    bDec: w.bDec,
    decoderRow: w.decoderRow,
    threshold: w.threshold,
    value: mode === 'ABLATE' ? 0 : strength,
  };
  return { clamp, model };
}

/** W_dec[feature] in the hook's raw space: the decode of a one-hot feature minus the decode of none (b_dec). */
async function decoderDirection(sae: SaeApi, saeId: string, feature: number): Promise<number[]> {
  const [one, none] = await Promise.all([
    callSae(() => sae.Decode({ saeId, features: [{ feature, value: 1 }] })),
    callSae(() => sae.Decode({ saeId, features: [] })),
  ]);
  return one.vector.map((v, j) => Math.fround(v - none.vector[j]));
}
