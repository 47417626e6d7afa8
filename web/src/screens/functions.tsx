/** Functions: every service and revision with its status over the last 24 hours, linked to its usage. */
import type { Service } from '../api.ts';
import { Async, Empty } from '../components.tsx';
import type { ScreenProps } from '../context.ts';
import { formatDateTime, formatDurationMs, formatNumber, formatRate } from '../format.ts';
import { useLoad } from '../hooks.ts';
import { revisionStatuses, routeHash, type UsageWindow } from '../state.ts';

const SPAN_MS = 24 * 3_600_000;

/** The Functions screen of the selected tenant. */
export function FunctionsScreen({ ctx }: ScreenProps) {
  const tenant = ctx.tenant;
  const [loaded, reload] = useLoad(async () => {
    if (!tenant) return null;
    const now = ctx.now();
    const [services, windows] = await Promise.all([
      ctx.api.all<Service>('/services', { tenant_id: tenant.id, limit: 500 }),
      ctx.api.all<UsageWindow>('/usage-aggregates', { tenant_id: tenant.id, window_size: '1h', start_time: new Date(now.getTime() - SPAN_MS).toISOString(), limit: 1000 }),
    ]);
    return { services, statuses: revisionStatuses(windows, SPAN_MS) };
  }, [tenant?.id]);
  if (!tenant) return <Empty>No tenants yet. Create one under Operators.</Empty>;
  return (
    <Async
      loaded={loaded}
      what="functions"
      retry={reload}
      ready={(data) => {
        if (!data) return null;
        if (!data.services.length) return <Empty>No functions yet. A service appears here once its first usage event is saved (or register one with POST /api/v1/services).</Empty>;
        const idle = data.services.filter((s) => !data.statuses.some((r) => r.service_id === s.id));
        return (
          <>
            <p class="help">Last 24 hours, from the hourly windows. Times in {tenant.timezone}.</p>
            <table data-testid="functions">
              <thead>
                <tr>
                  <th scope="col">Service</th>
                  <th scope="col">Revision</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last seen</th>
                  <th scope="col" class="num">Invocations / min</th>
                  <th scope="col" class="num">Error rate</th>
                  <th scope="col" class="num">Cold-start rate</th>
                  <th scope="col" class="num">p95</th>
                </tr>
              </thead>
              <tbody>
                {data.statuses.map((r) => (
                  <tr key={r.revision_id}>
                    <td>
                      <a href={routeHash('usage', { service: r.service_id })}>{r.service_name}</a>
                    </td>
                    <td>
                      <a href={routeHash('usage', { service: r.service_id, revision: r.revision_id })}>{r.revision_name}</a>
                    </td>
                    <td>
                      <span class={`status ${r.errorRate > 0.05 ? 'status-bad' : 'status-ok'}`}>{r.errorRate > 0.05 ? 'erroring' : 'serving'}</span>
                    </td>
                    <td>{r.lastSeen ? formatDateTime(r.lastSeen, tenant.timezone) : '—'}</td>
                    <td class="num">{formatNumber(r.ratePerMinute, 2)}</td>
                    <td class="num">{formatRate(r.errorRate)}</td>
                    <td class="num">{formatRate(r.coldStartRate)}</td>
                    <td class="num">{formatDurationMs(r.p95Ms)}</td>
                  </tr>
                ))}
                {idle.map((s) => (
                  <tr key={s.id}>
                    <td>
                      <a href={routeHash('usage', { service: s.id, window: '1d' })}>{s.name}</a>
                    </td>
                    <td>—</td>
                    <td>
                      <span class="status status-idle">idle</span>
                    </td>
                    <td colSpan={5}>no invocations in the last 24 hours</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        );
      }}
    />
  );
}
