import SCIMMY from 'scimmy';
import { AUTHENTICATION_SCHEME } from './scim-discovery.js';
import { ScimGroups } from './scim-groups.resource.js';
import { ScimUsers } from './scim-users.resource.js';

let declared = false;

/**
 * scimmy's registry and configuration are process-global: declared once, with
 * handlers that take everything (tenant, database) from the per-request
 * context, so every app instance in the process can share them.
 */
export function declareScimResources(): void {
  if (declared) return;
  SCIMMY.Resources.declare(ScimUsers, {
    name: 'User',
    extensions: [{ schema: SCIMMY.Schemas.EnterpriseUser, required: false }],
  });
  SCIMMY.Resources.declare(ScimGroups, { name: 'Group' });
  declared = true;
}

/**
 * scimmy-routers' constructor switches on bulk and sort and appends an
 * authentication scheme each time; put the configuration back to what we serve.
 */
export function resetScimConfig(maxPageSize: number): void {
  SCIMMY.Config.set({ authenticationSchemes: [] });
  SCIMMY.Config.set({
    patch: true,
    bulk: false,
    sort: true,
    changePassword: false,
    etag: true,
    filter: { supported: true, maxResults: maxPageSize },
    authenticationSchemes: [AUTHENTICATION_SCHEME],
  });
}
