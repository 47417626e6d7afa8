/**
 * Overview: month-to-date cost against the same point of last month, the month-end forecast with
 * its 80%/95% band, the budget gauge, cost by service, and the insights (anomalies, savings and
 * warnings: screens/insights.tsx).
 */
import { ApiProblem, type Bill, type Budget, type DashboardData, type StoredForecast, type Tenant } from '../api.ts';
import { Async, Empty, Figure, Gauge, TimeChart } from '../components.tsx';
import type { Ctx, ScreenProps } from '../context.ts';
import { formatDateTime, formatMoney, formatNumber, formatRate, sumDecimals } from '../format.ts';
import { useLoad } from '../hooks.ts';
import { budgetUse, relativeChange, samePointLastMonth } from '../state.ts';
import { InsightsPanel } from './insights.tsx';

interface OverviewData {
  dashboard: DashboardData;
  lastMonth: Bill | null;
  forecasts: StoredForecast[];
  budget: Budget | null;
}

/** The answer, or null when the API says there is nothing (one of `statuses`); other errors stay errors. */
const orNull = <T,>(promise: Promise<T>, statuses: readonly number[]): Promise<T | null> =>
  promise.catch((err: unknown) => {
    if (err instanceof ApiProblem && statuses.includes(err.status)) return null;
    throw err;
  });

/** The Overview screen of the selected tenant. */
export function OverviewScreen({ ctx }: ScreenProps) {
  const tenant = ctx.tenant;
  const [loaded, reload] = useLoad<OverviewData | null>(async () => {
    if (!tenant) return null;
    const last = samePointLastMonth(ctx.now(), tenant.timezone);
    const [dashboard, lastMonth, forecasts, budget] = await Promise.all([
      ctx.api.get<DashboardData>(`/usage/dashboard/${tenant.id}`, { days: 30 }),
      // No plan for last month (409) or a period the API cannot price (422): no comparison then.
      orNull(ctx.api.post<Bill>('/billing/calculate', { tenant_id: tenant.id, period_start: last.start.toISOString(), period_end: last.end.toISOString() }), [409, 422]),
      ctx.api.get<{ items: StoredForecast[] }>(`/tenants/${tenant.id}/forecasts`).then((r) => r.items),
      orNull(ctx.api.get<Budget>(`/tenants/${tenant.id}/budget`), [404]),
    ]);
    return { dashboard, lastMonth, forecasts, budget };
  }, [tenant?.id]);

  if (!tenant) return <Empty>No tenants yet. Create one under Operators (or run `npm run demo -- --serve`).</Empty>;
  return <Async loaded={loaded} what="the overview" retry={reload} ready={(data) => (data ? <OverviewBody data={data} ctx={ctx} tenant={tenant} /> : null)} />;
}

function OverviewBody({ data, ctx, tenant }: { data: OverviewData; ctx: Ctx; tenant: Tenant }) {
  const timezone = tenant.timezone;
  const { dashboard, lastMonth, forecasts, budget } = data;
  const currency = dashboard.tenant.currency;
  const money = (amount: string): string => formatMoney(amount, currency);
  const mtd = dashboard.month_to_date;
  const change = mtd && lastMonth ? relativeChange(lastMonth.subtotal, mtd.total) : null;
  const monthEnd = forecasts.find((f) => f.horizon === 'month_end');
  const share = budget ? budgetUse(budget.amount, budget.month_to_date) : null;

  const byService = new Map<string, string[]>();
  for (const line of mtd?.lines ?? []) byService.set(line.service, [...(byService.get(line.service) ?? []), line.amount]);
  const serviceCosts = [...byService.entries()].map(([service, amounts]) => ({ service, amount: sumDecimals(amounts) })).sort((a, b) => Number(b.amount) - Number(a.amount));
  const x = dashboard.daily_totals.map((d) => Math.floor(Date.parse(`${d.date}T12:00:00Z`) / 1000));

  return (
    <div class="overview">
      <section class="figures" aria-label="This month">
        <Figure
          testId="mtd"
          label="Month to date"
          value={mtd ? money(mtd.total) : '—'}
          note={
            mtd
              ? `usage priced as of ${formatDateTime(mtd.usage_as_of, timezone)}`
              : 'not priced yet: the price stage prices the month after usage is aggregated (a few minutes after it arrives)'
          }
        />
        <Figure
          testId="last-month"
          label="Same point last month"
          value={lastMonth ? money(lastMonth.subtotal) : '—'}
          note={change === null ? 'no usage last month to compare with' : `${change >= 0 ? '▲' : '▼'} ${formatRate(Math.abs(change))} ${change >= 0 ? 'more' : 'less'} this month`}
        />
        <Figure
          testId="forecast"
          label="Month-end forecast"
          value={monthEnd ? money(monthEnd.predicted_cost) : '—'}
          note={
            monthEnd ? (
              <>
                80%: {money(monthEnd.lower_80)} – {money(monthEnd.upper_80)}
                <br />
                95%: {money(monthEnd.lower_95)} – {money(monthEnd.upper_95)}
                <br />
                {monthEnd.model}, as of {formatDateTime(monthEnd.as_of, timezone)}
              </>
            ) : (
              'no forecast yet: the forecast stage runs daily (or POST a forecast.tick)'
            )
          }
        />
        <div class="figure" data-testid="budget">
          <div class="figure-label">Budget</div>
          {budget && share !== null ? (
            <>
              <div class="figure-value">
                {money(budget.month_to_date ?? '0')} of {money(budget.amount)}
              </div>
              <Gauge share={share} label={`Budget used: ${Math.round(share * 100)}%`} />
              <div class="figure-note">alerts at {budget.thresholds.join('%, ')}%</div>
            </>
          ) : (
            <div class="figure-note">No budget set. An admin sets one with PUT /api/v1/tenants/{'{id}'}/budget.</div>
          )}
        </div>
      </section>

      {monthEnd && (
        <section aria-label="Forecast band" class="band" data-testid="forecast-band">
          <ForecastBand forecast={monthEnd} money={money} />
        </section>
      )}

      <section aria-labelledby="daily-title">
        <h2 id="daily-title">Last 30 days</h2>
        {dashboard.daily_totals.some((d) => d.invocations > 0) ? (
          <TimeChart
            title="Billed GB-s per day"
            x={x}
            timeZone={timezone}
            series={[{ label: 'GB-s', values: dashboard.daily_totals.map((d) => Number(d.gb_s)), color: '#1f5fa8', fill: 'rgba(31,95,168,0.12)' }]}
          />
        ) : (
          <Empty>No usage in the last 30 days. Send usage CloudEvents to the broker (see the README) and it appears here within minutes.</Empty>
        )}
      </section>

      <div class="columns">
        <section aria-labelledby="services-title">
          <h2 id="services-title">Cost by service (month to date)</h2>
          {serviceCosts.length ? (
            <table data-testid="cost-by-service">
              <thead>
                <tr>
                  <th scope="col">Service</th>
                  <th scope="col" class="num">
                    Cost
                  </th>
                </tr>
              </thead>
              <tbody>
                {serviceCosts.map((s) => (
                  <tr key={s.service}>
                    <td>{s.service}</td>
                    <td class="num">{money(s.amount)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>Nothing priced this month yet.</Empty>
          )}
          <h3>Busiest services (30 days)</h3>
          {dashboard.top_services.length ? (
            <table>
              <thead>
                <tr>
                  <th scope="col">Service</th>
                  <th scope="col" class="num">Invocations</th>
                  <th scope="col" class="num">GB-s</th>
                  <th scope="col" class="num">Cold starts</th>
                  <th scope="col" class="num">Errors</th>
                </tr>
              </thead>
              <tbody>
                {dashboard.top_services.map((s) => (
                  <tr key={s.service_id}>
                    <td>
                      <a href={`#/usage?service=${s.service_id}`}>{s.service_name}</a>
                    </td>
                    <td class="num">{formatNumber(s.invocations, 0)}</td>
                    <td class="num">{formatNumber(s.gb_s, 1)}</td>
                    <td class="num">{formatRate(s.cold_start_rate)}</td>
                    <td class="num">{formatRate(s.error_rate)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No services have usage yet.</Empty>
          )}
        </section>
        <InsightsPanel ctx={ctx} tenant={tenant} />
      </div>
    </div>
  );
}

/** The month-end forecast as a band: 95% (light), 80% (darker) and the point, on one scale. */
function ForecastBand({ forecast, money }: { forecast: StoredForecast; money: (amount: string) => string }) {
  const top = Number(forecast.upper_95) || 1;
  const at = (amount: string): string => `${Math.min(100, (Number(amount) / top) * 100)}%`;
  const left = (amount: string): number => Math.min(100, (Number(amount) / top) * 100);
  return (
    <div class="forecast-band" role="img" aria-label={`Month-end forecast ${money(forecast.predicted_cost)}, 80% interval ${money(forecast.lower_80)} to ${money(forecast.upper_80)}, 95% interval ${money(forecast.lower_95)} to ${money(forecast.upper_95)}`}>
      <div class="band-95" style={{ left: at(forecast.lower_95), width: `${left(forecast.upper_95) - left(forecast.lower_95)}%` }} />
      <div class="band-80" style={{ left: at(forecast.lower_80), width: `${left(forecast.upper_80) - left(forecast.lower_80)}%` }} />
      {forecast.actual_cost !== null && <div class="band-actual" style={{ left: at(forecast.actual_cost) }} title={`so far ${money(forecast.actual_cost)}`} />}
      <div class="band-point" style={{ left: at(forecast.predicted_cost) }} />
      <div class="band-labels">
        <span>{money('0')}</span>
        <span class="band-legend">
          <i class="key key-95" /> 95% interval <i class="key key-80" /> 80% interval <i class="key key-point" /> forecast
          {forecast.actual_cost !== null && (
            <>
              {' '}
              <i class="key key-actual" /> so far
            </>
          )}
        </span>
        <span>{money(forecast.upper_95)}</span>
      </div>
    </div>
  );
}
