import { Router, type Request } from 'express';
import { z } from 'zod';
import { connectionDefaultRole, listConnections } from '../connections/connections.service.js';
import {
  createRoleMapping,
  deleteRoleMapping,
  listRoleMappings,
  ROLE_NAME,
  type RoleMappingView,
} from '../directory/role-mappings.service.js';
import { roleInputs, rolesFromGroups, type RoleGroup, type RoleRule } from '../directory/roles.service.js';
import { findUser, findUsersByEmail } from '../directory/users.service.js';
import { BadRequestError } from '../errors.js';
import { parseForm, portalTenant, sessionOf, uuidParam } from './forms.js';
import { html, type Html } from './html.js';
import { csrfField, sendPortalPage } from './layout.js';
import { portalAuditContext } from './portal-sessions.js';
import { connectionDeps } from './sso.pages.js';
import type { PortalDeps } from './portal.router.js';

/**
 * Role mappings (intent `sso`: a mapping decides what a sign-in grants, as
 * the connection's default role does): group → role, added and removed
 * through directory/role-mappings.service.ts with the admin API's validation
 * and audit, and a preview: a person's groups (SCIM and sign-in), the roles
 * they have now, and those they would have with one mapping added or
 * removed, computed by the rule sign-in runs (roles.service.ts
 * rolesFromGroups) over the proposed mappings. A preview writes nothing.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// The admin API's limits (admin/role-mappings.router.ts): a group value of 1–256 characters, a ROLE_NAME role.
const groupValue = z.string().trim().min(1).max(256);
const role = z
  .string()
  .regex(ROLE_NAME, 'a lower-case name: letters, digits, _ : . - (at most 64 characters)');
const attribute = z.enum(['display_name', 'external_id']);
const addForm = z.object({ group_attribute: attribute, group_value: groupValue, role });

const blank = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const previewQuery = z.object({
  user: z.preprocess(blank, z.string().trim().max(320).optional()),
  user_id: z.preprocess(blank, z.string().regex(UUID, 'not a user id').optional()),
  connection: z.preprocess(blank, z.string().regex(UUID, 'not a connection id').optional()),
  add_attribute: z.preprocess(blank, attribute.optional()),
  add_group: z.preprocess(blank, groupValue.optional()),
  add_role: z.preprocess(blank, role.optional()),
  remove: z.preprocess(blank, z.string().regex(UUID, 'not a mapping id').optional()),
});
type Preview = z.infer<typeof previewQuery>;

function parsePreview(req: Request): Preview {
  const result = previewQuery.safeParse(req.query);
  if (!result.success)
    throw new BadRequestError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  if ((result.data.add_group === undefined) !== (result.data.add_role === undefined))
    throw new BadRequestError('a proposed mapping needs both a group and a role');
  return result.data;
}

const groupLabel = (g: RoleMappingView['group']) =>
  'display_name' in g ? `group named ${g.display_name}` : `group with external id ${g.external_id}`;

export function roleRoutes(deps: PortalDeps): Router {
  const router = Router();
  const base = '/portal/t/:tenantId/roles';
  const cdeps = connectionDeps(deps);

  router.get(base, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const p = parsePreview(req);
    const session = sessionOf(res);
    const mappings = await listRoleMappings(deps.db, tenantId, { limit: 200, offset: 0 });
    const connections = (await listConnections(cdeps, tenantId, { limit: 100, offset: 0 })).data;
    const path = `/portal/t/${tenantId}/roles`;
    sendPortalPage(res, {
      title: 'Role mappings',
      session,
      tenantId,
      body: html`<p>
          People get the roles mapped from their groups (pushed by SCIM or sent by your identity provider at
          sign-in); when none maps, the default role of the connection they signed in through.
        </p>
        ${mappingsTable(path, mappings.data, session)}
        <form method="post" action="${path}" class="card" id="add-mapping">
          ${csrfField(session)}
          <h2>Add a mapping</h2>
          <label for="group_attribute">Match the group by</label>
          <select id="group_attribute" name="group_attribute">
            <option value="display_name">its name (any case)</option>
            <option value="external_id">its external id (exactly)</option>
          </select>
          <label for="group_value">Group</label>
          <input type="text" id="group_value" name="group_value" required />
          <label for="role">Role</label>
          <input type="text" id="role" name="role" required placeholder="admin" />
          <button type="submit">Add mapping</button>
        </form>
        <h2>Preview the effect on a person</h2>
        <form method="get" action="${path}" class="card" id="preview-form">
          <label for="p-user">Email or userName</label>
          <input type="text" id="p-user" name="user" value="${p.user ?? ''}" required />
          <label for="p-connection">Signing in through</label>
          <select id="p-connection" name="connection">
            <option value="">(no connection: no default role)</option>
            ${connections.map(
              (c) =>
                html`<option value="${c.id}" ${c.id === p.connection ? html`selected` : ''}>
                  ${c.name} (default role ${c.default_role})
                </option>`,
            )}
          </select>
          <fieldset>
            <legend>Proposed change (optional)</legend>
            <label for="p-add-attribute">Add: match the group by</label>
            <select id="p-add-attribute" name="add_attribute">
              <option value="display_name">its name</option>
              <option value="external_id" ${p.add_attribute === 'external_id' ? html`selected` : ''}>
                its external id
              </option>
            </select>
            <label for="p-add-group">Add: group</label>
            <input type="text" id="p-add-group" name="add_group" value="${p.add_group ?? ''}" />
            <label for="p-add-role">Add: role</label>
            <input type="text" id="p-add-role" name="add_role" value="${p.add_role ?? ''}" />
            <label for="p-remove">…or remove a mapping</label>
            <select id="p-remove" name="remove">
              <option value="">(none)</option>
              ${mappings.data.map(
                (m) =>
                  html`<option value="${m.id}" ${m.id === p.remove ? html`selected` : ''}>
                    ${groupLabel(m.group)} → ${m.role}
                  </option>`,
              )}
            </select>
          </fieldset>
          <button type="submit">Preview</button>
        </form>
        ${p.user || p.user_id ? await preview(deps, tenantId, p) : ''}`,
    });
  });

  router.post(base, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const form = parseForm(addForm, req);
    await createRoleMapping(
      deps.db,
      tenantId,
      {
        group:
          form.group_attribute === 'display_name'
            ? { display_name: form.group_value }
            : { external_id: form.group_value },
        role: form.role,
      },
      portalAuditContext(sessionOf(res), req),
    );
    res.redirect(303, `/portal/t/${tenantId}/roles`);
  });

  router.post(`${base}/:mappingId/delete`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    await deleteRoleMapping(
      deps.db,
      tenantId,
      uuidParam(req.params.mappingId, 'Role mapping'),
      portalAuditContext(sessionOf(res), req),
    );
    res.redirect(303, `/portal/t/${tenantId}/roles`);
  });

  return router;
}

function mappingsTable(path: string, mappings: RoleMappingView[], session: Parameters<typeof csrfField>[0]) {
  if (mappings.length === 0) return html`<p class="muted" id="no-mappings">No mappings yet.</p>`;
  return html`<table id="role-mappings">
    <thead>
      <tr>
        <th>Group</th>
        <th>Role</th>
        <th></th>
      </tr>
    </thead>
    <tbody>
      ${mappings.map(
        (m) =>
          html`<tr>
            <td>${groupLabel(m.group)}</td>
            <td>${m.role}</td>
            <td>
              <form method="post" action="${path}/${m.id}/delete">
                ${csrfField(session)}<button class="secondary" type="submit">Remove</button>
              </form>
            </td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** The person (found by email or userName in this tenant), their groups, and their roles now and as proposed. */
async function preview(deps: PortalDeps, tenantId: string, p: Preview): Promise<Html> {
  const found = await deps.db.withTenant(tenantId, async (em) => {
    const users = p.user_id
      ? [await findUser(em, p.user_id)].filter((u) => u !== null)
      : (await findUsersByEmail(em, p.user ?? '')).filter((u) => u.status !== 'deleted');
    const user = users.length === 1 ? users[0] : undefined;
    if (!user) return { users, person: null };
    const inputs = await roleInputs(em, user.id);
    const fallback = p.connection ? await connectionDefaultRole(em, p.connection) : null;
    return { users, person: { user, ...inputs, fallback } };
  });
  if (!found.person) {
    if (found.users.length === 0)
      return html`<div class="card" id="preview-result"><p>No one with that email or userName.</p></div>`;
    return html`<div class="card" id="preview-result">
      <p>More than one person matches; pick one:</p>
      <ul>
        ${found.users.map(
          (u) =>
            html`<li>
              <a href="?${previewQueryString({ ...p, user: undefined, user_id: u.id })}"
                >${u.userName} (${u.email ?? 'no email'})</a
              >
            </li>`,
        )}
      </ul>
    </div>`;
  }
  const { user, groups, rules, fallback } = found.person;
  const proposed: RoleRule[] = rules.filter((r) => r.id === undefined || r.id !== p.remove);
  if (p.add_group !== undefined && p.add_role !== undefined)
    proposed.push({
      groupAttribute: p.add_attribute ?? 'display_name',
      groupValue: p.add_group,
      role: p.add_role,
    });
  const now = rolesFromGroups(groups, rules, fallback);
  const then = rolesFromGroups(groups, proposed, fallback);
  const changing = p.remove !== undefined || p.add_group !== undefined;
  return html`<div class="card" id="preview-result">
    <p><strong>${user.userName}</strong> ${user.email ? `(${user.email})` : ''}</p>
    <h2>Groups</h2>
    ${groupList(groups)}
    <p>Roles now: <strong id="roles-now">${now.join(', ') || 'none'}</strong></p>
    ${
      changing
        ? html`<p>
            With the proposed change: <strong id="roles-proposed">${then.join(', ') || 'none'}</strong>
            ${rolesDiff(now, then)}
          </p>`
        : ''
    }
  </div>`;
}

function groupList(groups: RoleGroup[]): Html {
  if (groups.length === 0) return html`<p class="muted" id="preview-groups">In no group.</p>`;
  return html`<ul id="preview-groups">
    ${groups.map(
      (g) =>
        html`<li>
          ${g.displayName}
          ${g.externalId ? html`<span class="muted">(external id ${g.externalId})</span>` : ''}
          <span class="muted">— ${g.source === 'scim' ? 'from SCIM' : 'from sign-in'}</span>
        </li>`,
    )}
  </ul>`;
}

function rolesDiff(now: string[], then: string[]): Html | '' {
  const gained = then.filter((r) => !now.includes(r));
  const lost = now.filter((r) => !then.includes(r));
  if (!gained.length && !lost.length) return html`<span class="muted">(no change)</span>`;
  return html`${gained.length ? html`<span class="ok">gains ${gained.join(', ')}</span> ` : ''}${lost.length ? html`<span class="bad">loses ${lost.join(', ')}</span>` : ''}`;
}

function previewQueryString(p: Preview): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) if (typeof v === 'string') q.set(k, v);
  return q.toString();
}
