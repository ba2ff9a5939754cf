/** Two tiers: tests/unit (pure logic, fakes allowed) and tests/integration (real redis-server and the MongoDB-compatible server). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  testTimeout: 60_000,
  // Integration suites start their own servers; on two cores, one suite at a time is faster and steadier.
  maxWorkers: 1,
  // A suite needing a Debian package it cannot find is skipped (failed with CI=true); the run
  // ends with one line per such suite naming the package (tests/support/skipped-suites.js).
  globalSetup: '<rootDir>/tests/support/global-setup.js',
  globalTeardown: '<rootDir>/tests/support/global-teardown.js',
  // jose ships ES modules only; Jest's CommonJS runtime needs it compiled like our own code.
  transform: { '^.+\\.(ts|js)$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
};
