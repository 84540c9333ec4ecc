/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Redis has no Windows build, so the store tests (against a real redis-server) cannot run there.
  testPathIgnorePatterns: ['/node_modules/', ...(process.platform === 'win32' ? ['/test/store\\.test\\.ts$'] : [])],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/tsconfig.json' }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
