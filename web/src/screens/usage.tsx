/**
 * Usage explorer: time series of invocations, GB-s, duration p50/p95, memory, cold starts and
 * errors per 5m/1h/1d window, filtered by service and revision, optionally against the period
 * before, refreshed every 15 s while "live" is on.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Service } from '../api.ts';
import { Async, Empty, Figure, TimeChart, type ChartSeries } from '../components.tsx';
import type { ScreenProps } from '../context.ts';
import { formatDateTime, formatNumber } from '../format.ts';
import { useLoad } from '../hooks.ts';
import { alignSeries, metricLabels, previousRange, recentRange, routeHash, seriesOf, shiftSeries, totalOf, type UsageMetric, type UsagePoint, type UsageWindow, type WindowSize } from '../state.ts';

const LIVE_REFRESH_MS = 15_000;
const charts: { title: string; metrics: UsageMetric[] }[] = [
  { title: 'Invocations', metrics: ['invocations'] },
  { title: 'Billed GB-s', metrics: ['gb_s'] },
  { title: 'Duration p50 / p95 (ms)', metrics: ['p50_ms', 'p95_ms'] },
  { title: 'Memory, average (MB)', metrics: ['memory_mb'] },
  { title: 'Cold starts and errors', metrics: ['cold_starts', 'errors'] },
];
const colors: Record<UsageMetric, string> = { invocations: '#1f5fa8', gb_s: '#2d7d46', p50_ms: '#6a4c93', p95_ms: '#b5452b', memory_mb: '#8a6d00', cold_starts: '#0f7c8c', errors: '#b3261e' };

/** The Usage explorer screen; its filters live in the URL hash (window, service, revision, compare). */
export function UsageScreen({ ctx, params }: ScreenProps) {
  const tenant = ctx.tenant;
  const size = (['5m', '1h', '1d'].includes(params.window ?? '') ? params.window : '1h') as WindowSize;
  const serviceId = params.service ?? '';
  const revisionId = params.revision ?? '';
  const compare = params.compare === '1';
  const [live, setLive] = useState(false);
  const go = (change: Record<string, string | undefined>): void => {
    window.location.hash = routeHash('usage', { window: size, service: serviceId, revision: revisionId, compare: compare ? '1' : undefined, ...change });
  };

  const [services] = useLoad(async () => (tenant ? ctx.api.all<Service>('/services', { tenant_id: tenant.id, limit: 500 }) : []), [tenant?.id]);
  const [revisions] = useLoad(
    async () => (serviceId ? (await ctx.api.get<{ items: { id: string; name: string }[] }>(`/services/${serviceId}/revisions`)).items : []),
    [serviceId],
  );
  const [loaded, reload] = useLoad(async () => {
    if (!tenant) return null;
    const range = recentRange(size, ctx.now());
    const fetchRange = (r: { start: Date; end: Date }): Promise<UsageWindow[]> =>
      ctx.api.all<UsageWindow>('/usage-aggregates', {
        tenant_id: tenant.id,
        window_size: size,
        service_id: serviceId || undefined,
        revision_id: revisionId || undefined,
        start_time: r.start.toISOString(),
        end_time: r.end.toISOString(),
        limit: 1000,
      });
    const before = previousRange(range);
    const [current, earlier] = await Promise.all([fetchRange(range), compare ? fetchRange(before) : Promise.resolve(null)]);
    return {
      range,
      current: seriesOf(current),
      compared: earlier ? shiftSeries(seriesOf(earlier), range.start.getTime() - before.start.getTime()) : null,
      fetchedAt: new Date(),
    };
  }, [tenant?.id, size, serviceId, revisionId, compare]);

  useEffect(() => {
    if (!live) return;
    const timer = setInterval(reload, LIVE_REFRESH_MS);
    return () => clearInterval(timer);
  }, [live, reload]);

  if (!tenant) return <Empty>No tenants yet. Create one under Operators.</Empty>;
  const serviceList = services.state === 'ready' ? services.data : [];
  const revisionList = revisions.state === 'ready' ? revisions.data : [];
  return (
    <div class="usage">
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filters">
        <label>
          Window
          <select value={size} onChange={(e) => go({ window: e.currentTarget.value })} data-testid="window">
            <option value="5m">5 minutes (last 6 h)</option>
            <option value="1h">1 hour (last 3 days)</option>
            <option value="1d">1 day (last 30 days)</option>
          </select>
        </label>
        <label>
          Service
          <select value={serviceId} onChange={(e) => go({ service: e.currentTarget.value, revision: undefined })} data-testid="service">
            <option value="">All services</option>
            {serviceList.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Revision
          <select value={revisionId} disabled={!serviceId} onChange={(e) => go({ revision: e.currentTarget.value })}>
            <option value="">{serviceId ? 'All revisions' : 'pick a service first'}</option>
            {revisionList.map((r) => (
              <option key={r.id} value={r.id}>
                {r.name}
              </option>
            ))}
          </select>
        </label>
        <label title="Aggregated windows are kept per service and revision, not per label">
          Label
          <input type="text" disabled placeholder="not in aggregates yet" aria-describedby="label-note" />
        </label>
        <label class="check">
          <input type="checkbox" checked={compare} onChange={(e) => go({ compare: e.currentTarget.checked ? '1' : undefined })} data-testid="compare" />
          Compare with the period before
        </label>
        <label class="check">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} data-testid="live" />
          Live (every 15 s)
        </label>
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </form>
      <p id="label-note" class="help">
        Label filters need per-label windows, which aggregation does not keep yet; filter by service and revision instead.
      </p>
      <Async
        loaded={loaded}
        what="usage"
        retry={reload}
        ready={(data) =>
          data && (
            <UsageCharts current={data.current} compared={data.compared} timezone={tenant.timezone} fetchedAt={data.fetchedAt} range={data.range} />
          )
        }
      />
    </div>
  );
}

function UsageCharts({ current, compared, timezone, fetchedAt, range }: { current: UsagePoint[]; compared: UsagePoint[] | null; timezone: string; fetchedAt: Date; range: { start: Date; end: Date } }) {
  const drawn = useMemo(
    () =>
      charts.map((chart) => {
        const aligned = chart.metrics.map((m) => ({ metric: m, ...alignSeries(current, compared, m) }));
        const x = aligned[0]?.x ?? [];
        const series: ChartSeries[] = aligned.flatMap((a) => [
          { label: metricLabels[a.metric], values: a.current, color: colors[a.metric] },
          ...(a.compared ? [{ label: `${metricLabels[a.metric]} (period before)`, values: a.compared, color: colors[a.metric], dash: [6, 4] }] : []),
        ]);
        return { title: chart.title, x, series };
      }),
    [current, compared],
  );
  if (current.length === 0) {
    return (
      <Empty>
        No usage in this window between {formatDateTime(range.start.toISOString(), timezone)} and {formatDateTime(range.end.toISOString(), timezone)}. Try a longer window, or
        another service.
      </Empty>
    );
  }
  const invocations = totalOf(current, 'invocations');
  const before = compared ? totalOf(compared, 'invocations') : null;
  return (
    <>
      <section class="figures" aria-label="Totals">
        <Figure testId="total-invocations" label="Invocations" value={formatNumber(invocations, 0)} {...(before !== null ? { note: `period before: ${formatNumber(before, 0)}` } : {})} />
        <Figure label="Billed GB-s" value={formatNumber(totalOf(current, 'gb_s'), 1)} {...(compared ? { note: `period before: ${formatNumber(totalOf(compared, 'gb_s'), 1)}` } : {})} />
        <Figure label="Cold starts" value={formatNumber(totalOf(current, 'cold_starts'), 0)} />
        <Figure label="Errors" value={formatNumber(totalOf(current, 'errors'), 0)} />
      </section>
      <p class="help">Updated {formatDateTime(fetchedAt.toISOString(), timezone)} · times in {timezone}</p>
      <div class="charts">
        {drawn.map((c) => (
          <TimeChart key={c.title} title={c.title} x={c.x} series={c.series} timeZone={timezone} />
        ))}
      </div>
    </>
  );
}
