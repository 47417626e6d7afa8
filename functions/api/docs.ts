/** A small self-contained docs page rendered from the OpenAPI document (no CDN, works offline). */

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  'x-roles'?: string[];
  parameters?: { name: string; in: string; required?: boolean; description?: string }[];
}

export function docsPage(openapi: Record<string, unknown>): string {
  const paths = (openapi.paths ?? {}) as Record<string, Record<string, Operation>>;
  const byTag = new Map<string, string[]>();
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const tag = op.tags?.[0] ?? 'other';
      const params = (op.parameters ?? []).map((p) => `<code>${escape(p.name)}</code> (${p.in}${p.required ? ', required' : ''})`).join(', ');
      const roles = op['x-roles'] ? `roles: ${op['x-roles'].map(escape).join(', ')}` : 'public';
      const row = `<tr><td><b>${method.toUpperCase()}</b></td><td><code>/api/v1${escape(path)}</code></td><td>${escape(op.summary ?? '')}${op.description ? `<br><small>${escape(op.description)}</small>` : ''}${params ? `<br><small>parameters: ${params}</small>` : ''}</td><td><small>${roles}</small></td></tr>`;
      byTag.set(tag, [...(byTag.get(tag) ?? []), row]);
    }
  }
  const sections = [...byTag].map(([tag, rows]) => `<h2 id="${escape(tag)}">${escape(tag)}</h2><table><thead><tr><th>Method</th><th>Path</th><th>What</th><th>Who</th></tr></thead><tbody>${rows.join('')}</tbody></table>`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>FaaS Billing API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#111}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}code{background:#f3f3f3;padding:0 .2rem}</style></head>
<body><h1>FaaS Billing API</h1><p>Machine-readable: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a> (OpenAPI 3.1). Authenticate with <code>Authorization: Bearer fbk_…</code> or <code>X-API-Key</code>. Errors are <code>application/problem+json</code>.</p>
${sections.join('\n')}</body></html>`;
}
