import { describe, expect, it } from 'vitest';
import { LatentActivity } from './latent-activity.js';
import { learningRate } from './lr-schedule.js';

describe('dead latents over a token window', () => {
  it('counts latents silent since the start, then over the last window', () => {
    const activity = new LatentActivity(4, 100);
    activity.record([1, 0, 0, 0], 40);
    expect(activity.deadFraction()).toBe(0.75);
    activity.record([0, 2, 0, 0], 40);
    expect(activity.deadFraction()).toBe(0.5);
    // 120 tokens seen: latent 0 last fired at 40, within the window of 100 (since 20)
    activity.record([0, 0, 0, 0], 40);
    expect(activity.deadFraction()).toBe(0.5);
    // 160 tokens: latent 0 fell out of the window (since 60), latent 1 (at 80) has not
    activity.record([0, 0, 0, 1], 40);
    expect(activity.deadFraction()).toBe(0.5);
    expect(activity.tokens).toBe(160);
  });

  it("gives AuxK sparsify's mask: nothing dead before a full window, then silent over the last one", () => {
    const activity = new LatentActivity(3, 100);
    activity.record([1, 0, 0], 60);
    expect(Array.from(activity.deadMask())).toEqual([0, 0, 0]);
    activity.record([0, 1, 0], 60);
    // 120 seen, window since 20: latent 0 fired at 60, latent 1 at 120, latent 2 never
    expect(Array.from(activity.deadMask())).toEqual([0, 0, 1]);
    activity.record([0, 0, 0], 60);
    // 180 seen, since 80: latent 0 (60) is now dead
    expect(Array.from(activity.deadMask())).toEqual([1, 0, 1]);
  });

  it('counts dense latents (> 10% of tokens) over the last complete tumbling window', () => {
    const activity = new LatentActivity(4, 100);
    // partial window so far: 50 tokens; latent 0 fired on 6 (12%), latent 1 on 5 (exactly 10%: not dense)
    activity.record([6, 5, 0, 0], 50);
    expect(activity.denseFraction()).toBe(0.25);
    expect(activity.denseWindowTokens).toBe(50);
    // window completes at 100 tokens: latent 0 fired 6 + 0 = 6%, latent 1 5 + 20 = 25%, latent 2 11 = 11%
    activity.record([0, 20, 11, 0], 50);
    expect(activity.denseFraction()).toBe(0.5);
    expect(activity.denseWindowTokens).toBe(100);
    // the next window's partial counts do not replace the complete one until it completes
    activity.record([50, 0, 0, 0], 50);
    expect(activity.denseFraction()).toBe(0.5);
    activity.record([0, 0, 0, 0], 50);
    expect(activity.denseFraction()).toBe(0.25);
    // snapshot and restore carry everything
    const copy = new LatentActivity(4, 100);
    copy.restore(activity.snapshot());
    expect(copy.denseFraction()).toBe(activity.denseFraction());
    expect(copy.deadFraction()).toBe(activity.deadFraction());
    expect(copy.tokens).toBe(200);
  });
});

describe('learning-rate schedule', () => {
  it('warms up, holds, and decays to near zero', () => {
    const schedule = { base: 1, warmupSteps: 10, decayFraction: 0.2 };
    expect(learningRate(schedule, 0, 100)).toBeCloseTo(0.1);
    expect(learningRate(schedule, 9, 100)).toBe(1);
    expect(learningRate(schedule, 50, 100)).toBe(1);
    expect(learningRate(schedule, 80, 100)).toBeCloseTo(20 / 21);
    expect(learningRate(schedule, 99, 100)).toBeCloseTo(1 / 21);
  });
});
