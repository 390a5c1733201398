// The interop suites (test/interop): three built servers behind Debian's haproxy (issue 11), and a built server
// against Debian's SimpleSAMLphp driven by Chromium (issue 16), each on a PostgreSQL cluster of its own.
// `npm run test:interop` builds first; `npm test` leaves this folder out (jest.config.js).
import base from './jest.config.js';

/** @type {import('jest').Config} */
export default {
  ...base,
  testMatch: ['<rootDir>/test/interop/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  // The suite starts its own cluster (the runtime role is cluster-wide), so not the shared test database.
  globalSetup: undefined,
  globalTeardown: undefined,
  maxWorkers: 1,
  testTimeout: 120000,
};
