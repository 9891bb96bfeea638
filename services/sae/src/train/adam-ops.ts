import type { GraphBuilder } from '@loupe/common';

/** Adam's fixed hyperparameters; the learning rate and step count are graph inputs instead. */
export interface AdamSettings {
  beta1: number;
  beta2: number;
  eps: number;
}

export const DEFAULT_ADAM: AdamSettings = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** Values shared by every parameter's update, computed once per step inside the graph. */
export interface AdamStep {
  /** learning rate, scalar */
  lr: string;
  /** 1 − beta1^t, scalar */
  correction1: string;
  /** 1 − beta2^t, scalar */
  correction2: string;
}

/**
 * Bias corrections from the step count t (1-based, float scalar input). Computing beta^t in the graph
 * keeps the caller's only state the counter itself, so a resumed run needs nothing but t.
 */
export function adamStep(g: GraphBuilder, settings: AdamSettings, lr: string, t: string): AdamStep {
  const one = g.constFloat([1], [], 'one');
  const beta1 = g.constFloat([settings.beta1], [], 'beta1');
  const beta2 = g.constFloat([settings.beta2], [], 'beta2');
  return {
    lr,
    correction1: g.op('Sub', [one, g.op('Pow', [beta1, t])]),
    correction2: g.op('Sub', [one, g.op('Pow', [beta2, t])]),
  };
}

/** The three tensors Adam writes back for one parameter. */
export interface AdamUpdate {
  param: string;
  m: string;
  v: string;
}

/** One Adam update (Kingma & Ba, with eps added to the corrected second moment's square root). */
export function adamUpdate(
  g: GraphBuilder,
  settings: AdamSettings,
  step: AdamStep,
  names: { param: string; grad: string; m: string; v: string },
  /**
   * Names for the three results, when they are graph outputs: naming the last node directly saves the
   * Identity copy per tensor (three passes over every parameter per step at 38M parameters).
   */
  out: Partial<AdamUpdate> = {},
): AdamUpdate {
  const b1 = g.constFloat([settings.beta1], [], 'beta1');
  const c1 = g.constFloat([1 - settings.beta1], [], 'one_minus_beta1');
  const b2 = g.constFloat([settings.beta2], [], 'beta2');
  const c2 = g.constFloat([1 - settings.beta2], [], 'one_minus_beta2');
  const eps = g.constFloat([settings.eps], [], 'eps');
  const m = g.op('Add', [g.op('Mul', [b1, names.m]), g.op('Mul', [c1, names.grad])], {}, out.m);
  const v = g.op(
    'Add',
    [g.op('Mul', [b2, names.v]), g.op('Mul', [c2, g.op('Mul', [names.grad, names.grad])])],
    {},
    out.v,
  );
  const mHat = g.op('Div', [m, step.correction1]);
  const vHat = g.op('Div', [v, step.correction2]);
  const denom = g.op('Add', [g.op('Sqrt', [vHat]), eps]);
  const delta = g.op('Mul', [step.lr, g.op('Div', [mHat, denom])]);
  return { param: g.op('Sub', [names.param, delta], {}, out.param), m, v };
}
