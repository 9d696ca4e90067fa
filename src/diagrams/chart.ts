// A machine definition reduced to what a diagram shows: states (nested, parallel), transitions with
// their event, guard, actions and target, `after` delays by name, and invoked actors. Pure: it reads
// only the machine's StateNode tree, so tests can regenerate diagrams in memory.

import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

export interface ChartTransition {
  /** What triggers it: an event type, `after <delay>` or `always`. */
  trigger: string;
  guard: string | null;
  actions: string[];
  /** Target state ids (dotted paths from the root, e.g. "leader.active"); empty for internal ones. */
  targets: string[];
  reenter: boolean;
}

export interface ChartState {
  /** Dotted path from the root ("" for the root). */
  path: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  initial: string | null;
  children: ChartState[];
  transitions: ChartTransition[];
  invokes: string[];
  entry: string[];
  exit: string[];
}

function nameOf(x: unknown): string | null {
  if (typeof x === 'string') return x;
  if (x && typeof x === 'object' && 'type' in x && typeof (x as { type: unknown }).type === 'string') {
    return (x as { type: string }).type;
  }
  // Inline functions have no stable name worth printing.
  return null;
}

function pathOf(node: AnyStateNode): string {
  return node.path.join('.');
}

function triggerOf(eventType: string, delays: Map<string, string>): string {
  if (eventType === '') return 'always';
  const delay = delays.get(eventType);
  return delay !== undefined ? `after ${delay}` : eventType;
}

function transitionsOf(node: AnyStateNode): ChartTransition[] {
  const delays = new Map<string, string>();
  for (const a of node.after) delays.set(a.eventType, String(a.delay));
  type Def = [string, AnyTransitionDefinition];
  const defs: Def[] = (node.always ?? []).map((t): Def => ['', t]);
  for (const [eventType, list] of node.transitions) for (const t of list) defs.push([eventType, t]);
  const out = defs.map(([eventType, t]) => ({
    trigger: triggerOf(eventType, delays),
    guard: t.guard ? nameOf(t.guard) : null,
    actions: (t.actions ?? []).map(nameOf).filter((a): a is string => a !== null),
    targets: (t.target ?? []).map((s: AnyStateNode) => pathOf(s)),
    reenter: t.reenter === true,
  }));
  // Stable order: timers and eventless first, then events by name; guarded alternatives of one event
  // keep their order (it is the order XState tries them in).
  const rank = (t: ChartTransition) => (t.trigger === 'always' ? 0 : t.trigger.startsWith('after ') ? 1 : 2);
  return out
    .map((t, i) => ({ t, i }))
    .sort((a, b) => rank(a.t) - rank(b.t) || a.t.trigger.localeCompare(b.t.trigger) || a.i - b.i)
    .map(({ t }) => t);
}

function stateOf(node: AnyStateNode): ChartState {
  const initialTarget = node.type === 'compound' ? node.initial?.target?.[0] : undefined;
  return {
    path: pathOf(node),
    key: node.key,
    type: node.type,
    initial: initialTarget ? pathOf(initialTarget) : null,
    children: Object.values(node.states).map((c) => stateOf(c as AnyStateNode)),
    transitions: transitionsOf(node),
    entry: (node.entry ?? []).map(nameOf).filter((a: string | null): a is string => a !== null),
    exit: (node.exit ?? []).map(nameOf).filter((a: string | null): a is string => a !== null),
    invokes: node.invoke.map((i) => {
      const src = typeof i.src === 'string' ? i.src : (nameOf(i.src) ?? i.id);
      return i.id && i.id !== src ? `${src} (id ${i.id})` : src;
    }),
  };
}

export interface Chart {
  id: string;
  root: ChartState;
  /**
   * How transitions without a target are drawn: as notes on their state (compact; for big charts) or
   * as self-loop edges (for small charts where they are the point, e.g. the chat actor's routing).
   */
  internal: 'notes' | 'loops';
}

export function chartOf(machine: AnyStateMachine, internal: Chart['internal'] = 'notes'): Chart {
  return { id: machine.id, root: stateOf(machine.root), internal };
}

/** An edge of the diagram: transitions with the same source, target, guard and actions, merged. */
export interface ChartEdge {
  source: string;
  target: string;
  triggers: string[];
  guard: string | null;
  actions: string[];
  reenter: boolean;
}

/**
 * The edges leaving a state (one per target of each transition), merged across triggers. With
 * `loops`, internal transitions that do something are self-loops (drawn without "(reenter)").
 */
export function edgesOf(state: ChartState, internal: Chart['internal'] = 'notes'): ChartEdge[] {
  const edges = new Map<string, ChartEdge>();
  for (const t of state.transitions) {
    const loop = internal === 'loops' && t.targets.length === 0 && t.actions.length > 0;
    for (const target of loop ? [state.path] : t.targets) {
      const key = JSON.stringify([target, t.guard, t.actions, t.reenter]);
      const e = edges.get(key);
      if (e) e.triggers.push(t.trigger);
      else
        edges.set(key, {
          source: state.path,
          target,
          triggers: [t.trigger],
          guard: t.guard,
          actions: t.actions,
          reenter: t.reenter,
        });
    }
  }
  return [...edges.values()];
}

/** "a, b [guard] / x, y (reenter)": the label of an edge. */
export function edgeLabel(e: ChartEdge, triggerSeparator = ', '): string {
  let s = e.triggers.join(triggerSeparator);
  if (e.guard) s += ` [${e.guard}]`;
  if (e.actions.length > 0) s += ` / ${e.actions.join(', ')}`;
  if (e.reenter) s += ' (reenter)';
  return s;
}

/**
 * Internal transitions (no target) of a state as note lines, one per event: the guarded alternatives
 * in order, e.g. "request: [isWrite] propose | readIndex". An alternative without actions is "ignore".
 * Events handled alike share a line.
 */
export function noteLines(state: ChartState, internal: Chart['internal'] = 'notes'): string[] {
  const lines: string[] = state.invokes.map((i) => `invokes ${i}`);
  if (state.entry.length > 0) lines.push(`entry / ${state.entry.join(', ')}`);
  if (state.exit.length > 0) lines.push(`exit / ${state.exit.join(', ')}`);
  const byTrigger = new Map<string, string[]>();
  for (const t of state.transitions) {
    if (t.targets.length > 0 || (internal === 'loops' && t.actions.length > 0)) continue;
    const alt = `${t.guard ? `[${t.guard}] ` : ''}${t.actions.length > 0 ? t.actions.join(', ') : 'ignore'}`;
    byTrigger.set(t.trigger, [...(byTrigger.get(t.trigger) ?? []), alt]);
  }
  const byHandling = new Map<string, string[]>();
  for (const [trigger, alts] of byTrigger) {
    const handling = alts.join(' | ');
    byHandling.set(handling, [...(byHandling.get(handling) ?? []), trigger]);
  }
  for (const [handling, triggers] of byHandling) lines.push(`${triggers.join(', ')}: ${handling}`);
  return lines;
}

/** Every state in the chart, depth first. */
export function allStates(s: ChartState): ChartState[] {
  return [s, ...s.children.flatMap(allStates)];
}
