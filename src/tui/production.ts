/**
 * Imported first by main.ts: React picks its build from NODE_ENV when it is first loaded, and its
 * development build (checks, component stacks, async task tracking) took most of each frame of the
 * dashboard. Kept when set, e.g. NODE_ENV=development to debug the dashboard.
 */
process.env.NODE_ENV ??= 'production'
