import assert from 'node:assert/strict';
import type { Anomaly, Recommendation } from './api.ts';
import { anomalyHours, anomalyMetricLabel, formatAnomalyFigure, readableText, recommendationHeadline, reportDays, splitRecommendations } from './insights.ts';

// ICU writes a narrow no-break space before AM/PM in newer versions; compare with plain spaces.
const plainSpaces = (text: string): string => text.replace(/[\u202f\u00a0]/g, ' ');

/** Three hours of an anomaly, 14:00–17:00 UTC. */
const threeHours = { since: '2026-11-05T14:00:00.000Z', until: '2026-11-05T17:00:00.000Z', currency: 'USD' };
const anomaly = (metric: string): Pick<Anomaly, 'metric' | 'since' | 'until' | 'currency'> => ({ metric, ...threeHours });

const recommendation = (fields: Partial<Recommendation> & Pick<Recommendation, 'kind'>): Recommendation => ({
  service: null,
  current: '',
  suggested: '',
  saving: null,
  saving_share: null,
  explanation: '',
  evidence: {},
  ...fields,
});

describe('dashboard insights (anomalies and recommendations in words)', () => {
  describe('anomalies', () => {
    it('counts the hours from the first abnormal hour to the end of the last', () => {
      assert.equal(anomalyHours(threeHours), 3);
      assert.equal(anomalyHours({ since: 'garbage', until: threeHours.until }), 0);
    });

    it('counts and cost are sums over the anomaly’s hours, in their unit', () => {
      assert.equal(formatAnomalyFigure(anomaly('invocations'), 12345.4, 'en-US'), '12,345 over 3 h');
      assert.equal(formatAnomalyFigure(anomaly('errors'), 7, 'en-US'), '7 over 3 h');
      assert.equal(formatAnomalyFigure(anomaly('cost'), 1234.567, 'en-US'), '$1,234.57 over 3 h');
      assert.equal(formatAnomalyFigure({ ...anomaly('cost'), currency: 'JPY' }, 1234.567, 'en-US'), '¥1,235 over 3 h');
    });

    it('a cost too small for plain notation is still money, not a dash', () => {
      assert.equal(formatAnomalyFigure(anomaly('cost'), 1e-7, 'en-US'), '$0.00 over 3 h');
    });

    it('duration and memory are hourly levels, in ms/s and MB', () => {
      assert.equal(formatAnomalyFigure(anomaly('duration_p95_ms'), 1530, 'en-US'), '1.53 s (hourly average)');
      assert.equal(formatAnomalyFigure(anomaly('duration_p95_ms'), 250.25, 'en-US'), '250.3 ms (hourly average)');
      assert.equal(formatAnomalyFigure(anomaly('memory_mb'), 300.4, 'en-US'), '300 MB (hourly average)');
    });

    it('a figure that is not a number is a dash', () => {
      assert.equal(formatAnomalyFigure(anomaly('invocations'), Number.NaN, 'en-US'), '—');
    });

    it('names metrics in words, an unknown one with spaces', () => {
      assert.equal(anomalyMetricLabel('duration_p95_ms'), 'p95 duration');
      assert.equal(anomalyMetricLabel('memory_mb'), 'peak memory');
      assert.equal(anomalyMetricLabel('queue_depth'), 'queue depth');
    });
  });

  describe('recommendations', () => {
    it('separates savings from warnings and keeps the API’s order within each', () => {
      const list = [
        recommendation({ kind: 'memory_limit', service: 'a', saving: '6.93' }),
        recommendation({ kind: 'budget' }),
        recommendation({ kind: 'plan', saving: '0.80' }),
        recommendation({ kind: 'quota' }),
        recommendation({ kind: 'min_scale', service: 'b', saving: '0' }),
      ];
      const { savings, warnings } = splitRecommendations(list);
      assert.deepEqual(
        savings.map((r) => r.kind),
        ['memory_limit', 'plan', 'min_scale'],
      );
      assert.deepEqual(
        warnings.map((r) => r.kind),
        ['budget', 'quota'],
      );
    });

    it('the period in whole days', () => {
      assert.equal(reportDays({ period_start: '2026-10-31T07:00:00.000Z', period_end: '2026-11-30T07:00:00.000Z' }), 30);
      // Across the end of daylight saving time the span is 30 days and an hour: still 30 days.
      assert.equal(reportDays({ period_start: '2026-10-31T04:00:00.000Z', period_end: '2026-11-30T05:00:00.000Z' }), 30);
    });

    it('says what to change, with the service where there is one', () => {
      assert.equal(recommendationHeadline(recommendation({ kind: 'memory_limit', service: 'api', current: '256 MB', suggested: '86 MB' })), 'Memory limit of api: 256 MB → 86 MB');
      assert.equal(recommendationHeadline(recommendation({ kind: 'plan', current: 'standard v1', suggested: 'lite v2' })), 'Switch plan: standard v1 → lite v2');
      assert.equal(recommendationHeadline(recommendation({ kind: 'min_scale', service: 'cron', current: 'minScale 0', suggested: 'minScale 1' })), 'Scaling of cron: minScale 0 → minScale 1');
    });

    it('a warning says what it is about and what to do, its allowance grouped', () => {
      assert.equal(
        recommendationHeadline(recommendation({ kind: 'quota', current: '1000000 free invocations a month', suggested: 'used up: usage is billed from here on' }), 'en-US'),
        '1,000,000 free invocations a month — used up: usage is billed from here on',
      );
      assert.equal(recommendationHeadline(recommendation({ kind: 'budget', current: 'budget 25.00 USD', suggested: 'raise the budget or cut usage' }), 'en-US'), 'Budget 25.00 USD — raise the budget or cut usage');
    });
  });

  describe('the API’s sentences, readable', () => {
    it('writes instants in the tenant’s zone', () => {
      assert.equal(plainSpaces(readableText('the budget is reached around 2026-11-20T05:00:00.000Z.', 'America/New_York', 'en-US')), 'the budget is reached around Nov 20, 2026, 12:00 AM.');
    });

    it('groups long numbers and leaves short ones, decimals and prices alone', () => {
      assert.equal(
        readableText('forecast at 11350911 (8972214 so far); the 1000000 free ones', 'UTC', 'en-US'),
        'forecast at 11,350,911 (8,972,214 so far); the 1,000,000 free ones',
      );
      assert.equal(readableText('used at most 71.33 MB against a 256 MB limit; cost 13.14 USD', 'UTC', 'en-US'), 'used at most 71.33 MB against a 256 MB limit; cost 13.14 USD');
      assert.equal(readableText('compute 1106015516928.5 MB·ms', 'UTC', 'en-US'), 'compute 1,106,015,516,928.5 MB·ms');
    });

    it('leaves digits inside names and ids as they are', () => {
      assert.equal(readableText('service api-123456 and key_987654 and 0.0000166667', 'UTC', 'en-US'), 'service api-123456 and key_987654 and 0.0000166667');
    });
  });
});
