/** Invoices: the tenant's bills with status, a bill's line items, CSV/PDF, and (admin) generate, finalize, mark paid. */
import { useState } from 'preact/hooks';
import { saveBlob, problemText, type Bill, type BillSummary } from '../api.ts';
import { Async, Empty } from '../components.tsx';
import type { Ctx, ScreenProps } from '../context.ts';
import { formatDateTime, formatMoney, formatNumber, formatPeriod, formatUnitPrice } from '../format.ts';
import { useLoad } from '../hooks.ts';
import { currentMonth, routeHash } from '../state.ts';

/** The Invoices screen; the open bill is the `bill` parameter of the hash. */
export function InvoicesScreen({ ctx, params }: ScreenProps) {
  const tenant = ctx.tenant;
  const [bills, reload] = useLoad(async () => (tenant ? ctx.api.all<BillSummary>('/bills', { tenant_id: tenant.id, limit: 100 }, 5) : []), [tenant?.id]);
  if (!tenant) return <Empty>No tenants yet. Create one under Operators.</Empty>;
  return (
    <div class="invoices">
      <section aria-labelledby="bills-title">
        <h2 id="bills-title">Bills</h2>
        {ctx.role === 'admin' && <GenerateDraft ctx={ctx} onDone={reload} />}
        <Async
          loaded={bills}
          what="bills"
          retry={reload}
          ready={(items) =>
            items.length ? (
              <table data-testid="bills">
                <thead>
                  <tr>
                    <th scope="col">Period</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num">
                      Total
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((b) => (
                    <tr key={b.id} aria-selected={params.bill === b.id}>
                      <td>
                        <a href={routeHash('invoices', { bill: b.id })}>{formatPeriod(b.period_start, b.period_end, tenant.timezone)}</a>
                      </td>
                      <td>
                        <span class={`status status-${b.status}`}>{b.status}</span>
                      </td>
                      <td class="num">{formatMoney(b.total, b.currency)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <Empty>No bills yet. Bills are issued when a month closes (hourly check after the month ends in the tenant's zone); an admin can generate a draft now.</Empty>
            )
          }
        />
      </section>
      <section aria-labelledby="bill-title">
        <h2 id="bill-title">Bill</h2>
        {params.bill ? <BillDetail key={params.bill} ctx={ctx} id={params.bill} timezone={tenant.timezone} onChange={reload} /> : <Empty>Pick a bill to see its line items.</Empty>}
      </section>
    </div>
  );
}

function GenerateDraft({ ctx, onDone }: { ctx: Ctx; onDone: () => void }) {
  const tenant = ctx.tenant;
  const [month, setMonth] = useState(() => currentMonth(ctx.now(), tenant?.timezone ?? 'UTC'));
  const [message, setMessage] = useState<string | null>(null);
  if (!tenant) return null;
  const generate = (event: Event): void => {
    event.preventDefault();
    setMessage('Generating…');
    ctx.api.post<Bill>('/billing/generate', { tenant_id: tenant.id, month }).then(
      (bill) => {
        setMessage(`Draft ${formatMoney(bill.total, bill.currency)} stored.`);
        onDone();
        if (bill.id) window.location.hash = routeHash('invoices', { bill: bill.id });
      },
      (err: unknown) => setMessage(problemText(err)),
    );
  };
  return (
    <form class="inline" onSubmit={generate} aria-label="Generate a draft bill">
      <label>
        Month
        <input type="month" value={month} onInput={(e) => setMonth(e.currentTarget.value)} required />
      </label>
      <button type="submit">Generate draft</button>
      {message && (
        <span role="status" class="help">
          {message}
        </span>
      )}
    </form>
  );
}

function BillDetail({ ctx, id, timezone, onChange }: { ctx: Ctx; id: string; timezone: string; onChange: () => void }) {
  const [loaded, reload] = useLoad(() => ctx.api.get<Bill>(`/bills/${id}`), [id]);
  const [message, setMessage] = useState<string | null>(null);
  const act = (path: string, done: string): void => {
    setMessage('Working…');
    ctx.api.post(path).then(
      () => {
        setMessage(done);
        reload();
        onChange();
      },
      (err: unknown) => setMessage(problemText(err)),
    );
  };
  const download = (kind: 'csv' | 'pdf'): void => {
    ctx.api.download(`/bills/${id}.${kind}`, `bill-${id}.${kind}`).then(
      ({ blob, filename }) => saveBlob(blob, filename),
      (err: unknown) => setMessage(problemText(err)),
    );
  };
  return (
    <Async
      loaded={loaded}
      what="the bill"
      retry={reload}
      ready={(bill) => (
        <div data-testid="bill-detail">
          <dl class="facts">
            <dt>Period</dt>
            <dd>{formatPeriod(bill.period_start, bill.period_end, timezone)}</dd>
            <dt>Status</dt>
            <dd data-testid="bill-status">{bill.status}</dd>
            <dt>Number</dt>
            <dd>{bill.number ?? 'given at finalization'}</dd>
            <dt>Subtotal</dt>
            <dd>{formatMoney(bill.subtotal, bill.currency)}</dd>
            <dt>Tax</dt>
            <dd>{formatMoney(bill.tax_amount, bill.currency)}</dd>
            <dt>Total</dt>
            <dd>
              <strong>{formatMoney(bill.total, bill.currency)}</strong>
            </dd>
          </dl>
          <div class="actions">
            <button type="button" onClick={() => download('csv')}>
              Download CSV
            </button>
            <button type="button" onClick={() => download('pdf')}>
              Download PDF
            </button>
            {ctx.role === 'admin' && bill.status === 'draft' && (
              <button type="button" onClick={() => act(`/bills/${id}/finalize`, 'Finalized: the bill can no longer change.')}>
                Finalize
              </button>
            )}
            {ctx.role === 'admin' && bill.status === 'final' && (
              <button type="button" onClick={() => act(`/bills/${id}/mark-paid`, 'Marked paid.')}>
                Mark paid
              </button>
            )}
          </div>
          {message && (
            <p role="status" class="help">
              {message}
            </p>
          )}
          {bill.line_items.length ? (
            <table data-testid="line-items">
              <thead>
                <tr>
                  <th scope="col">Item</th>
                  <th scope="col" class="num">Billable</th>
                  <th scope="col" class="num">Unit price</th>
                  <th scope="col" class="num">Amount</th>
                </tr>
              </thead>
              <tbody>
                {bill.line_items.map((l, i) => (
                  <tr key={i}>
                    <td>{l.description}</td>
                    <td class="num">
                      {formatNumber(l.billable_quantity, 3)} {l.unit}
                    </td>
                    <td class="num">{formatUnitPrice(l.unit_price, bill.currency)}</td>
                    <td class="num">{formatMoney(l.amount, bill.currency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>This bill has no line items (no usage in the period).</Empty>
          )}
          {bill.status !== 'draft' && <p class="help">Final bills never change; corrections are credit notes (POST /api/v1/bills/{'{id}'}/credit-notes).</p>}
          <p class="help">Times in {timezone}. Viewed {formatDateTime(ctx.now().toISOString(), timezone)}.</p>
        </div>
      )}
    />
  );
}
