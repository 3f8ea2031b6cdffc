/** The `meshq` executable (bin/meshq.js imports the compiled form of this file). */
import { run } from './cli.js'

// A closed pipe on stdout (`meshq logs ID | head`) ends the command quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw err
})

process.exitCode = await run(process.argv.slice(2))
