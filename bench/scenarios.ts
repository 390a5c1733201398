import type { Scenario } from './harness.js';
import { withTenantScenario } from './scenarios/with-tenant.js';
import { samlAcsScenario } from './scenarios/saml-acs.js';
import { scimProvisioningScenario } from './scenarios/scim-provisioning.js';
import { scimFilterScenario } from './scenarios/scim-filter.js';
import { scimScaleScenario } from './scenarios/scim-scale.js';
import { soakScenario } from './scenarios/soak.js';
import { scimMemoryScenario } from './scenarios/scim-memory.js';
import { revocationUnderLoadScenario } from './scenarios/revocation-under-load.js';
import { scimLargeGroupsScenario } from './scenarios/scim-large-groups.js';
import { scimRevocationScenario } from './scenarios/scim-revocation.js';
import { tokensCodeExchangeScenario } from './scenarios/tokens-code-exchange.js';
import { tokensVerifyScenario } from './scenarios/tokens-verify.js';
import { databaseOutage } from './scenarios/database-outage.js';
import { clusterWorkersScenario } from './scenarios/cluster-workers.js';
import { auditSealerScenario } from './scenarios/audit-sealer.js';

/** Every benchmark scenario; `npm run bench -- <name>` runs the ones whose name contains <name>. */
export const SCENARIOS: Scenario[] = [
  withTenantScenario,
  samlAcsScenario,
  scimProvisioningScenario,
  scimFilterScenario,
  scimScaleScenario,
  soakScenario,
  scimMemoryScenario,
  revocationUnderLoadScenario,
  scimLargeGroupsScenario,
  scimRevocationScenario,
  tokensCodeExchangeScenario,
  tokensVerifyScenario,
  databaseOutage,
  clusterWorkersScenario,
  auditSealerScenario,
];
