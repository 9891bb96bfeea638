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
