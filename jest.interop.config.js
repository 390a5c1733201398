// The multi-node test (test/interop, issue 11): three built servers behind Debian's haproxy on a PostgreSQL
// cluster of their own. `npm run test:interop` builds first; `npm test` leaves this folder out (jest.config.js).
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
