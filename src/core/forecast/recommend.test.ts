/** The pure recommendation rules, on figures whose answer is worked out by hand. */
import assert from 'node:assert/strict';
import { budgetCrossing, durationElasticity, minScaleAdvice, suggestedMemoryLimit, type ScaleFacts } from './recommend.js';

const THIRTY_DAYS_MS = 30 * 86_400_000;

describe('recommendation rules', () => {
  describe('memory limit', () => {
    it('suggests p99 plus 20% headroom rounded up to the step, only below the current limit', () => {
      // 210 × 1.2 = 252 → 256 (128 MB steps); 400 × 1.2 = 480 → 512.
      assert.equal(suggestedMemoryLimit(210, 1024, 128), 256);
      assert.equal(suggestedMemoryLimit(400, 1024, 128), 512);
      // 100 × 1.2 = 120 → 128, which is the limit already.
      assert.equal(suggestedMemoryLimit(100, 128, 128), null);
      // A service that needs more than its limit is not told to shrink.
      assert.equal(suggestedMemoryLimit(900, 1024, 128), null);
      // 1 MB steps: 210 × 1.5 = 315.
      assert.equal(suggestedMemoryLimit(210, 1024, 1, 0.5), 315);
    });

    it('refuses figures that are not positive', () => {
      assert.throws(() => suggestedMemoryLimit(0, 1024, 128), RangeError);
      assert.throws(() => suggestedMemoryLimit(100, 1024, 0), RangeError);
    });
  });

  describe('duration vs memory', () => {
    it('measures how duration moves with the limit: halved when memory doubles is 1, unchanged is 0', () => {
      assert.equal(durationElasticity([{ limitMb: 256, invocations: 500, msPerInvocation: 400 }, { limitMb: 512, invocations: 500, msPerInvocation: 200 }]), 1);
      assert.equal(durationElasticity([{ limitMb: 256, invocations: 500, msPerInvocation: 300 }, { limitMb: 1024, invocations: 500, msPerInvocation: 300 }]), 0);
      // 4× the memory, duration × 0.5: e = ln 2 / ln 4 = 0.5.
      const half = durationElasticity([{ limitMb: 128, invocations: 500, msPerInvocation: 100 }, { limitMb: 256, invocations: 500, msPerInvocation: 80 }, { limitMb: 512, invocations: 500, msPerInvocation: 50 }]);
      assert.ok(half !== null && Math.abs(half - 0.5) < 1e-12);
    });

    it('needs two limits with enough invocations each, and never goes outside [0, 1]', () => {
      assert.equal(durationElasticity([{ limitMb: 256, invocations: 500, msPerInvocation: 400 }]), null);
      assert.equal(durationElasticity([{ limitMb: 256, invocations: 50, msPerInvocation: 400 }, { limitMb: 512, invocations: 500, msPerInvocation: 200 }]), null);
      // More memory and slower: noise, not a law; clipped to 0.
      assert.equal(durationElasticity([{ limitMb: 256, invocations: 500, msPerInvocation: 200 }, { limitMb: 512, invocations: 500, msPerInvocation: 260 }]), 0);
    });
  });

  describe('minScale', () => {
    const facts: ScaleFacts = { coldStarts: 500, coldExtraMs: 1000, memoryMb: 128, periodMs: THIRTY_DAYS_MS, coldStartsIfScaledToZero: 40, currentMinScale: 0 };
    const prices = { perColdStart: '0.01', perMbMs: '0.00000000001' };

    it('keeps one instance warm when its cost (memory × period) is below the cold starts’ (charges + extra time)', () => {
      const advice = minScaleAdvice(facts, prices);
      assert.ok(advice);
      assert.equal(advice.minScale, 1);
      // warm: 128 × 2,592,000,000 × 1e-11 = 3.31776; cold: 500 × 0.01 + 500 × 1,000 × 128 × 1e-11 = 5.00064.
      assert.equal(advice.warmCost.toFixed(), '3.31776');
      assert.equal(advice.coldCost.toFixed(), '5.00064');
      assert.equal(advice.saving.toFixed(), '1.68288');
    });

    it('says nothing when cold starts are cheaper than a warm instance', () => {
      assert.equal(minScaleAdvice({ ...facts, coldStarts: 100 }, prices), null);
    });

    it('suggests scaling to zero a warm service that rarely wakes from idle', () => {
      const advice = minScaleAdvice({ ...facts, currentMinScale: 1 }, prices);
      assert.ok(advice);
      assert.equal(advice.minScale, 0);
      // 40 wake-ups: 40 × 0.01 + 40 × 1,000 × 128 × 1e-11 = 0.4000512.
      assert.equal(advice.coldCost.toFixed(), '0.4000512');
      assert.equal(minScaleAdvice({ ...facts, currentMinScale: 1, coldStartsIfScaledToZero: 1000 }, prices), null);
    });
  });

  describe('budget crossing', () => {
    const now = Date.parse('2025-10-10T00:00:00Z');
    const end = Date.parse('2025-11-01T00:00:00Z');

    it('is reached at the forecast’s pace: 40 → 140 by month end crosses 90 halfway', () => {
      assert.equal(budgetCrossing('90', '40', '140', now, end), now + (end - now) / 2);
    });

    it('is now when already crossed, and never when the forecast stays under the budget', () => {
      assert.equal(budgetCrossing('30', '40', '140', now, end), now);
      assert.equal(budgetCrossing('200', '40', '140', now, end), null);
    });
  });
});
