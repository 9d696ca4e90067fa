import { describe, expect, it } from 'vitest';
import type { RaftMessage, TimeoutNow } from '../../machines/protocol.js';
import { EventQueue } from '../../src/raft/sim/event-queue.js';
import { type LinkFaults, SimNetwork } from '../../src/raft/sim/network.js';
import { Prng } from '../../src/raft/sim/prng.js';

const IDS = ['a', 'b', 'c'];

function setup(faults: Partial<LinkFaults> = {}) {
  const q = new EventQueue();
  const net = new SimNetwork(q, new Prng(1), {
    dropRate: 0,
    duplicateRate: 0,
    minLatencyMs: 5,
    maxLatencyMs: 5,
    ...faults,
  });
  const inbox = new Map<string, { m: RaftMessage; at: number }[]>();
  const transports = new Map(
    IDS.map((id) => {
      const t = net.transport(id);
      inbox.set(id, []);
      t.listen((m) => inbox.get(id)!.push({ m, at: q.now() }));
      return [id, t] as const;
    }),
  );
  const run = () => {
    for (let i = 0; i < 100_000 && q.step(); i++) {}
  };
  return { q, net, inbox, transports, run };
}

function msg(from: string, to: string, term = 1): TimeoutNow {
  return { type: 'TimeoutNow', from, to, term };
}

describe('SimNetwork', () => {
  it('delivers after the latency, as a copy', () => {
    const { transports, inbox, run } = setup();
    const m = msg('a', 'b');
    transports.get('a')!.send(m);
    expect(inbox.get('b')).toHaveLength(0);
    run();
    expect(inbox.get('b')).toHaveLength(1);
    expect(inbox.get('b')![0]!.at).toBe(5);
    expect(inbox.get('b')![0]!.m).toEqual(m);
    expect(inbox.get('b')![0]!.m).not.toBe(m);
  });

  it('drops everything at drop rate 1 and duplicates everything at duplicate rate 1', () => {
    const lossy = setup({ dropRate: 1 });
    for (let i = 0; i < 10; i++) lossy.transports.get('a')!.send(msg('a', 'b', i + 1));
    lossy.run();
    expect(lossy.inbox.get('b')).toHaveLength(0);
    expect(lossy.net.dropped).toBe(10);

    const dup = setup({ duplicateRate: 1 });
    dup.transports.get('a')!.send(msg('a', 'b'));
    dup.run();
    expect(dup.inbox.get('b')).toHaveLength(2);
  });

  it('reorders messages when latency varies', () => {
    const { transports, inbox, run } = setup({ minLatencyMs: 1, maxLatencyMs: 50 });
    for (let i = 1; i <= 50; i++) transports.get('a')!.send(msg('a', 'b', i));
    run();
    const terms = inbox.get('b')!.map((x) => x.m.term);
    expect(terms).toHaveLength(50);
    expect(terms).not.toEqual([...terms].sort((x, y) => x - y));
  });

  it('partitions symmetrically and heals', () => {
    const { net, transports, inbox, run } = setup();
    net.partition([['a'], ['b', 'c']]);
    transports.get('a')!.send(msg('a', 'b'));
    transports.get('b')!.send(msg('b', 'a'));
    transports.get('b')!.send(msg('b', 'c'));
    run();
    expect(inbox.get('a')).toHaveLength(0);
    expect(inbox.get('b')).toHaveLength(0);
    expect(inbox.get('c')).toHaveLength(1);
    net.heal();
    transports.get('a')!.send(msg('a', 'b'));
    run();
    expect(inbox.get('b')).toHaveLength(1);
  });

  it('cuts one direction only', () => {
    const { net, transports, inbox, run } = setup();
    net.cutOneWay('a', 'b');
    transports.get('a')!.send(msg('a', 'b'));
    transports.get('b')!.send(msg('b', 'a'));
    run();
    expect(inbox.get('b')).toHaveLength(0);
    expect(inbox.get('a')).toHaveLength(1);
  });

  it('drops a message in flight when a partition starts before it arrives', () => {
    const { q, net, transports, inbox, run } = setup();
    transports.get('a')!.send(msg('a', 'b'));
    q.after(1, 'fault', () => net.isolate('b', IDS));
    run();
    expect(inbox.get('b')).toHaveLength(0);
  });

  it('drops messages to a closed transport and ignores sends from one', () => {
    const { transports, inbox, run, net } = setup();
    transports.get('b')!.close();
    transports.get('a')!.send(msg('a', 'b'));
    transports.get('b')!.send(msg('b', 'a'));
    run();
    expect(inbox.get('b')).toHaveLength(0);
    expect(inbox.get('a')).toHaveLength(0);
    expect(net.sent).toBe(1);
  });

  it('delivers to a new incarnation that listens under the same id', () => {
    const { q, net, transports, run } = setup();
    transports.get('a')!.send(msg('a', 'b'));
    transports.get('b')!.close();
    const got: RaftMessage[] = [];
    q.after(1, 'restart', () => net.transport('b').listen((m) => got.push(m)));
    run();
    expect(got).toHaveLength(1);
  });

  it('refuses a message whose sender is not the transport owner', () => {
    const { transports } = setup();
    expect(() => transports.get('a')!.send(msg('b', 'c'))).toThrow(/sent a message from b/);
  });
});
