/**
 * The data model shared by the node, the control API and the CLI, by concern: the job model
 * (job-types.ts), what clients send and receive about jobs (api-types.ts), the node and the
 * cluster (peer-types.ts). Imported everywhere as one module.
 * These modules must stay dependency-free: client commands import them and must start fast.
 */
export * from './job-types.js'
export * from './api-types.js'
export * from './peer-types.js'
