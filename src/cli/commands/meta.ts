/**
 * Commands about meshq itself, which need no node: `meshq version` and `meshq completion SHELL`.
 * The completion scripts are generated from the command registry and the flag specs the parser uses,
 * so they list exactly what `meshq COMMAND --help` lists.
 */
import { UsageError } from '../../errors.js'
import { PROTOCOL_VERSION, VERSION } from '../../version.js'
import { write } from '../../stream-write.js'
import type { Args, FlagSpec } from '../args.js'
import { HELP_FLAG, HOME_FLAG, JSON_FLAG, printJson, printLines, type Command } from '../context.js'

/** `meshq --version` (or `-V`) is `meshq version`. */
export const VERSION_FLAG: FlagSpec = { name: 'version', short: 'V', help: 'print the version' }

/** The flags `meshq COMMAND` accepts: its own, then the ones every command takes. */
export function parserFlags (command: Command): FlagSpec[] {
  return [...command.flags, HOME_FLAG, HELP_FLAG]
}

function noArguments (args: Args): void {
  if (args.positionals.length > 0) {
    throw new UsageError(`unexpected argument '${args.positionals[0]}' (see 'meshq ${args.command} --help')`)
  }
}

export const version: Command = {
  name: 'version',
  usage: 'version [--json]',
  summary: "Prints meshq's version (as meshq --version does).",
  description: [
    'With --json: {"version": meshq\'s version, "node": the version of the Node.js running it,',
    '"protocol": the version of the wire protocols (nodes of the same major version interoperate)}.'
  ].join('\n'),
  flags: [JSON_FLAG],
  async run (ctx, args) {
    noArguments(args)
    if (args.bool('json')) await printJson(ctx, { version: VERSION, node: process.versions.node, protocol: PROTOCOL_VERSION })
    else await printLines(ctx, [VERSION])
    return 0
  }
}

/** What a completion script knows of one command (`meshq help` included). */
interface CommandCompletion {
  name: string
  summary: string
  flags: FlagSpec[]
  /** The words its positional arguments can be, if they are a fixed set. */
  choices: string[]
  /** Its first positional starts a command line (`meshq sub CMD ARGS`): complete that as a command. */
  commandLine: boolean
}

interface CompletionSpec {
  globalFlags: FlagSpec[]
  commands: CommandCompletion[]
}

const SHELLS = {
  bash: bashScript,
  zsh: zshScript,
  fish: fishScript
} satisfies Record<string, (spec: CompletionSpec) => string>

type Shell = keyof typeof SHELLS

const isShell = (name: string): name is Shell => Object.hasOwn(SHELLS, name)

export const completion: Command = {
  name: 'completion',
  usage: 'completion bash|zsh|fish',
  summary: 'Prints a shell completion script for the commands and their flags.',
  description: [
    'bash: source <(meshq completion bash)            (add the line to ~/.bashrc)',
    'zsh:  source <(meshq completion zsh)             (after compinit, in ~/.zshrc),',
    '      or save the script as _meshq in a directory of $fpath',
    'fish: meshq completion fish > ~/.config/fish/completions/meshq.fish'
  ].join('\n'),
  flags: [],
  async run (ctx, args) {
    const shell = args.positionals[0]
    if (args.positionals.length !== 1 || !isShell(shell)) {
      throw new UsageError(`give one shell: ${Object.keys(SHELLS).join(', ')} (see 'meshq completion --help')`)
    }
    // Imported here, not at the top: the registry imports this module.
    const { COMMANDS } = await import('./index.js')
    await write(ctx.stdout, SHELLS[shell](completionSpec([...COMMANDS.values()])))
    return 0
  }
}

function completionSpec (commands: Command[]): CompletionSpec {
  const names = commands.map(c => c.name)
  const choices: Record<string, string[]> = { completion: Object.keys(SHELLS) }
  const help: CommandCompletion = {
    name: 'help', summary: 'Shows the help of a command.', flags: [], choices: names, commandLine: false
  }
  return {
    globalFlags: [HOME_FLAG, VERSION_FLAG, HELP_FLAG],
    commands: [
      ...commands.map(c => ({
        name: c.name,
        summary: c.summary,
        flags: parserFlags(c),
        choices: choices[c.name] ?? [],
        commandLine: c.restAfterFirstPositional === true
      })),
      help
    ]
  }
}

const longNames = (flags: FlagSpec[]): string[] => flags.map(f => `--${f.name}`)

const spellings = (flag: FlagSpec): string[] => [`--${flag.name}`, ...(flag.short === undefined ? [] : [`-${flag.short}`])]

/** Every spelling of the flags that take a value, which the next word is then. */
const valueFlagSpellings = (flags: FlagSpec[]): string[] => flags.filter(f => f.arg !== undefined).flatMap(spellings)

/** A bash `case` that echoes one word list per command (`''` is no command yet), nothing for an empty list. */
function bashCase (fn: string, top: string[], perCommand: (c: CommandCompletion) => string[], spec: CompletionSpec): string {
  const arms = [["''", top] as const, ...spec.commands.map(c => [c.name, perCommand(c)] as const)]
  return [
    `${fn} () {`,
    '  case $1 in',
    ...arms.filter(([, words]) => words.length > 0).map(([label, words]) => `    ${label}) echo '${words.join(' ')}' ;;`),
    '  esac',
    '}'
  ].join('\n')
}

function bashScript (spec: CompletionSpec): string {
  const globalNames = spec.globalFlags.flatMap(spellings)
  const commandLines = spec.commands.filter(c => c.commandLine).map(c => c.name)
  return `# bash completion for meshq (generated by 'meshq completion bash')
# Load it with: source <(meshq completion bash)

${bashCase('_meshq_flags', globalNames, c => longNames(c.flags), spec)}

${bashCase('_meshq_value_flags', valueFlagSpellings(spec.globalFlags), c => valueFlagSpellings(c.flags), spec)}

${bashCase('_meshq_words', spec.commands.map(c => c.name), c => c.choices, spec)}

_meshq () {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} command= i word
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    # after --, or a command line's first word: the job's command line, completed as files
    [[ $word == -- ]] && return 0
    if [[ $word == -* ]]; then
      if [[ " $(_meshq_value_flags "$command") " == *" $word "* ]]; then
        ((i++))
        [[ \${COMP_WORDS[i]} == = ]] && ((i++))
      fi
    elif [[ -z $command ]]; then
      command=$word
    elif [[ " ${commandLines.join(' ')} " == *" $command "* ]]; then
      return 0
    fi
  done
  [[ $prev == = ]] && prev=\${COMP_WORDS[COMP_CWORD-2]}
  [[ $cur == = ]] && cur=
  [[ " $(_meshq_value_flags "$command") " == *" $prev "* ]] && return 0
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_meshq_flags "$command")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_meshq_words "$command")" -- "$cur"))
  fi
}

complete -o default -F _meshq meshq
`
}

/** Value placeholders that name paths, completed as such: zsh's `_files` action for each. */
const PATH_VALUES = new Map([['DIR', '_files -/'], ['FILE', '_files']])

const zshQuote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`

/**
 * One `_arguments` spec for a flag: `'*--listen=[help]:MULTIADDR: '`, or both spellings when it has a
 * short name. An exclusive flag (`--version`) rules out every other flag and argument.
 */
function zshFlag (flag: FlagSpec, exclusive = false): string {
  const help = `[${flag.help.replace(/[\\[\]]/g, '\\$&')}]`
  const value = flag.arg === undefined ? '' : `:${flag.arg.replace(/:/g, '\\:')}:${PATH_VALUES.get(flag.arg) ?? ' '}`
  const eq = flag.arg === undefined ? '' : '='
  const shortSpelling = flag.short === undefined ? '' : `-${flag.short}${flag.arg === undefined ? '' : '+'}`
  const prefix = exclusive
    ? '(- *)'
    : flag.repeat === true ? '*' : flag.short === undefined ? '' : `(-${flag.short} --${flag.name})`
  if (flag.short === undefined) return zshQuote(`${prefix}--${flag.name}${eq}${help}${value}`)
  return `${zshQuote(prefix)}{${shortSpelling},--${flag.name}${eq}}${zshQuote(help + value)}`
}

function zshArguments (command: CommandCompletion): string {
  const positional = command.commandLine
    ? "'*::command line:_normal'"
    : command.choices.length > 0 ? `'*:argument:(${command.choices.join(' ')})'` : "'*:argument:_files'"
  return ['_arguments -s', ...command.flags.map(f => zshFlag(f)), positional].join(' \\\n          ')
}

function zshScript (spec: CompletionSpec): string {
  const describe = spec.commands.map(c => `    ${zshQuote(`${c.name}:${c.summary}`)}`)
  const arms = spec.commands.map(c => `        ${c.name})\n          ${zshArguments(c)} ;;`)
  // a global switch (--version, --help) is the whole command line
  const globalFlags = spec.globalFlags.map(f => zshFlag(f, f.arg === undefined))
  return `#compdef meshq
# zsh completion for meshq (generated by 'meshq completion zsh')
# Load it with: source <(meshq completion zsh) after compinit, or save it as _meshq in a directory of $fpath

_meshq () {
  local curcontext=$curcontext state line
  local -A opt_args
  local -a commands
  commands=(
${describe.join('\n')}
  )
  _arguments -C \\
    ${globalFlags.join(' \\\n    ')} \\
    '1:command:->command' \\
    '*::argument:->argument'
  case $state in
    command)
      _describe -t commands 'meshq command' commands ;;
    argument)
      curcontext=\${curcontext%:*:*}:meshq-$words[1]:
      case $words[1] in
${arms.join('\n')}
      esac ;;
  esac
}

if [[ $funcstack[1] == _meshq ]]; then
  _meshq "$@"
else
  compdef _meshq meshq
fi
`
}

const fishQuote = (s: string): string => `'${s.replace(/[\\']/g, '\\$&')}'`

function fishFlag (condition: string, flag: FlagSpec): string {
  const short = flag.short === undefined ? '' : ` -s ${flag.short}`
  const value = flag.arg === undefined ? '' : PATH_VALUES.has(flag.arg) ? ' -r -F' : ' -r'
  return `complete -c meshq -n ${condition}${short} -l ${flag.name}${value} -d ${fishQuote(flag.help)}`
}

function fishScript (spec: CompletionSpec): string {
  const lines = [
    "# fish completion for meshq (generated by 'meshq completion fish')",
    '# Load it with: meshq completion fish | source, or save it as ~/.config/fish/completions/meshq.fish',
    '',
    ...spec.globalFlags.map(f => fishFlag('__fish_use_subcommand', f)),
    ...spec.commands.map(c => `complete -c meshq -n __fish_use_subcommand -f -a ${c.name} -d ${fishQuote(c.summary)}`)
  ]
  for (const c of spec.commands) {
    const condition = fishQuote(`__fish_seen_subcommand_from ${c.name}`)
    lines.push('', ...c.flags.map(f => fishFlag(condition, f)))
    if (c.choices.length > 0) lines.push(`complete -c meshq -n ${condition} -f -a ${fishQuote(c.choices.join(' '))}`)
  }
  return lines.join('\n') + '\n'
}
