import type { Scenario } from './harness.js';
import { withTenantScenario } from './scenarios/with-tenant.js';

/** Every benchmark scenario; `npm run bench -- <name>` runs the ones whose name contains <name>. */
export const SCENARIOS: Scenario[] = [withTenantScenario];
