import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // one file at a time: the end-to-end files start up to five nodes each, and two such files
    // at once on a 2-core machine starve each other's gossip
    fileParallelism: false
  }
})
