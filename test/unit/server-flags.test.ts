import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { prepareDataDir } from '../../src/server/data-dir.js';
import { parseServerFlags } from '../../src/server/flags.js';
import { startReplica } from '../../src/server/replica.js';
import { UserError } from '../../src/user-error.js';

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
      sessionTtlMs: 30 * 24 * 3600 * 1000,
      loginFailuresPerMinute: 5,
      writeRate: 20,
      writeBurst: 40,
      scryptN: 131072,
      slowFsyncMs: 100,
      flushDelayUs: 0,
      flushMaxEntries: 512,
    });
    expect(parseServerFlags(['--id', 's', '--port', '1', '--slow-fsync-ms', '250']).slowFsyncMs).toBe(250);
    expect(parseServerFlags(['--id', 's', '--port', '1', '--snapshot-every', '200']).snapshotEvery).toBe(200);
    expect(() => parseServerFlags(['--id', 's', '--port', '1', '--snapshot-every', '0'])).toThrow(
      /--snapshot-every must be/,
    );
  });

  it('reads the flush policy flags, and refuses values out of range', () => {
    const base = ['--id', 's', '--port', '1'];
    const c = parseServerFlags([...base, '--flush-delay-us', '500', '--flush-max-entries', '64']);
    expect([c.flushDelayUs, c.flushMaxEntries]).toEqual([500, 64]);
    for (const bad of ['-1', '1.5', 'x', '1000001']) {
      expect(() => parseServerFlags([...base, `--flush-delay-us=${bad}`]), bad).toThrow(
        /--flush-delay-us must be/,
      );
    }
    for (const bad of ['0', 'x', '1000001']) {
      expect(() => parseServerFlags([...base, `--flush-max-entries=${bad}`]), bad).toThrow(
        /--flush-max-entries must be/,
      );
    }
  });

  it('--session-ttl takes a duration in d, h, m, s, ms or bare milliseconds', () => {
    const ttl = (v: string) =>
      parseServerFlags(['--id', 's', '--port', '1', `--session-ttl=${v}`]).sessionTtlMs;
    expect(ttl('30d')).toBe(30 * 86_400_000);
    expect(ttl('12h')).toBe(12 * 3_600_000);
    expect(ttl('90m')).toBe(90 * 60_000);
    expect(ttl('45s')).toBe(45_000);
    expect(ttl('1500ms')).toBe(1500);
    expect(ttl('86400000')).toBe(86_400_000);
    for (const bad of ['0', '999ms', '30x', '-1d', '1.5h', '', '99999d']) {
      expect(() => ttl(bad), bad).toThrow(/--session-ttl must be a duration/);
    }
  });

  it('reads the rate-limit and scrypt flags, and refuses values out of range', () => {
    const base = ['--id', 's', '--port', '1'];
    expect(
      parseServerFlags([
        ...base,
        '--login-failures-per-minute',
        '3',
        '--write-rate=100',
        '--write-burst',
        '7',
        '--scrypt-n',
        '16384',
      ]),
    ).toMatchObject({ loginFailuresPerMinute: 3, writeRate: 100, writeBurst: 7, scryptN: 16384 });
    expect(() => parseServerFlags([...base, '--write-rate', '0'])).toThrow(
      /--write-rate must be a whole number from 1 to 1000000, not '0'/,
    );
    expect(() => parseServerFlags([...base, '--write-burst', 'x'])).toThrow(/--write-burst must be/);
    expect(() => parseServerFlags([...base, '--login-failures-per-minute=-1'])).toThrow(
      /--login-failures-per-minute must be/,
    );
    expect(() => parseServerFlags([...base, '--scrypt-n', '512'])).toThrow(/--scrypt-n must be/);
    expect(() => parseServerFlags([...base, '--scrypt-n', '20000'])).toThrow(/power of two/);
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

  it('refuses a data dir of an older chat schema in one line, without changing it', async () => {
    const dir = join(temp(), 'n1');
    mkdirSync(dir);
    prepareDataDir(dir, 'n1');
    const db = new Database(join(dir, 'replica.sqlite'));
    db.exec(`CREATE TABLE chat_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO chat_meta VALUES ('schema_version', '1');`);
    db.close();
    const start = startReplica({
      id: 'n1',
      host: '127.0.0.1',
      port: 0,
      dataDir: dir,
      peers: [],
      clusterSecret: 'secret',
      timing: { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 },
    });
    await expect(start).rejects.toThrow(UserError);
    await expect(start).rejects.toThrow(
      /^data dir .*: it holds chat schema version 1, .*start from an empty data dir$/,
    );
    const after = new Database(join(dir, 'replica.sqlite'));
    expect(after.prepare("SELECT value FROM chat_meta WHERE key = 'schema_version'").pluck().get()).toBe('1');
    after.close();
  });
});
