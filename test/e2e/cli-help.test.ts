// Every subcommand of the real launcher answers --help and -h with its usage and exit 0; an unknown
// flag gets one line on stderr that names it and points to --help, a non-zero exit, no stack trace.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { launcherPath, serverMissingReason } from '../../src/server/local-cluster.js';

const SUBCOMMANDS = [
  'server',
  'client',
  'status',
  'cluster',
  'bench',
  'member',
  'member add',
  'member remove',
  'transfer',
  'certs',
  'backup',
  'restore',
];

function run(args: string[]) {
  const r = spawnSync(launcherPath, args, { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('quorum-chat --help', () => {
  it('is built', () => {
    expect(serverMissingReason()).toBeUndefined();
  });

  it.each(SUBCOMMANDS)('%s --help and -h print its usage and exit 0', (cmd) => {
    for (const flag of ['--help', '-h']) {
      const r = run([...cmd.split(' '), flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: quorum-chat ${cmd.split(' ')[0]}`));
      expect(r.stderr).toBe('');
    }
    // The flags it documents are listed, with the help flag itself.
    expect(run([...cmd.split(' '), '--help']).stdout).toContain('-h, --help');
  });

  it('the top level lists every subcommand', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of SUBCOMMANDS) expect(r.stdout).toContain(`quorum-chat ${cmd}`);
  });

  it.each(SUBCOMMANDS.filter((c) => c !== 'member'))('%s --bogus is one line naming the flag', (cmd) => {
    const r = run([...cmd.split(' '), '--bogus', 'x']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`quorum-chat: ${cmd}: unknown flag --bogus; see 'quorum-chat ${cmd} --help'\n`);
  });

  it('documents the server flags with their defaults', () => {
    const out = run(['server', '--help']).stdout;
    for (const f of [
      '--heartbeat-ms MS',
      '(default: 50)',
      '--election-timeout-ms MIN-MAX',
      '--slow-fsync-ms',
      '--flush-delay-us US',
      '--flush-max-entries N',
      '(default: 512)',
    ]) {
      expect(out).toContain(f);
    }
  });
});
