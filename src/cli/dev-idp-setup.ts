import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError, type AdminClient } from './admin-client.js';
import type { DevIdp } from './dev-idp.js';

/**
 * `gatehouse dev-idp --setup`: what an operator would do for a first
 * customer, done through the admin API against the development IdP, and
 * idempotent (each step finds what an earlier run made before creating it):
 * the `demo` tenant, `example.test` verified manually, a SAML and an OIDC
 * connection to the dev IdP, role mappings for its groups, a SCIM token and
 * the example app's client. Secrets shown once by the API are kept in
 * `<dir>/setup.json` (mode 0600) so a second run can answer them again.
 */
export const DEMO = {
  slug: 'demo',
  name: 'Demo Inc',
  domain: 'example.test',
  samlName: 'Dev IdP (SAML)',
  oidcName: 'Dev IdP (OIDC)',
  appName: 'Example app',
  appUrl: 'http://localhost:3000',
  scimDescription: 'dev-idp provisioning',
  roles: [
    { group: 'Admins', role: 'admin' },
    { group: 'Engineering', role: 'engineer' },
    { group: 'Sales', role: 'sales' },
  ],
} as const;

export interface DevIdpSetup {
  tenant_id: string;
  domain: string;
  saml_connection_id: string;
  oidc_connection_id: string;
  scim: { base_url: string; token: string; token_id: string };
  app: { issuer: string; client_id: string; client_secret: string; redirect_uri: string };
}

interface Page<T> {
  data: T[];
  total?: number;
}
interface Kept {
  scim?: { token_id: string; token: string; base_url: string };
  app?: { client_id: string; client_secret: string };
}

async function all<T>(api: AdminClient, urlPath: string): Promise<T[]> {
  const out: T[] = [];
  for (let offset = 0; ; offset += 100) {
    const sep = urlPath.includes('?') ? '&' : '?';
    const page = await api.request<Page<T>>('GET', `${urlPath}${sep}limit=100&offset=${offset}`);
    out.push(...page.data);
    if (page.data.length < 100) return out;
  }
}

async function readKept(file: string): Promise<Kept> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Kept;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
}

export async function setupDevIdp(
  api: AdminClient,
  idp: DevIdp,
  dir: string,
  appUrl: string = DEMO.appUrl,
): Promise<DevIdpSetup> {
  const keptFile = path.join(dir, 'setup.json');
  const kept = await readKept(keptFile);

  const tenants = await all<{ id: string; slug: string }>(api, '/tenants');
  const tenant =
    tenants.find((t) => t.slug === DEMO.slug) ??
    (await api.request<{ id: string }>('POST', '/tenants', { slug: DEMO.slug, name: DEMO.name }));
  const base = `/tenants/${tenant.id}`;

  const domains = await all<{ id: string; domain: string; status: string }>(api, `${base}/domains`);
  const domain =
    domains.find((d) => d.domain === DEMO.domain) ??
    (await api.request<{ id: string; status: string }>('POST', `${base}/domains`, { domain: DEMO.domain }));
  if (domain.status !== 'verified') {
    // .test is reserved (RFC 6761 §6.2): no DNS answers for it, so the operator's word.
    await api.request('POST', `${base}/domains/${domain.id}/verify`, {
      method: 'manual',
      reason: 'dev-idp --setup: example.test is a reserved name (RFC 6761), used for local development only',
    });
  }

  const connections = await all<{ id: string; name: string; type: string }>(api, `${base}/connections`);
  const samlBody = { metadata_xml: idp.saml.metadata, status: 'active' };
  const samlFound = connections.find((c) => c.type === 'saml' && c.name === DEMO.samlName);
  const saml = samlFound
    ? await api.request<{ id: string }>('PATCH', `${base}/connections/${samlFound.id}`, samlBody)
    : await api.request<{ id: string }>('POST', `${base}/connections`, {
        type: 'saml',
        name: DEMO.samlName,
        ...samlBody,
      });
  const oidcBody = {
    issuer: idp.oidc.issuer,
    client_id: idp.oidc.clientId,
    client_secret: idp.oidc.clientSecret,
    scopes: ['openid', 'email', 'profile'],
    status: 'active',
  };
  const oidcFound = connections.find((c) => c.type === 'oidc' && c.name === DEMO.oidcName);
  const oidc = await (
    oidcFound
      ? api.request<{ id: string }>('PATCH', `${base}/connections/${oidcFound.id}`, oidcBody)
      : api.request<{ id: string }>('POST', `${base}/connections`, {
          type: 'oidc',
          name: DEMO.oidcName,
          ...oidcBody,
        })
  ).catch((error: unknown) => {
    // Gatehouse fetches the issuer's discovery itself, and refuses loopback unless told (security.md).
    throw new CliError(
      `${(error as Error).message}\nThe dev IdP is on loopback: start Gatehouse with GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS=true (development only).`,
    );
  });

  const mappings = await all<{ group: { display_name?: string }; role: string }>(
    api,
    `${base}/role-mappings`,
  );
  for (const { group, role } of DEMO.roles) {
    const mapped = mappings.some(
      (m) => m.role === role && m.group.display_name?.toLowerCase() === group.toLowerCase(),
    );
    if (!mapped) await api.request('POST', `${base}/role-mappings`, { group: { display_name: group }, role });
  }

  const tokens = await all<{ id: string }>(api, `${base}/scim-tokens`);
  let scim = kept.scim && tokens.some((t) => t.id === kept.scim?.token_id) ? kept.scim : undefined;
  if (!scim) {
    const issued = await api.request<{ id: string; token: string; scim_base_url: string }>(
      'POST',
      `${base}/scim-tokens`,
      { description: DEMO.scimDescription },
    );
    scim = { token_id: issued.id, token: issued.token, base_url: issued.scim_base_url };
  }

  const redirectUri = `${appUrl}/callback`;
  const appBody = {
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [`${appUrl}/`],
    backchannel_logout_uri: `${appUrl}/backchannel-logout`,
  };
  const apps = await all<{ client_id: string; name: string }>(api, '/apps');
  const appFound = apps.find((a) => a.name === DEMO.appName);
  let app: { client_id: string; client_secret: string };
  if (!appFound) {
    const created = await api.request<{ client_id: string; client_secret: string }>('POST', '/apps', {
      name: DEMO.appName,
      ...appBody,
    });
    app = { client_id: created.client_id, client_secret: created.client_secret };
  } else {
    await api.request('PATCH', `/apps/${appFound.client_id}`, appBody);
    app =
      kept.app?.client_id === appFound.client_id
        ? kept.app
        : {
            client_id: appFound.client_id,
            client_secret: (
              await api.request<{ client_secret: string }>('POST', `/apps/${appFound.client_id}/secrets`, {
                overlap_seconds: 0,
              })
            ).client_secret,
          };
  }
  await writeFile(keptFile, `${JSON.stringify({ scim, app }, null, 2)}\n`, { mode: 0o600 });

  return {
    tenant_id: tenant.id,
    domain: DEMO.domain,
    saml_connection_id: saml.id,
    oidc_connection_id: oidc.id,
    scim,
    app: { issuer: api.baseUrl.replace(/\/+$/, ''), ...app, redirect_uri: redirectUri },
  };
}
