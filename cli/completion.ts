import type { Command, Option } from 'commander';
import { LOG_FORMATS, LOG_LEVELS } from '../lib/config.js';

/**
 * `ges-archiver completion bash|zsh`: a completion script generated from the commander
 * definitions (commands, their options, the global options), so it never falls behind them.
 * Values: the choices of --log-level and --log-format, files for --manifest and --to, the
 * shells for `completion`; other values are free-form (ids, sizes) and get no suggestions.
 */
export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

const VALUE_CHOICES: Record<string, readonly string[]> = { '--log-level': LOG_LEVELS, '--log-format': LOG_FORMATS };
const FILE_VALUES = new Set(['--manifest', '--to']);

interface OptionSpec {
  names: string[];
  takesValue: boolean;
  description: string;
}

interface CommandSpec {
  name: string;
  description: string;
  options: OptionSpec[];
  /** Choices of the first positional argument (`completion bash|zsh`). */
  argChoices: readonly string[];
}

function optionSpec(o: Option): OptionSpec {
  return { names: [o.short, o.long].filter((n): n is string => n !== undefined), takesValue: o.required || o.optional, description: o.description };
}

const HELP: OptionSpec = { names: ['-h', '--help'], takesValue: false, description: 'show help' };

function describe(program: Command): { name: string; global: OptionSpec[]; commands: CommandSpec[] } {
  const commands = program.commands.map((c) => ({
    name: c.name(),
    description: c.description(),
    options: c.options.map(optionSpec),
    argChoices: c.registeredArguments[0]?.argChoices ?? [],
  }));
  commands.push({ name: 'help', description: 'show help for a command', options: [], argChoices: commands.map((c) => c.name) });
  return { name: program.name(), global: [...program.options.map(optionSpec), HELP], commands };
}

const words = (xs: readonly string[]): string => xs.join(' ');
const funcName = (name: string): string => `_${name.replace(/[^A-Za-z0-9]/g, '_')}`;

function bashScript(program: Command): string {
  const d = describe(program);
  const fn = funcName(d.name);
  const globalNames = d.global.flatMap((o) => o.names);
  const globalValued = d.global.filter((o) => o.takesValue).flatMap((o) => o.names);
  const allValued = [...new Set([...d.global, ...d.commands.flatMap((c) => c.options)].filter((o) => o.takesValue).flatMap((o) => o.names))];
  const free = allValued.filter((n) => VALUE_CHOICES[n] === undefined && !FILE_VALUES.has(n));
  const valueCases = [
    ...Object.entries(VALUE_CHOICES).map(([n, choices]) => `    ${n}) COMPREPLY=( $(compgen -W "${words(choices)}" -- "$cur") ); return 0 ;;`),
    `    ${[...FILE_VALUES].join('|')}) COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;`,
    ...(free.length > 0 ? [`    ${free.join('|')}) return 0 ;;`] : []),
  ];
  const commandCases = d.commands.map((c) => {
    const args = c.argChoices.length > 0 ? `[[ "$cur" != -* ]] && { COMPREPLY=( $(compgen -W "${words(c.argChoices)}" -- "$cur") ); return 0; }; ` : '';
    return `    ${c.name}) ${args}opts="${words(c.options.flatMap((o) => o.names))}" ;;`;
  });
  return `# bash completion for ${d.name}, generated from its command definitions.
# Load it with: source <(${d.name} completion bash)   (e.g. in ~/.bashrc)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" opts="" i w
  (( COMP_CWORD > 0 )) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # The command is the first word that is neither an option nor a global option's value.
  for (( i = 1; i < COMP_CWORD; i++ )); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      ${globalValued.length > 0 ? `${globalValued.join('|')}) (( i++ )) ;;` : ''}
      -*) ;;
      *) cmd="$w"; break ;;
    esac
  done
  case "$prev" in
${valueCases.join('\n')}
  esac
  if [[ -z "$cmd" ]]; then
    if [[ "$cur" == -* ]]; then
      COMPREPLY=( $(compgen -W "${words(globalNames)}" -- "$cur") )
    else
      COMPREPLY=( $(compgen -W "${words(d.commands.map((c) => c.name))}" -- "$cur") )
    fi
    return 0
  fi
  case "$cmd" in
${commandCases.join('\n')}
    *) return 0 ;;
  esac
  COMPREPLY=( $(compgen -W "$opts ${words(globalNames)}" -- "$cur") )
}
complete -F ${fn} ${d.name}
`;
}

/** Text inside zsh's [description] and '...' quoting: no brackets, colons, quotes or backslashes. */
const zshText = (s: string): string => s.replace(/[[\]:'\\`$]/g, ' ').replace(/\s+/g, ' ').trim();

function zshOption(o: OptionSpec): string[] {
  const action = VALUE_CHOICES[o.names.at(-1) ?? ''] !== undefined ? `(${words(VALUE_CHOICES[o.names.at(-1)!]!)})`
    : FILE_VALUES.has(o.names.at(-1) ?? '') ? '_files' : ' ';
  const value = o.takesValue ? `:value:${action}` : '';
  const exclusive = o.names.length > 1 ? `(${words(o.names)})` : '';
  return o.names.map((n) => `'${exclusive}${n}[${zshText(o.description)}]${value}'`);
}

function zshScript(program: Command): string {
  const d = describe(program);
  const fn = funcName(d.name);
  const commandCases = d.commands.map((c) => {
    const args = c.argChoices.length > 0 ? ` '1:${c.name === 'help' ? 'command' : 'value'}:(${words(c.argChoices)})'` : '';
    return `        ${c.name}) _arguments -s $global ${c.options.flatMap(zshOption).join(' ')}${args} ;;`;
  });
  return `#compdef ${d.name}
# zsh completion for ${d.name}, generated from its command definitions.
# Load it with: source <(${d.name} completion zsh)   (after compinit), or save it as _${d.name} in your $fpath.
${fn}() {
  local -a global commands
  local state line
  global=(${d.global.flatMap(zshOption).join(' ')})
  commands=(${d.commands.map((c) => `'${c.name}:${zshText(c.description)}'`).join(' ')})
  _arguments -C -s $global '1: :->command' '*:: :->args'
  case $state in
    command) _describe -t commands 'command' commands ;;
    args)
      case $line[1] in
${commandCases.join('\n')}
      esac
      ;;
  esac
}
if [[ "$funcstack[1]" == "${fn}" ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${d.name}
fi
`;
}

export function completionScript(program: Command, shell: Shell): string {
  return shell === 'bash' ? bashScript(program) : zshScript(program);
}
