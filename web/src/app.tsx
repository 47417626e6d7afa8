/**
 * The shell: the login screen (the key is kept in sessionStorage only), the navigation, the
 * tenant picker for admin keys, and the hash router. Admin screens are not offered to tenant keys
 * (and the API refuses their calls anyway).
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api, ApiProblem, problemText, type Tenant } from './api.ts';
import { ErrorState, Loading } from './components.tsx';
import type { Ctx, Role } from './context.ts';
import { adminScreens, clearKey, keyPattern, loadKey, parseRoute, routeHash, saveKey, type Screen } from './state.ts';
import { FunctionsScreen } from './screens/functions.tsx';
import { InvoicesScreen } from './screens/invoices.tsx';
import { OperatorsScreen } from './screens/operators.tsx';
import { OverviewScreen } from './screens/overview.tsx';
import { PlansScreen } from './screens/plans.tsx';
import { UsageScreen } from './screens/usage.tsx';

const titles: Record<Screen, string> = {
  overview: 'Overview',
  usage: 'Usage explorer',
  invoices: 'Invoices',
  plans: 'Plans',
  functions: 'Functions',
  operators: 'Operators',
};

interface Session {
  api: Api;
  role: Role;
  tenants: Tenant[];
}

/** Checks a key against the API: it must list tenants; it is an admin key if it may list API keys. */
async function openSession(key: string): Promise<Session> {
  const api = new Api(key);
  const tenants = (await api.get<{ items: Tenant[] }>('/tenants', { limit: 500 })).items;
  let role: Role = 'admin';
  try {
    await api.get('/api-keys');
  } catch (err) {
    if (err instanceof ApiProblem && err.status === 403) role = 'tenant';
    else throw err;
  }
  if (role === 'admin' && tenants.length > 1) {
    // Start on the tenant of the newest bill (the demo's, on a fresh system) rather than the first created.
    const newest = (await api.get<{ items: { tenant_id: string }[] }>('/bills', { limit: 1 })).items[0];
    const index = tenants.findIndex((t) => t.id === newest?.tenant_id);
    if (index > 0) tenants.unshift(...tenants.splice(index, 1));
  }
  return { api, role, tenants };
}

/** The login screen: a key of the right shape that the API accepts opens the session. */
function Login({ onSession, reason }: { onSession: (session: Session, key: string) => void; reason: string | null }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(reason);
  const [busy, setBusy] = useState(false);
  const submit = (event: Event): void => {
    event.preventDefault();
    const typed = key.trim();
    if (!keyPattern.test(typed)) {
      setError('That does not look like an API key: keys start with fbk_ (npm start prints the admin key; an admin creates tenant keys under Operators).');
      return;
    }
    setBusy(true);
    openSession(typed).then(
      (session) => onSession(session, typed),
      (err: unknown) => {
        setBusy(false);
        setError(problemText(err));
      },
    );
  };
  return (
    <main class="login">
      <h1>FaaS Billing</h1>
      <form onSubmit={submit} aria-describedby="login-help">
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autoComplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        <p id="login-help" class="help">
          Paste an admin or tenant key. It is kept in this tab only (session storage) and sent to this server's API.
        </p>
        {error && (
          <p class="state error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

function useHashRoute() {
  const [hash, setHash] = useState(() => window.location.hash);
  useEffect(() => {
    const onChange = (): void => setHash(window.location.hash);
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return parseRoute(hash);
}

/** The whole dashboard: login until a key works, then the screens. */
export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => loadKey(sessionStorage) !== null);
  const [loginReason, setLoginReason] = useState<string | null>(null);
  const [tenantId, setTenantId] = useState<string | null>(null);
  const route = useHashRoute();

  useEffect(() => {
    const stored = loadKey(sessionStorage);
    if (!stored) return;
    openSession(stored).then(setSession, (err: unknown) => {
      clearKey(sessionStorage);
      setLoginReason(`Your saved key no longer works: ${problemText(err)}`);
      setRestoring(false);
    });
  }, []);

  const ctx = useMemo<Ctx | null>(() => {
    if (!session) return null;
    const tenant = session.tenants.find((t) => t.id === (route.params.tenant ?? tenantId)) ?? session.tenants[0] ?? null;
    const reloadTenants = (): void => {
      session.api.get<{ items: Tenant[] }>('/tenants', { limit: 500 }).then(
        (r) => setSession({ ...session, tenants: r.items }),
        () => undefined,
      );
    };
    return { api: session.api, role: session.role, tenants: session.tenants, tenant, now: () => new Date(), reloadTenants };
  }, [session, tenantId, route.params.tenant]);

  // A new screen moves the focus to its content (keyboard and screen-reader users start there).
  useEffect(() => {
    if (session) document.getElementById('main')?.focus();
  }, [route.screen, session]);

  if (!session || !ctx) {
    if (restoring && !loginReason) return <Loading what="your session" />;
    return (
      <Login
        reason={loginReason}
        onSession={(s, key) => {
          saveKey(sessionStorage, key);
          setSession(s);
        }}
      />
    );
  }

  const logout = (): void => {
    clearKey(sessionStorage);
    setSession(null);
    setRestoring(false);
    setLoginReason(null);
  };
  const visible = (Object.keys(titles) as Screen[]).filter((s) => ctx.role === 'admin' || !adminScreens.includes(s));
  const forbidden = ctx.role !== 'admin' && adminScreens.includes(route.screen);
  const Current = { overview: OverviewScreen, usage: UsageScreen, invoices: InvoicesScreen, plans: PlansScreen, functions: FunctionsScreen, operators: OperatorsScreen }[route.screen];

  return (
    <div class="shell">
      {/* The app routes by hash, so the skip link moves the focus itself instead of going to #main. */}
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header>
        <span class="brand">FaaS Billing</span>
        <nav aria-label="Screens">
          <ul>
            {visible.map((s) => (
              <li key={s}>
                <a href={routeHash(s)} aria-current={route.screen === s ? 'page' : undefined}>
                  {titles[s]}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          {ctx.tenants.length > 1 ? (
            <label>
              Tenant{' '}
              <select value={ctx.tenant?.id ?? ''} onChange={(e) => setTenantId(e.currentTarget.value)} aria-label="Tenant">
                {ctx.tenants.map((t) => (
                  <option key={t.id} value={t.id}>
                    {t.name} ({t.currency}, {t.timezone})
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <span>{ctx.tenant ? `${ctx.tenant.name} (${ctx.tenant.currency}, ${ctx.tenant.timezone})` : 'no tenants yet'}</span>
          )}
          <span class="role" data-testid="role">
            {ctx.role} key
          </span>
          <button type="button" onClick={logout}>
            Log out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <h1>{titles[route.screen]}</h1>
        {forbidden ? (
          <ErrorState error={new Error(`${titles[route.screen]} is for operators: sign in with an admin key to open it.`)} />
        ) : (
          <Current key={`${route.screen}-${ctx.tenant?.id ?? ''}`} ctx={ctx} params={route.params} />
        )}
      </main>
    </div>
  );
}
