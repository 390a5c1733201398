// Plain JS: shared by jest's global setup (which jest loads without its
// transform) and by the TypeScript test files.

/** Environment variables through which global setup hands the cluster to test files. */
export const TEST_ENV = {
  adminUrl: 'GATEHOUSE_TEST_ADMIN_URL',
  ownerUrl: 'GATEHOUSE_TEST_OWNER_URL',
  appUrl: 'GATEHOUSE_TEST_APP_URL',
};

export const TEMPLATE_DATABASE = 'gatehouse_test_template';

/** @param {keyof typeof TEST_ENV} name */
export function testEnv(name) {
  const value = process.env[TEST_ENV[name]];
  if (!value) throw new Error(`${TEST_ENV[name]} is not set: run the tests through jest (global setup)`);
  return value;
}
