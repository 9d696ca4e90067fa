// Flags and --help for every `quorum-chat` subcommand, on node:util parseArgs. A subcommand declares a
// table of flags (name, value placeholder, default, one line of help); the same table drives parsing,
// defaults and the usage text, so adding a flag is adding one entry.
import { parseArgs } from 'node:util';
import { UserError } from './user-error.js';

export interface FlagSpec {
  /** Default 'string'. */
  type?: 'string' | 'boolean';
  short?: string;
  /** The value's placeholder in the usage, e.g. 'PORT'. */
  value?: string;
  /** Applied when the flag is absent, and shown in the usage. */
  default?: string;
  /** May be given more than once (the values are collected in order). */
  multiple?: boolean;
  help: string;
}

export type FlagTable = Record<string, FlagSpec>;

export interface CommandSpec {
  /** As typed after `quorum-chat`, e.g. 'member add'. */
  name: string;
  /** Synopsis lines (without the leading `quorum-chat `). */
  synopsis: string[];
  /** A sentence or two on what the command does. */
  about?: string;
  flags: FlagTable;
  /** Extra text after the flag list (examples, notes). */
  notes?: string;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** Thrown when `--help` or `-h` is given: cli.ts prints `usage` on stdout and exits 0. */
export class HelpRequested extends Error {
  constructor(readonly usage: string) {
    super('help requested');
  }
}

export function usageOf(spec: CommandSpec): string {
  // A synopsis line that starts with spaces continues the one above it.
  const lines = spec.synopsis.map((s, i) =>
    i === 0
      ? `usage: quorum-chat ${s}`
      : /^\s/.test(s)
        ? `       ${' '.repeat(12)}${s}`
        : `       quorum-chat ${s}`,
  );
  if (spec.about) lines.push('', ...wrap(spec.about, 100));
  const rows = Object.entries(spec.flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${name}${f.value ? ` ${f.value}` : ''}`;
    const def = f.default !== undefined ? ` (default: ${f.default})` : '';
    return [left, `${f.help}${def}`] as const;
  });
  rows.push(['-h, --help', 'print this help and exit']);
  const width = Math.max(...rows.map(([l]) => l.length));
  lines.push('', 'flags:', ...rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`));
  if (spec.notes) lines.push('', spec.notes);
  return lines.join('\n');
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

function wantsHelp(argv: string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * Parses `argv` against the table: `--flag value` and `--flag=value`, defaults applied. Every problem
 * is one UserError line that names the flag and points to --help; --help itself throws HelpRequested.
 */
export function parseFlags(spec: CommandSpec, argv: string[]): FlagValues {
  if (wantsHelp(argv)) throw new HelpRequested(usageOf(spec));
  const seeHelp = `see 'quorum-chat ${spec.name} --help'`;
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    options[name] = {
      type: f.type ?? 'string',
      ...(f.short ? { short: f.short } : {}),
      ...(f.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false, tokens: true });
  } catch (err) {
    throw new UserError(`${spec.name}: ${describeParseError(err as Error & { code?: string })}; ${seeHelp}`);
  }
  const seen = new Set<string>();
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name) && !spec.flags[t.name]?.multiple) {
      throw new UserError(`${spec.name}: --${t.name} is given more than once; ${seeHelp}`);
    }
    seen.add(t.name);
  }
  const values = { ...parsed.values } as FlagValues;
  for (const [name, f] of Object.entries(spec.flags)) {
    if (values[name] === undefined && f.default !== undefined) values[name] = f.default;
  }
  return values;
}

/** parseArgs' messages are long and suggest `--` tricks; say what is wrong in a few words. */
function describeParseError(err: Error & { code?: string }): string {
  const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? '';
  const flag = /--[A-Za-z0-9-]+/.exec(quoted)?.[0] ?? quoted.split(' ')[0];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${flag}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument '${quoted}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      // A string flag without a value, or a boolean flag given one.
      return /argument missing|ambiguous/.test(err.message)
        ? `${flag} needs a value`
        : `${flag} takes no value`;
    default:
      return err.message.split('\n')[0];
  }
}

/** A required string flag. */
export function required(spec: CommandSpec, values: FlagValues, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') {
    throw new UserError(`${spec.name}: --${name} is required; see 'quorum-chat ${spec.name} --help'`);
  }
  return v;
}
