/** meshq's version; a test checks it matches package.json. */
export const VERSION = '0.1.0'
