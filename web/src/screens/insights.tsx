/**
 * The Overview's "Anomalies and recommendations" panel, fed by GET /ml/insights/:tenant_id: the
 * last day's anomalies, the savings the last 30 days' usage shows (in the tenant's currency) and
 * the budget and free-allowance warnings. It loads on its own, so the figures above show while
 * the insights (a few seconds: they forecast and simulate) are computed.
 */
import type { Anomaly, Insights, Recommendation, Tenant } from '../api.ts';
import { Async, Empty } from '../components.tsx';
import type { Ctx } from '../context.ts';
import { formatDateTime, formatMoney, formatMoneyChange, formatRate } from '../format.ts';
import { useLoad } from '../hooks.ts';
import { anomalyHours, anomalyMetricLabel, anomalyWindowHours, formatAnomalyFigure, readableText, recommendationHeadline, reportDays, splitRecommendations } from '../insights.ts';

/** The insights panel of `tenant`. */
export function InsightsPanel({ ctx, tenant }: { ctx: Ctx; tenant: Tenant }) {
  const [loaded, reload] = useLoad(() => ctx.api.get<Insights>(`/ml/insights/${tenant.id}`), [tenant.id]);
  return (
    <section aria-labelledby="insights-title" class="insights-panel" data-testid="insights">
      <h2 id="insights-title">Anomalies and recommendations</h2>
      <Async loaded={loaded} what="anomalies and recommendations" retry={reload} ready={(insights) => <InsightsBody insights={insights} timezone={tenant.timezone} />} />
    </section>
  );
}

function InsightsBody({ insights, timezone }: { insights: Insights; timezone: string }) {
  const report = insights.recommendations;
  const { savings, warnings } = splitRecommendations(report.recommendations);
  const days = reportDays(report);
  const money = (amount: string): string => formatMoney(amount, report.currency);
  return (
    <>
      <h3 id="anomalies-title">Anomalies in the last {anomalyWindowHours} h</h3>
      {insights.anomalies.length ? (
        <ul class="insights" aria-labelledby="anomalies-title">
          {insights.anomalies.map((anomaly) => (
            <AnomalyItem key={`${anomaly.service} ${anomaly.metric} ${anomaly.since}`} anomaly={anomaly} timezone={timezone} />
          ))}
        </ul>
      ) : (
        <Empty>
          <span data-testid="no-anomalies">
            No anomalies in the last {anomalyWindowHours} h: every service's invocations, p95 duration, peak memory, errors and cost stayed near what its history predicts. A service
            is judged once it has a week of history.
          </span>
        </Empty>
      )}

      <h3 id="savings-title">Savings over the last {days} days</h3>
      {savings.length ? (
        <>
          <p class="help" data-testid="total-saving">
            Up to {money(report.total_saving)} per {days} days in all, on a cost of {money(report.cost)} (the savings overlap, so their sum is approximate).
          </p>
          <ul class="insights" aria-labelledby="savings-title">
            {savings.map((recommendation) => (
              <SavingItem key={`${recommendation.kind} ${recommendation.service ?? ''}`} recommendation={recommendation} days={days} money={money} timezone={timezone} />
            ))}
          </ul>
        </>
      ) : (
        <Empty>
          <span data-testid="no-savings">
            No savings found in the last {days} days' usage: no cheaper plan, no memory limit to lower, no cold starts worth a warm instance.
          </span>
        </Empty>
      )}

      <h3 id="warnings-title">Warnings this month</h3>
      {warnings.length ? (
        <ul class="insights" aria-labelledby="warnings-title">
          {warnings.map((recommendation) => (
            <li key={`${recommendation.kind} ${recommendation.current}`} class="insight warning" data-testid="warning">
              <div class="insight-head">{recommendationHeadline(recommendation)}</div>
              <p class="help">{readableText(recommendation.explanation, timezone)}</p>
            </li>
          ))}
        </ul>
      ) : (
        <Empty>
          <span data-testid="no-warnings">No budget or free-allowance warnings: at the month-end forecast's pace this month stays within them.</span>
        </Empty>
      )}
    </>
  );
}

function AnomalyItem({ anomaly, timezone }: { anomaly: Anomaly; timezone: string }) {
  return (
    <li class="insight" data-testid="anomaly">
      <div class="insight-head">
        {anomaly.service}: {anomalyMetricLabel(anomaly.metric)} {anomaly.direction === 'spike' ? 'rose' : 'fell'}
      </div>
      <dl class="facts">
        <dt>Expected</dt>
        <dd>{formatAnomalyFigure(anomaly, anomaly.expected)}</dd>
        <dt>Observed</dt>
        <dd>{formatAnomalyFigure(anomaly, anomaly.observed)}</dd>
        <dt>Since</dt>
        <dd>
          {formatDateTime(anomaly.since, timezone)} ({anomalyHours(anomaly)} h, until {formatDateTime(anomaly.until, timezone)})
        </dd>
        <dt>Cost impact</dt>
        <dd data-testid="cost-impact">{formatMoneyChange(anomaly.cost_impact, anomaly.currency)} (estimate at the plan's unit prices)</dd>
      </dl>
      <p class="help">{readableText(anomaly.explanation, timezone)}</p>
    </li>
  );
}

function SavingItem({ recommendation, days, money, timezone }: { recommendation: Recommendation; days: number; money: (amount: string) => string; timezone: string }) {
  return (
    <li class="insight" data-testid="recommendation">
      <div class="insight-head">
        <span>{recommendationHeadline(recommendation)}</span>
        <span class="insight-figure">
          saving <span class="saving" data-testid="saving">{money(recommendation.saving ?? '0')}</span> per {days} days
          {recommendation.saving_share !== null && <> ({formatRate(recommendation.saving_share)} of the cost)</>}
        </span>
      </div>
      <p class="help">{readableText(recommendation.explanation, timezone)}</p>
    </li>
  );
}
