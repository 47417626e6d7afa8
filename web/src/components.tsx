/** Shared pieces of the screens: states that say what to do, the chart, figures and tables. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { problemText, type Tenant } from './api.ts';
import type { Loaded } from './hooks.ts';

/** A loading line, announced politely to screen readers. */
export function Loading({ what }: { what: string }) {
  return (
    <p class="state" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** An error in words that say what to do, with a retry when one makes sense. */
export function ErrorState({ error, retry }: { error: unknown; retry?: () => void }) {
  return (
    <div class="state error" role="alert">
      <p>{problemText(error)}</p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** An empty state (say why it is empty and what fills it). */
export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="state empty">{children}</div>;
}

/** Renders `ready` once loaded; the loading and error states otherwise. */
export function Async<T>({ loaded, what, retry, ready }: { loaded: Loaded<T>; what: string; retry?: () => void; ready: (data: T) => ComponentChildren }) {
  if (loaded.state === 'loading') return <Loading what={what} />;
  if (loaded.state === 'error') return <ErrorState error={loaded.error} {...(retry ? { retry } : {})} />;
  return <>{ready(loaded.data)}</>;
}

/** One headline figure with its label and a note. */
export function Figure({ label, value, note, testId }: { label: string; value: ComponentChildren; note?: ComponentChildren; testId?: string }) {
  return (
    <div class="figure" data-testid={testId}>
      <div class="figure-label">{label}</div>
      <div class="figure-value">{value}</div>
      {note !== undefined && <div class="figure-note">{note}</div>}
    </div>
  );
}

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  color: string;
  dash?: number[];
  fill?: string;
}

/**
 * A time-series chart (uPlot, canvas) that follows its container's width. `x` is seconds since
 * the epoch; `timeZone` is the zone of the axis labels. data-points (instants drawn) and
 * data-colors (the series' strokes) let a test check the canvas really shows the data.
 */
export function TimeChart({ title, x, series, timeZone, height = 240, yLabel }: { title: string; x: number[]; series: ChartSeries[]; timeZone: string; height?: number; yLabel?: string }) {
  const holder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    const options: uPlot.Options = {
      width: Math.max(320, element.clientWidth),
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone),
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, ...(s.dash ? { dash: s.dash } : {}), ...(s.fill ? { fill: s.fill } : {}), spanGaps: false }))],
      axes: [{}, { label: yLabel ?? '', size: 70 }],
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
    };
    const plot = new uPlot(options, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, element);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(320, element.clientWidth), height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [x, series, timeZone, height, yLabel]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={holder} role="img" aria-label={`${title}: ${x.length} points`} data-points={x.length} data-colors={series.map((s) => s.color).join(' ')} data-testid="chart" />
    </figure>
  );
}

/** A horizontal bar of a share (budget gauge), with its text for screen readers. */
export function Gauge({ share, label }: { share: number; label: string }) {
  const percent = Math.round(share * 100);
  const level = share >= 1 ? 'over' : share >= 0.8 ? 'near' : 'ok';
  return (
    <div class="gauge-row">
      <div class="gauge" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.min(percent, 100)} aria-label={label} data-level={level}>
        <div class="gauge-fill" style={{ width: `${Math.min(100, percent)}%` }} />
      </div>
      {/* Beside the bar, not on it: text on the coloured fill would lose its contrast. */}
      <span class="gauge-text" aria-hidden="true">
        {percent}%
      </span>
    </div>
  );
}

/** A labelled choice of tenant; `withCurrency` adds each tenant's currency to its name. */
export function TenantSelect({ tenants, value, onChange, testId, withCurrency = false, required = false }: { tenants: readonly Tenant[]; value: string; onChange: (id: string) => void; testId: string; withCurrency?: boolean; required?: boolean }) {
  return (
    <label>
      Tenant
      <select value={value} onChange={(e) => onChange(e.currentTarget.value)} required={required} data-testid={testId}>
        {tenants.map((t) => (
          <option key={t.id} value={t.id}>
            {withCurrency ? `${t.name} (${t.currency})` : t.name}
          </option>
        ))}
      </select>
    </label>
  );
}
