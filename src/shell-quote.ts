/** A command line as a shell would read it back. */
export function shellQuote (args: string[]): string {
  return args.map(a => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`).join(' ')
}
