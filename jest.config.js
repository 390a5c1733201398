// ESM all the way: jose 6, openid-client 6 and oidc-provider 9 ship only ESM.
// Run with NODE_OPTIONS=--experimental-vm-modules (see package.json "test").
/** @type {import('jest').Config} */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  // NodeNext source imports './x.js'; jest resolves the .ts file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
  // The multi-node test needs haproxy and starts its own cluster: npm run test:interop (jest.interop.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/interop/'],
  // Drops the test peers' known per-instance notices (samlify, oidc-provider) so real output stands out.
  setupFiles: ['<rootDir>/test/support/quiet-libraries.js'],
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
  testTimeout: 60000,
  maxWorkers: 2,
};
