// The flag table of cli-flags.ts: defaults, both value forms, repeated and multiple flags, --help, and
// one-line errors that name the flag.
import { describe, expect, it } from 'vitest';
import { type CommandSpec, HelpRequested, parseFlags, usageOf } from '../../src/cli-flags.js';

const spec: CommandSpec = {
  name: 'demo',
  synopsis: ['demo --name NAME'],
  about: 'A demo.',
  flags: {
    name: { value: 'NAME', help: 'a name' },
    size: { value: 'N', default: '5', help: 'a size' },
    keep: { type: 'boolean', help: 'keep it' },
    extra: { value: 'W', multiple: true, help: 'repeatable' },
  },
};

function errorOf(argv: string[]): string {
  try {
    parseFlags(spec, argv);
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

describe('parseFlags', () => {
  it('applies defaults and reads both forms', () => {
    expect(parseFlags(spec, ['--name', 'a'])).toEqual({ name: 'a', size: '5' });
    expect(parseFlags(spec, ['--name=a', '--size=7', '--keep', '--extra', 'x', '--extra=y'])).toEqual({
      name: 'a',
      size: '7',
      keep: true,
      extra: ['x', 'y'],
    });
  });

  it('throws HelpRequested with the usage for --help and -h, whatever else is given', () => {
    for (const argv of [['--help'], ['-h'], ['--bogus', '--help']]) {
      let err: unknown;
      try {
        parseFlags(spec, argv);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HelpRequested);
      expect((err as HelpRequested).usage).toBe(usageOf(spec));
    }
    expect(usageOf(spec)).toContain('--size N');
    expect(usageOf(spec)).toContain('a size (default: 5)');
  });

  it.each([
    [['--bogus'], "demo: unknown flag --bogus; see 'quorum-chat demo --help'"],
    [['stray'], "demo: unexpected argument 'stray'; see 'quorum-chat demo --help'"],
    [['--name'], "demo: --name needs a value; see 'quorum-chat demo --help'"],
    [['--name', '--keep'], "demo: --name needs a value; see 'quorum-chat demo --help'"],
    [['--keep=1'], "demo: --keep takes no value; see 'quorum-chat demo --help'"],
    [['--name', 'a', '--name', 'b'], "demo: --name is given more than once; see 'quorum-chat demo --help'"],
  ])('%j is one line', (argv, message) => {
    expect(errorOf(argv)).toBe(message);
  });
});
