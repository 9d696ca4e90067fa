// The fault schedule ("nemesis") of a simulation run: forced crash/restart cycles, and random faults
// (symmetric and one-way partitions, leader isolation, crashes, some of them between a write and its
// fsync, restarts, lossy/slow/duplicating links, leadership transfers; with snapshots on, crashes
// of a node in the middle of receiving a snapshot), all drawn from the seed.

import { DEFAULT_LINKS, type Simulation } from './simulation.js';

export function scheduleCrashCycles(sim: Simulation, faultyEnd: number): void {
  // Forced cycles spread over the faulty phase; every other one hits the leader.
  for (let k = 0; k < sim.options.crashCycles; k++) {
    const span = faultyEnd / (sim.options.crashCycles + 1);
    const t = span * (k + 0.5) + sim.rng.float() * span;
    sim.at(t, `forced crash cycle ${k + 1}`, () => {
      // Make room first, so that every forced cycle really crashes a node.
      const downIds = sim.ids.filter((id) => !sim.isUp(id));
      if (downIds.length >= sim.options.maxDown) sim.restart(sim.rng.pick(downIds));
      const leader = sim.leader();
      const victims = sim.upIds();
      if (victims.length === 0) return;
      const id = k % 2 === 0 && leader ? leader : sim.rng.pick(victims);
      if (sim.rng.chance(0.5)) sim.crashAtNextWrite(id);
      else sim.crash(id);
      const back = t + sim.rng.range(200, 1500);
      sim.at(Math.min(back, faultyEnd), `restart ${id}`, () => {
        // A crash-at-next-write may not have fired yet: make sure it is down, then bring it back.
        sim.crash(id);
        sim.restart(id);
      });
    });
  }
}

export function scheduleRandomFaults(sim: Simulation, faultyEnd: number): void {
  const next = () => {
    const t = sim.now() + sim.rng.range(sim.options.faultIntervalMs[0], sim.options.faultIntervalMs[1]);
    if (t >= faultyEnd) return;
    sim.queue.after(t - sim.now(), 'fault', () => {
      randomFault(sim);
      next();
    });
  };
  next();
}

function randomFault(sim: Simulation): void {
  sim.stats.faults++;
  const r = sim.rng;
  const up = sim.upIds();
  const down = sim.ids.filter((id) => !sim.isUp(id));
  const roll = r.int(100);
  if (roll < 14) {
    const shuffled = r.shuffle([...sim.ids]);
    const cut = r.range(1, Math.floor(sim.ids.length / 2));
    sim.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
  } else if (roll < 24) {
    const leader = sim.leader();
    if (leader) sim.isolate(leader);
  } else if (roll < 34) {
    for (let i = r.range(1, 3); i > 0; i--) {
      const from = r.pick(sim.ids);
      const to = r.pick(sim.ids.filter((x) => x !== from));
      sim.cutOneWay(from, to);
    }
  } else if (roll < 48 || (roll < 54 && !sim.options.membershipChanges)) {
    sim.heal();
  } else if (roll < 54) {
    sim.changeMembership();
  } else if (roll < 64) {
    if (up.length > 0 && down.length < sim.options.maxDown) {
      const receiving = sim.receivingSnapshot();
      if (sim.options.snapshots && receiving.length > 0 && r.chance(0.7)) {
        // Cut a snapshot transfer: the partial snapshot is lost, the old state must stay intact.
        sim.crash(r.pick(receiving));
        return;
      }
      const leader = sim.leader();
      const id = leader && r.chance(0.4) ? leader : r.pick(up);
      if (sim.options.snapshots && r.chance(0.3)) sim.crashDuringNextTransfer(id);
      else if (r.chance(0.5)) sim.crashAtNextWrite(id);
      else sim.crash(id);
    }
  } else if (roll < 76) {
    if (down.length > 0) sim.restart(r.pick(down));
  } else if (roll < 82) {
    const min = r.range(1, 10);
    sim.setLinks({
      dropRate: r.float() * 0.2,
      duplicateRate: r.float() * 0.1,
      minLatencyMs: min,
      maxLatencyMs: min + r.range(0, 60),
      longDelayRate: r.float() * 0.03,
    });
  } else if (roll < 88) {
    sim.transferLeadership(r.chance(0.3) ? null : r.pick(sim.ids));
  } else {
    sim.setLinks(DEFAULT_LINKS);
  }
}
