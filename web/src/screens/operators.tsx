/** Operators (admin): tenants, API keys (create — shown once — and revoke), the audit log and dead letters. */
import { useState } from 'preact/hooks';
import { problemText, type Tenant } from '../api.ts';
import { Async, Empty, TenantSelect } from '../components.tsx';
import type { Ctx, ScreenProps } from '../context.ts';
import { formatDateTime } from '../format.ts';
import { useLoad } from '../hooks.ts';

interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  role: string;
  tenant_id: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

interface AuditRow {
  id: string;
  at: string;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string | null;
}

interface DeadLetter {
  id: string;
  received_at: string;
  stage: string;
  reason: string;
  detail: string | null;
  source: string | null;
  event_id: string | null;
}

/** Operators see times in UTC (tenants span zones). */
const utc = 'UTC';

/** The Operators screen (admin keys only). */
export function OperatorsScreen({ ctx }: ScreenProps) {
  // Bumped by every change made here, so the audit log shows it.
  const [changes, setChanges] = useState(0);
  const changed = (): void => setChanges((n) => n + 1);
  return (
    <div class="operators">
      <TenantsTable tenants={ctx.tenants} />
      <CreateTenant ctx={ctx} onChange={changed} />
      <Keys ctx={ctx} onChange={changed} />
      <Audit ctx={ctx} changes={changes} />
      <DeadLetters ctx={ctx} />
    </div>
  );
}

function TenantsTable({ tenants }: { tenants: Tenant[] }) {
  return (
    <section aria-labelledby="tenants-title">
      <h2 id="tenants-title">Tenants</h2>
      {tenants.length ? (
        <table data-testid="tenants">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Slug</th>
              <th scope="col">Currency</th>
              <th scope="col">Time zone</th>
            </tr>
          </thead>
          <tbody>
            {tenants.map((t) => (
              <tr key={t.id}>
                <td>{t.name}</td>
                <td>{t.slug}</td>
                <td>{t.currency}</td>
                <td>{t.timezone}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <Empty>No tenants. Create one with POST /api/v1/tenants.</Empty>
      )}
    </section>
  );
}

function CreateTenant({ ctx, onChange }: { ctx: Ctx; onChange: () => void }) {
  const [fields, setFields] = useState({ name: '', slug: '', currency: 'USD', timezone: 'UTC' });
  const [message, setMessage] = useState<string | null>(null);
  const create = (event: Event): void => {
    event.preventDefault();
    setMessage('Creating…');
    ctx.api.post<Tenant>('/tenants', fields).then(
      (tenant) => {
        setMessage(`Created ${tenant.name}: its usage events carry tenant_id "${tenant.slug}".`);
        setFields({ name: '', slug: '', currency: fields.currency, timezone: fields.timezone });
        ctx.reloadTenants();
        onChange();
      },
      (err: unknown) => setMessage(problemText(err)),
    );
  };
  const field = (name: keyof typeof fields, label: string, hint: string) => (
    <label>
      {label}
      <input value={fields[name]} onInput={(e) => setFields({ ...fields, [name]: e.currentTarget.value })} placeholder={hint} required data-testid={`tenant-${name}`} />
    </label>
  );
  return (
    <form class="inline" onSubmit={create} aria-label="Create a tenant">
      {field('name', 'Name', 'Acme Corp')}
      {field('slug', 'Slug (tenant_id in events)', 'acme')}
      {field('currency', 'Currency', 'USD')}
      {field('timezone', 'Time zone (IANA)', 'Europe/Berlin')}
      <button type="submit">Create tenant</button>
      {message && (
        <span role="status" class="help">
          {message}
        </span>
      )}
    </form>
  );
}

function Keys({ ctx, onChange }: { ctx: Ctx; onChange: () => void }) {
  const [keys, reload] = useLoad(() => ctx.api.get<{ items: ApiKey[] }>('/api-keys').then((r) => r.items), []);
  const [name, setName] = useState('');
  const [role, setRole] = useState('tenant');
  const [tenantId, setTenantId] = useState(ctx.tenant?.id ?? '');
  const [created, setCreated] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const tenantName = (id: string | null): string => (id ? (ctx.tenants.find((t) => t.id === id)?.name ?? id) : '—');
  const create = (event: Event): void => {
    event.preventDefault();
    setMessage(null);
    ctx.api.post<{ key: string }>('/api-keys', { name, role, ...(role === 'admin' ? {} : { tenant_id: tenantId }) }).then(
      (r) => {
        setCreated(r.key);
        setName('');
        reload();
        onChange();
      },
      (err: unknown) => setMessage(problemText(err)),
    );
  };
  const revoke = (key: ApiKey): void => {
    if (!window.confirm(`Revoke ${key.name} (${key.prefix})? Calls with it fail from now on.`)) return;
    ctx.api.delete(`/api-keys/${key.id}`).then(
      () => {
        reload();
        onChange();
      },
      (err: unknown) => setMessage(problemText(err)),
    );
  };
  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      <form class="inline" onSubmit={create} aria-label="Create an API key">
        <label>
          Name
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required data-testid="key-name" />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            <option value="tenant">tenant (reads its own data)</option>
            <option value="ingest">ingest (sends usage)</option>
            <option value="admin">admin</option>
          </select>
        </label>
        {role !== 'admin' && (
          <TenantSelect tenants={ctx.tenants} value={tenantId} onChange={setTenantId} testId="key-tenant" />
        )}
        <button type="submit">Create key</button>
      </form>
      {created && (
        <div class="state created" role="status">
          <p>Copy this key now: it is shown once and stored only as a hash.</p>
          <code data-testid="new-key">{created}</code>{' '}
          <button type="button" onClick={() => setCreated(null)}>
            I have copied it
          </button>
        </div>
      )}
      {message && (
        <p class="state error" role="alert">
          {message}
        </p>
      )}
      <Async
        loaded={keys}
        what="API keys"
        retry={reload}
        ready={(items) => (
          <table data-testid="keys">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Role</th>
                <th scope="col">Tenant</th>
                <th scope="col">Last used (UTC)</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {items.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td>
                    <code>{k.prefix}</code>
                  </td>
                  <td>{k.role}</td>
                  <td>{tenantName(k.tenant_id)}</td>
                  <td>{k.last_used_at ? formatDateTime(k.last_used_at, utc) : 'never'}</td>
                  <td>
                    {k.revoked_at ? (
                      `revoked ${formatDateTime(k.revoked_at, utc)}`
                    ) : (
                      <button type="button" onClick={() => revoke(k)} aria-label={`Revoke ${k.name}`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      />
    </section>
  );
}

function Audit({ ctx, changes }: { ctx: Ctx; changes: number }) {
  const [rows, reload] = useLoad(() => ctx.api.get<{ items: AuditRow[] }>('/audit-log', { limit: 50 }).then((r) => r.items), [changes]);
  return (
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log (latest 50)</h2>
      <Async
        loaded={rows}
        what="the audit log"
        retry={reload}
        ready={(items) =>
          items.length ? (
            <table data-testid="audit">
              <thead>
                <tr>
                  <th scope="col">When (UTC)</th>
                  <th scope="col">Who</th>
                  <th scope="col">Action</th>
                  <th scope="col">On</th>
                </tr>
              </thead>
              <tbody>
                {items.map((a) => (
                  <tr key={a.id}>
                    <td>{formatDateTime(a.at, utc)}</td>
                    <td>{a.actor}</td>
                    <td>{a.action}</td>
                    <td>
                      {a.entity_type} {a.entity_id ?? ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>Nothing audited yet: every change made through the API is listed here.</Empty>
          )
        }
      />
    </section>
  );
}

function DeadLetters({ ctx }: { ctx: Ctx }) {
  const [rows, reload] = useLoad(() => ctx.api.get<{ items: DeadLetter[] }>('/dead-letters', { limit: 50 }).then((r) => r.items), []);
  return (
    <section aria-labelledby="dead-title">
      <h2 id="dead-title">Dead letters (latest 50)</h2>
      <Async
        loaded={rows}
        what="dead letters"
        retry={reload}
        ready={(items) =>
          items.length ? (
            <table data-testid="dead-letters">
              <thead>
                <tr>
                  <th scope="col">Received (UTC)</th>
                  <th scope="col">Stage</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Event</th>
                  <th scope="col">Detail</th>
                </tr>
              </thead>
              <tbody>
                {items.map((d) => (
                  <tr key={d.id}>
                    <td>{formatDateTime(d.received_at, utc)}</td>
                    <td>{d.stage}</td>
                    <td>{d.reason}</td>
                    <td>
                      {d.source ?? ''} {d.event_id ?? ''}
                    </td>
                    <td>{d.detail ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No dead letters: every event was stored and delivered.</Empty>
          )
        }
      />
    </section>
  );
}
