/**
 * Plans (admin): the plans and their versions, a form to create one or change one (a plan already
 * billed gets a new version), a tier editor with validation, assignment to a tenant, and the
 * simulator: one tenant's period priced under several plans side by side.
 */
import { DateTime } from 'luxon';
import { useState } from 'preact/hooks';
import { problemText, type Plan } from '../api.ts';
import { Async, Empty, TenantSelect } from '../components.tsx';
import type { Ctx, ScreenProps } from '../context.ts';
import { formatMoney, formatUnitPrice } from '../format.ts';
import { useLoad } from '../hooks.ts';
import { currentMonth, routeHash, tierProblems, tiersForApi, type TierDraft } from '../state.ts';

/** The Plans screen (admin keys only); the plan being edited is the `plan` parameter (`new` for a new one). */
export function PlansScreen({ ctx, params }: ScreenProps) {
  const [plans, reload] = useLoad(() => ctx.api.get<{ items: Plan[] }>('/pricing/plans').then((r) => r.items), []);
  const editing = params.plan;
  return (
    <div class="plans">
      <Async
        loaded={plans}
        what="plans"
        retry={reload}
        ready={(items) => (
          <>
            <section aria-labelledby="plans-title">
              <h2 id="plans-title">Plans</h2>
              <PlanTable plans={items} />
              <p>
                <a href={routeHash('plans', { plan: 'new' })}>Create a plan</a>
              </p>
            </section>
            {editing && editing !== 'new' && !items.some((p) => p.id === editing) && <Empty>Loading the plan… (if it stays, the plan no longer exists: pick one above)</Empty>}
            {editing && (editing === 'new' || items.some((p) => p.id === editing)) && (
              <PlanForm
                key={editing}
                ctx={ctx}
                plan={items.find((p) => p.id === editing) ?? null}
                onSaved={(plan) => {
                  reload();
                  window.location.hash = routeHash('plans', { plan: plan.id });
                }}
              />
            )}
            <div class="columns">
              <AssignPlan ctx={ctx} plans={items} />
              <Simulator ctx={ctx} plans={items} />
            </div>
          </>
        )}
      />
    </div>
  );
}

function PlanTable({ plans }: { plans: Plan[] }) {
  if (!plans.length) return <Empty>No plans. Create one below.</Empty>;
  return (
    <table data-testid="plans">
      <thead>
        <tr>
          <th scope="col">Plan</th>
          <th scope="col">Currency</th>
          <th scope="col" class="num">Per invocation</th>
          <th scope="col" class="num">Per GB-s</th>
          <th scope="col" class="num">Free invocations</th>
          <th scope="col" class="num">Free GB-s</th>
          <th scope="col">Charge models</th>
        </tr>
      </thead>
      <tbody>
        {plans.map((p) => (
          <tr key={p.id}>
            <td>
              <a href={routeHash('plans', { plan: p.id })}>
                {p.name} v{p.version}
              </a>
              {p.default_for_currency && <span class="tag">default</span>}
              {p.tenant_id && <span class="tag">private</span>}
            </td>
            <td>{p.currency}</td>
            <td class="num">{p.charge_models.invocations ? 'by tiers' : formatUnitPrice(p.price_per_invocation, p.currency)}</td>
            <td class="num">{formatUnitPrice(p.price_per_gb_s, p.currency)}</td>
            <td class="num">{p.free_tier_invocations}</td>
            <td class="num">{p.free_tier_gb_s}</td>
            <td>{Object.keys(p.charge_models).join(', ') || 'flat prices'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Meters whose tiers the editor edits (invocations for now; the API takes tiers for every meter). */
type TieredMeter = 'invocations';

function initialTiers(plan: Plan | null, meter: TieredMeter, flatPrice: string): { model: 'flat' | 'graduated' | 'volume'; tiers: TierDraft[] } {
  const model = plan?.charge_models[meter] as { model?: string; tiers?: { from: string; up_to: string | null; unit_price: string; flat_fee?: string }[] } | undefined;
  if (model && (model.model === 'graduated' || model.model === 'volume') && model.tiers) {
    return { model: model.model, tiers: model.tiers.map((t) => ({ from: String(t.from), up_to: t.up_to === null ? '' : String(t.up_to), unit_price: String(t.unit_price), flat_fee: t.flat_fee ? String(t.flat_fee) : '' })) };
  }
  return { model: 'flat', tiers: [{ from: '0', up_to: '', unit_price: flatPrice, flat_fee: '' }] };
}

function PlanForm({ ctx, plan, onSaved }: { ctx: Ctx; plan: Plan | null; onSaved: (plan: Plan) => void }) {
  const [fields, setFields] = useState({
    name: plan?.name ?? '',
    currency: plan?.currency ?? ctx.tenant?.currency ?? 'USD',
    price_per_invocation: plan?.price_per_invocation ?? '0.0000002',
    price_per_gb_s: plan?.price_per_gb_s ?? '0.0000166667',
    price_per_cold_start: plan?.price_per_cold_start ?? '0',
    price_per_cpu_ms: plan?.price_per_cpu_ms ?? '0',
    free_tier_invocations: plan?.free_tier_invocations ?? '0',
    free_tier_gb_s: plan?.free_tier_gb_s ?? '0',
  });
  const meter: TieredMeter = 'invocations';
  const [charge, setCharge] = useState(() => initialTiers(plan, meter, fields.price_per_invocation));
  const [message, setMessage] = useState<string | null>(null);
  const problems = charge.model === 'flat' ? [] : tierProblems(charge.tiers);
  const tiered = charge.model !== 'flat';
  const field = (name: keyof typeof fields, label: string, disabled = false) => (
    <label>
      {label}
      <input name={name} value={disabled ? '' : fields[name]} disabled={disabled} placeholder={disabled ? 'priced by the tiers' : undefined} onInput={(e) => setFields({ ...fields, [name]: e.currentTarget.value })} required={!disabled} />
    </label>
  );
  const setTier = (i: number, change: Partial<TierDraft>): void => setCharge({ ...charge, tiers: charge.tiers.map((t, j) => (j === i ? { ...t, ...change } : t)) });
  const submit = (event: Event): void => {
    event.preventDefault();
    if (problems.length) {
      setMessage('Fix the tiers first.');
      return;
    }
    const otherModels = Object.fromEntries(Object.entries(plan?.charge_models ?? {}).filter(([m]) => m !== meter));
    const body = {
      ...fields,
      // Tiers replace the flat per-invocation price (the API wants it at 0 then).
      price_per_invocation: tiered ? '0' : fields.price_per_invocation,
      charge_models: charge.model === 'flat' ? otherModels : { ...otherModels, [meter]: { model: charge.model, tiers: tiersForApi(charge.tiers) } },
    };
    setMessage('Saving…');
    (plan ? ctx.api.put<Plan>(`/pricing/plans/${plan.id}`, body) : ctx.api.post<Plan>('/pricing/plans', body)).then(
      (saved) => {
        setMessage(`Saved ${saved.name} v${saved.version}.`);
        onSaved(saved);
      },
      (err: unknown) => setMessage(problemText(err)),
    );
  };
  return (
    <section aria-labelledby="plan-form-title" class="card">
      <h2 id="plan-form-title">{plan ? `Change ${plan.name} v${plan.version}` : 'New plan'}</h2>
      {plan && <p class="help">A plan that has billed anything is never edited: saving creates its next version, and tenants on it move to the new version only when assigned.</p>}
      <form onSubmit={submit} class="grid" aria-label={plan ? 'Change the plan' : 'Create a plan'}>
        {field('name', 'Name')}
        {field('currency', 'Currency (ISO 4217)')}
        {field('price_per_invocation', 'Price per invocation', tiered)}
        {field('price_per_gb_s', 'Price per GB-s')}
        {field('price_per_cold_start', 'Price per cold start')}
        {field('price_per_cpu_ms', 'Price per CPU-ms')}
        {field('free_tier_invocations', 'Free invocations per month')}
        {field('free_tier_gb_s', 'Free GB-s per month')}
        <fieldset class="tiers">
          <legend>Invocations: charge model</legend>
          <label>
            Model
            <select value={charge.model} onChange={(e) => setCharge({ ...charge, model: e.currentTarget.value as 'flat' | 'graduated' | 'volume' })} data-testid="charge-model">
              <option value="flat">flat price per invocation</option>
              <option value="graduated">graduated tiers (each tier its own price)</option>
              <option value="volume">volume tiers (the reached tier prices everything)</option>
            </select>
          </label>
          {tiered && (
            <>
              <table>
                <thead>
                  <tr>
                    <th scope="col">From</th>
                    <th scope="col">Up to (empty: no limit)</th>
                    <th scope="col">Unit price</th>
                    <th scope="col">Flat fee</th>
                    <th scope="col">
                      <span class="visually-hidden">Remove</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {charge.tiers.map((t, i) => (
                    <tr key={i}>
                      <td>
                        <input aria-label={`Tier ${i + 1} from`} value={t.from} onInput={(e) => setTier(i, { from: e.currentTarget.value })} />
                      </td>
                      <td>
                        <input aria-label={`Tier ${i + 1} up to`} value={t.up_to} onInput={(e) => setTier(i, { up_to: e.currentTarget.value })} />
                      </td>
                      <td>
                        <input aria-label={`Tier ${i + 1} unit price`} value={t.unit_price} onInput={(e) => setTier(i, { unit_price: e.currentTarget.value })} />
                      </td>
                      <td>
                        <input aria-label={`Tier ${i + 1} flat fee`} value={t.flat_fee} onInput={(e) => setTier(i, { flat_fee: e.currentTarget.value })} />
                      </td>
                      <td>
                        <button type="button" aria-label={`Remove tier ${i + 1}`} onClick={() => setCharge({ ...charge, tiers: charge.tiers.filter((_, j) => j !== i) })}>
                          ✕
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <button type="button" onClick={() => setCharge({ ...charge, tiers: [...charge.tiers, { from: charge.tiers.at(-1)?.up_to ?? '0', up_to: '', unit_price: '0', flat_fee: '' }] })}>
                Add tier
              </button>
              {problems.length > 0 && (
                <ul class="problems" role="alert" data-testid="tier-problems">
                  {problems.map((p) => (
                    <li key={p}>{p}</li>
                  ))}
                </ul>
              )}
            </>
          )}
        </fieldset>
        <div class="actions">
          <button type="submit" disabled={problems.length > 0}>
            {plan ? 'Save as new version' : 'Create plan'}
          </button>
          {message && (
            <span role="status" class="help">
              {message}
            </span>
          )}
        </div>
      </form>
    </section>
  );
}

function AssignPlan({ ctx, plans }: { ctx: Ctx; plans: Plan[] }) {
  const [tenantId, setTenantId] = useState(ctx.tenant?.id ?? '');
  const tenant = ctx.tenants.find((t) => t.id === tenantId);
  const candidates = plans.filter((p) => p.active && (!tenant || p.currency === tenant.currency));
  const [planId, setPlanId] = useState('');
  const [from, setFrom] = useState('');
  const [message, setMessage] = useState<string | null>(null);
  const assign = (event: Event): void => {
    event.preventDefault();
    setMessage('Assigning…');
    // A day is the tenant's local midnight; empty is now.
    const effectiveFrom = from && tenant ? DateTime.fromISO(from, { zone: tenant.timezone }).toISO({ suppressMilliseconds: true }) : null;
    ctx.api.put(`/tenants/${tenantId}/pricing-plan`, { pricing_plan_id: planId, ...(effectiveFrom ? { effective_from: effectiveFrom } : {}) }).then(
      () => setMessage(`Assigned from ${from ? `${from} (${tenant?.timezone ?? 'UTC'})` : 'now'} on; earlier usage keeps its plan.`),
      (err: unknown) => setMessage(problemText(err)),
    );
  };
  return (
    <section aria-labelledby="assign-title" class="card">
      <h2 id="assign-title">Assign a plan</h2>
      <p class="help">A month whose bill is final keeps its plan: a change then starts after it.</p>
      <form class="inline" onSubmit={assign} aria-label="Assign a plan to a tenant">
        <TenantSelect tenants={ctx.tenants} value={tenantId} onChange={setTenantId} testId="assign-tenant" withCurrency required />
        <label>
          Plan
          <select value={planId} onChange={(e) => setPlanId(e.currentTarget.value)} required data-testid="assign-plan">
            <option value="">choose a plan in {tenant?.currency ?? 'its currency'}</option>
            {candidates.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name} v{p.version}
              </option>
            ))}
          </select>
        </label>
        <label>
          From (empty: now)
          <input type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} data-testid="assign-from" />
        </label>
        <button type="submit" disabled={!tenantId || !planId}>
          Assign
        </button>
        {message && (
          <p role="status" class="help">
            {message}
          </p>
        )}
      </form>
    </section>
  );
}

interface SimulationResult {
  currency: string;
  current: { total: string };
  results: { plan: { id: string; name: string; version: number }; total: string; saving: string; line_items: { description: string; service: string; amount: string }[] }[];
}

function Simulator({ ctx, plans }: { ctx: Ctx; plans: Plan[] }) {
  const [tenantId, setTenantId] = useState(ctx.tenant?.id ?? '');
  const [month, setMonth] = useState(() => currentMonth(ctx.now(), ctx.tenant?.timezone ?? 'UTC'));
  const tenant = ctx.tenants.find((t) => t.id === tenantId);
  const candidates = plans.filter((p) => p.active && tenant && p.currency === tenant.currency);
  const [result, setResult] = useState<SimulationResult | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const simulate = (event: Event): void => {
    event.preventDefault();
    setMessage('Pricing…');
    ctx.api.post<SimulationResult>('/pricing/simulate', { tenant_id: tenantId, month, plan_ids: candidates.map((p) => p.id).slice(0, 50) }).then(
      (r) => {
        setResult(r);
        setMessage(null);
      },
      (err: unknown) => setMessage(problemText(err)),
    );
  };
  return (
    <section aria-labelledby="simulator-title" class="card">
      <h2 id="simulator-title">Simulator</h2>
      <form class="inline" onSubmit={simulate} aria-label="Simulate a bill under each plan">
        <TenantSelect tenants={ctx.tenants} value={tenantId} onChange={setTenantId} testId="sim-tenant" />
        <label>
          Month
          <input type="month" value={month} onInput={(e) => setMonth(e.currentTarget.value)} required />
        </label>
        <button type="submit" disabled={!candidates.length}>
          Simulate {candidates.length} plan{candidates.length === 1 ? '' : 's'}
        </button>
        {!candidates.length && <p class="help">No active plan in {tenant?.currency ?? 'this tenant’s currency'}: create one first.</p>}
      </form>
      {message && (
        <p role="status" class="help">
          {message}
        </p>
      )}
      {result && (
        <div class="side-by-side" data-testid="simulation">
          <p>Current plans: {formatMoney(result.current.total, result.currency)}</p>
          <div class="cards">
            {result.results.map((r) => (
              <article key={r.plan.id} class="card" aria-label={`${r.plan.name} v${r.plan.version}`}>
                <h3>
                  {r.plan.name} v{r.plan.version}
                </h3>
                <p class="figure-value">{formatMoney(r.total, result.currency)}</p>
                <p class={Number(r.saving) > 0 ? 'saving' : 'help'}>
                  {Number(r.saving) > 0 ? `saves ${formatMoney(r.saving, result.currency)}` : Number(r.saving) < 0 ? `costs ${formatMoney(r.saving.replace('-', ''), result.currency)} more` : 'same as now'}
                </p>
                <details>
                  <summary>{r.line_items.length} lines</summary>
                  <ul>
                    {r.line_items.slice(0, 20).map((l, i) => (
                      <li key={i}>
                        {l.service}: {l.description} — {formatMoney(l.amount, result.currency)}
                      </li>
                    ))}
                  </ul>
                </details>
              </article>
            ))}
          </div>
        </div>
      )}
    </section>
  );
}
