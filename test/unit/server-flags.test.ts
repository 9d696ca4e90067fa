import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { prepareDataDir } from '../../src/server/data-dir.js';
import { parseServerFlags } from '../../src/server/flags.js';
import { startReplica } from '../../src/server/replica.js';

describe('server flags', () => {
  it('applies the defaults of API.md', () => {
    expect(parseServerFlags(['--id', 'server1', '--port', '5555'])).toEqual({
      id: 'server1',
      host: '127.0.0.1',
      port: 5555,
      dataDir: './data/server1',
      peers: [],
      httpPort: 6555,
      heartbeatMs: 50,
      electionMinMs: 150,
      electionMaxMs: 300,
      clusterSecretFile: undefined,
      logLevel: 'info',
      snapshotEvery: 5000,
      slowFsyncMs: 100,
    });
    expect(parseServerFlags(['--id', 's', '--port', '1', '--slow-fsync-ms', '250']).slowFsyncMs).toBe(250);
    expect(parseServerFlags(['--id', 's', '--port', '1', '--snapshot-every', '200']).snapshotEvery).toBe(200);
    expect(() => parseServerFlags(['--id', 's', '--port', '1', '--snapshot-every', '0'])).toThrow(
      /--snapshot-every must be/,
    );
  });

  it('reads every flag, in both --flag value and --flag=value forms', () => {
    const c = parseServerFlags([
      '--id=s2',
      '--port',
      '5556',
      '--host',
      '0.0.0.0',
      '--data-dir',
      '/tmp/x',
      '--peers',
      '127.0.0.1:5555,localhost:5557',
      '--http-port=8080',
      '--heartbeat-ms',
      '20',
      '--election-timeout-ms',
      '100-200',
      '--cluster-secret-file',
      '/tmp/secret',
      '--log-level',
      'debug',
    ]);
    expect(c).toMatchObject({
      id: 's2',
      port: 5556,
      host: '0.0.0.0',
      dataDir: '/tmp/x',
      peers: ['127.0.0.1:5555', 'localhost:5557'],
      httpPort: 8080,
      heartbeatMs: 20,
      electionMinMs: 100,
      electionMaxMs: 200,
      clusterSecretFile: '/tmp/secret',
      logLevel: 'debug',
    });
  });

  it.each([
    [['--port', '5555'], /--id is required/],
    [['--id', 'a'], /--port is required/],
    [['--id', 'a', '--port', '0'], /port number/],
    [['--id', 'a', '--port', '70000'], /port number/],
    [['--id', 'a', '--port', 'abc'], /port number/],
    [['--id', 'a', '--port', '5555', '--bogus', '1'], /unknown flag --bogus/],
    [['--id', 'a', '--port', '5555', 'stray'], /unexpected argument/],
    [['--id', 'a', '--port'], /--port needs a value/],
    [['--id', 'a', '--port', '1', '--port', '2'], /more than once/],
    [['--id', 'a b', '--port', '5555'], /--id/],
    [['--id', 'a', '--port', '5555', '--peers', 'nohost'], /HOST:PORT/],
    [['--id', 'a', '--port', '5555', '--election-timeout-ms', '300-150'], /MIN must be below MAX/],
    [['--id', 'a', '--port', '5555', '--election-timeout-ms', 'fast'], /MIN-MAX/],
    [['--id', 'a', '--port', '5555', '--heartbeat-ms', '200'], /above --heartbeat-ms/],
    [['--id', 'a', '--port', '5555', '--log-level', 'loud'], /--log-level/],
    [['--id', 'a', '--port', '65000'], /no default HTTP port/],
  ])('rejects %j with one line', (argv, msg) => {
    let err: Error | undefined;
    try {
      parseServerFlags(argv);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(msg);
    expect(err?.message).not.toContain('\n');
    expect((err as { userError?: boolean }).userError).toBe(true);
  });
});

describe('data dir', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const temp = () => {
    const d = mkdtempSync(join(tmpdir(), 'qc-dd-'));
    dirs.push(d);
    return d;
  };

  it('creates a fresh dir, then recognises it as this node’s', () => {
    const dir = join(temp(), 'n1');
    expect(prepareDataDir(dir, 'n1').fresh).toBe(true);
    expect(prepareDataDir(dir, 'n1').fresh).toBe(false);
    expect(() => prepareDataDir(dir, 'n2')).toThrow(/belongs to node 'n1'/);
  });

  it('refuses a non-empty foreign dir and a corrupt marker', () => {
    const foreign = temp();
    writeFileSync(join(foreign, 'something.txt'), 'hello');
    expect(() => prepareDataDir(foreign, 'n1')).toThrow(/not a quorum-chat data dir/);
    const broken = temp();
    writeFileSync(join(broken, 'quorum-chat.json'), '{nope');
    expect(() => prepareDataDir(broken, 'n1')).toThrow(/corrupt/);
  });

  it('reports a corrupt replica database in one line', async () => {
    const dir = join(temp(), 'n1');
    mkdirSync(dir);
    prepareDataDir(dir, 'n1');
    writeFileSync(join(dir, 'replica.sqlite'), 'this is not a database, just some bytes '.repeat(200));
    await expect(
      startReplica({
        id: 'n1',
        host: '127.0.0.1',
        port: 0,
        dataDir: dir,
        peers: [],
        clusterSecret: 'secret',
        timing: { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 },
      }),
    ).rejects.toThrow(/^data dir .* is corrupt/);
  });
});
