// Drawing the cluster view from a view state (cluster-model.js describes its shape): the log strips,
// the network with its messages in flight, and the timeline. Each function draws what it is given and
// keeps no state of its own beyond the DOM it made, so a live page and a replay call the same ones.

import { FLIGHT_MS, linkPairs, termChanges } from './cluster-model.js';

const SVG = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function byId(a, b) {
  return a.localeCompare(b, undefined, { numeric: true });
}

/** A colour per term, far apart for neighbouring terms (the golden angle). */
export function termColour(term, dark = false) {
  const hue = Math.round((term * 137.508) % 360);
  return `hsl(${hue} 65% ${dark ? 45 : 62}%)`;
}

/**
 * Everything but the cards, from one view state: what a replay calls for each recorded moment.
 * `els`: { network: <svg>, strips: <div>, legend?: <div> }; `strips`: { back, cellPx }.
 */
export function drawView(els, state, { now = state.at, strips = {} } = {}) {
  drawNetwork(els.network, state, now);
  drawStrips(els.strips, state, strips);
  if (els.legend) drawLegend(els.legend);
}

// ---- log strips ----------------------------------------------------------------------------------

/**
 * One row per replica: its log from firstIndex to lastLogIndex as term runs, and marks for the snapshot
 * boundary, the commit index, the applied index and (on followers) the leader's match index. The rows
 * share one index axis; `back` entries scrolled back from the newest; only the visible window is drawn.
 * Each row says its indexes in data-* attributes and a line of text.
 */
export function drawStrips(box, state, { back = 0, cellPx = 8 } = {}) {
  const ids = Object.keys(state.replicas).sort(byId);
  const rows = new Map([...box.querySelectorAll(':scope > .strip')].map((r) => [r.dataset.id, r]));
  for (const [id, row] of rows) if (!state.replicas[id]) row.remove();
  const leader = Object.values(state.replicas).find((r) => r.up && r.role === 'leader');
  const newest = Math.max(1, ...Object.values(state.replicas).map((r) => r.lastLogIndex));
  const dark = matchMedia('(prefers-color-scheme: dark)').matches;
  const todo = [];
  for (const id of ids) {
    let row = rows.get(id);
    if (!row) {
      row = document.createElement('div');
      row.className = 'strip';
      row.dataset.id = id;
      const name = document.createElement('span');
      name.className = 'strip-name';
      name.textContent = id;
      const canvas = document.createElement('canvas');
      canvas.height = 22;
      const marks = document.createElement('span');
      marks.className = 'strip-marks';
      row.append(name, canvas, marks);
      const after = [...box.querySelectorAll(':scope > .strip')].find((r) => byId(r.dataset.id, id) > 0);
      box.insertBefore(row, after ?? null);
    }
    todo.push(row);
  }
  // Read every width before writing anything: one layout per call, not one per row.
  const widths = todo.map((row) => row.querySelector('canvas').clientWidth);
  todo.forEach((row, k) => {
    const r = state.replicas[row.dataset.id];
    const match = leader && leader.id !== r.id ? leader.match?.[r.id] : undefined;
    const set = (key, value) => {
      if (value === undefined) delete row.dataset[key];
      else if (row.dataset[key] !== String(value)) row.dataset[key] = String(value);
    };
    set('up', r.up);
    set('role', r.role);
    set('commit', r.commitIndex);
    set('applied', r.lastApplied);
    set('last', r.lastLogIndex);
    set('snapshot', r.snapshotIndex);
    set('match', match);
    const words = [`commit ${r.commitIndex}`, `applied ${r.lastApplied}`, `last ${r.lastLogIndex}`];
    if (r.snapshotIndex > 0) words.push(`snapshot ${r.snapshotIndex}`);
    if (match !== undefined) words.push(`match ${match}`);
    const text = words.join(' · ');
    const marks = row.querySelector('.strip-marks');
    if (marks.textContent !== text) marks.textContent = text;
    drawStrip(row.querySelector('canvas'), r, { newest, back, cellPx, match, width: widths[k], dark });
  });
}

function drawStrip(canvas, r, { newest, back, cellPx, match, width, dark }) {
  const ratio = window.devicePixelRatio || 1;
  const cssWidth = Math.max(50, width || 400);
  const cssHeight = 22;
  if (canvas.width !== Math.round(cssWidth * ratio)) canvas.width = Math.round(cssWidth * ratio);
  if (canvas.height !== Math.round(cssHeight * ratio)) canvas.height = Math.round(cssHeight * ratio);
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, cssWidth, cssHeight);
  const slots = Math.floor(cssWidth / cellPx);
  const end = Math.max(slots, newest - back);
  const start = end - slots + 1;
  const x = (index) => (index - start) * cellPx;
  // Compacted entries (in the snapshot): grey.
  if (r.snapshotIndex >= start) {
    g.fillStyle = dark ? '#3a404b' : '#d5d9e0';
    g.fillRect(0, 3, x(Math.min(r.snapshotIndex, end) + 1), 16);
  }
  // Term runs, the window only (binary search would do; there are at most a few hundred runs).
  g.font = '10px system-ui, sans-serif';
  g.textBaseline = 'middle';
  for (const run of r.runs) {
    if (run.toIndex < start || run.fromIndex > end) continue;
    const from = Math.max(run.fromIndex, start);
    const to = Math.min(run.toIndex, end);
    g.fillStyle = termColour(run.term, dark);
    g.globalAlpha = r.up ? 1 : 0.4;
    g.fillRect(x(from), 3, x(to + 1) - x(from), 16);
    g.globalAlpha = 1;
    // Entry borders when cells are wide enough to see.
    if (cellPx >= 6) {
      g.fillStyle = dark ? 'rgba(0,0,0,0.35)' : 'rgba(255,255,255,0.55)';
      for (let i = from; i <= to; i++) g.fillRect(x(i + 1) - 1, 3, 1, 16);
    }
    const w = x(to + 1) - x(from);
    if (w > 26) {
      g.fillStyle = '#111';
      g.fillText(`t${run.term}`, x(from) + 3, 11);
    }
  }
  const line = (index, colour, dash) => {
    if (index < start - 1 || index > end) return;
    const px = x(index + 1) - 0.5;
    g.strokeStyle = colour;
    g.lineWidth = 2;
    g.setLineDash(dash);
    g.beginPath();
    g.moveTo(px, 0);
    g.lineTo(px, cssHeight);
    g.stroke();
    g.setLineDash([]);
  };
  if (r.snapshotIndex > 0) line(r.snapshotIndex, dark ? '#aab' : '#556', [1, 2]);
  line(r.lastApplied, '#1c7ed6', [3, 2]);
  line(r.commitIndex, dark ? '#fff' : '#111', []);
  if (match !== undefined && match >= start - 1 && match <= end) {
    const px = x(match + 1);
    g.fillStyle = '#e8590c';
    g.beginPath();
    g.moveTo(px - 5, cssHeight);
    g.lineTo(px + 5, cssHeight);
    g.lineTo(px, cssHeight - 6);
    g.fill();
  }
}

// ---- network and messages in flight ---------------------------------------------------------------

export const kindColours = {
  heartbeat: '#adb5bd',
  append: '#1c7ed6',
  appendResponse: '#74c0fc',
  preVote: '#f59f00',
  preVoteResponse: '#ffd43b',
  vote: '#e8590c',
  voteResponse: '#ff922b',
  snapshot: '#9c36b5',
  snapshotResponse: '#da77f2',
  timeoutNow: '#e03131',
  readIndex: '#2f9e44',
  readIndexResponse: '#8ce99a',
};

export const kindWords = {
  heartbeat: 'heartbeat',
  append: 'AppendEntries',
  appendResponse: 'append reply',
  preVote: 'pre-vote',
  preVoteResponse: 'pre-vote reply',
  vote: 'RequestVote',
  voteResponse: 'vote reply',
  snapshot: 'InstallSnapshot',
  snapshotResponse: 'snapshot reply',
  timeoutNow: 'TimeoutNow',
  readIndex: 'ReadIndex',
  readIndexResponse: 'ReadIndex reply',
};

const W = 420;
const H = 320;
const R = 120;
const NODE_R = 30;

function positions(ids) {
  const pos = new Map();
  ids.forEach((id, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / ids.length;
    pos.set(id, { x: W / 2 + R * Math.cos(a), y: H / 2 + R * Math.sin(a) });
  });
  return pos;
}

/**
 * The replicas on a circle, a line per pair (rates on each direction; dashed red when it drops messages
 * or an end is cut or down), and the sampled messages as dots moving from sender to receiver. A dropped
 * message stops halfway with a cross. `now` places the dots (the state's own clock).
 */
export function drawNetwork(svg, state, now) {
  if (!svg.dataset.ready) {
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.append(svgEl('g', { class: 'links' }), svgEl('g', { class: 'msgs' }), svgEl('g', { class: 'nodes' }));
    svg.dataset.ready = '1';
  }
  const ids = Object.keys(state.replicas).sort(byId);
  const pos = positions(ids);
  const linksG = svg.querySelector('.links');
  const key = ids.join(',');
  if (linksG.dataset.ids !== key) {
    linksG.replaceChildren();
    svg.querySelector('.nodes').replaceChildren();
    linksG.dataset.ids = key;
  }
  for (const p of linkPairs(state)) {
    let g = linksG.querySelector(`g.link[data-a="${p.a}"][data-b="${p.b}"]`);
    const a = pos.get(p.a);
    const b = pos.get(p.b);
    if (!g) {
      g = svgEl('g', { class: 'link', 'data-a': p.a, 'data-b': p.b });
      const mx = (a.x + b.x) / 2;
      const my = (a.y + b.y) / 2;
      g.append(
        svgEl('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y }),
        svgEl('text', { class: 'rate', x: mx, y: my - 4, 'text-anchor': 'middle' }),
        svgEl('text', { class: 'cross', x: mx, y: my + 6, 'text-anchor': 'middle' }),
        svgEl('title'),
      );
      linksG.append(g);
    }
    g.classList.toggle('broken', p.broken);
    g.classList.toggle('down', p.down);
    g.classList.toggle('cut', p.cut);
    g.dataset.broken = String(p.broken);
    g.dataset.drops = String((p.ab?.dropsPerSecond ?? 0) + (p.ba?.dropsPerSecond ?? 0));
    const rate = (l) => (l ? Math.round(l.perSecond) : 0);
    const idle = rate(p.ab) === 0 && rate(p.ba) === 0;
    g.querySelector('.rate').textContent = p.down || idle ? '' : `${rate(p.ab)}→ ←${rate(p.ba)}`;
    g.querySelector('.cross').textContent = p.broken && !p.down ? '✕' : '';
    const kinds = (l) =>
      Object.entries(l?.kinds ?? {})
        .map(([k, v]) => `${kindWords[k] ?? k} ${v}/s`)
        .join(', ') || 'nothing';
    g.querySelector('title').textContent =
      `${p.a} → ${p.b}: ${kinds(p.ab)}\n${p.b} → ${p.a}: ${kinds(p.ba)}` +
      (p.cut ? '\nthe link is cut' : p.broken ? '\nmessages are being dropped' : '');
  }
  const nodesG = svg.querySelector('.nodes');
  for (const id of ids) {
    const r = state.replicas[id];
    let g = nodesG.querySelector(`g.node[data-id="${id}"]`);
    const { x, y } = pos.get(id);
    if (!g) {
      g = svgEl('g', { class: 'node', 'data-id': id });
      g.append(
        svgEl('circle', { cx: x, cy: y, r: NODE_R }),
        svgEl('text', { class: 'id', x, y: y - 4, 'text-anchor': 'middle' }),
        svgEl('text', { class: 'sub', x, y: y + 10, 'text-anchor': 'middle' }),
      );
      nodesG.append(g);
    }
    g.dataset.role = r.role;
    g.dataset.term = String(r.term);
    g.dataset.up = String(r.up);
    g.querySelector('.id').textContent = id;
    g.querySelector('.sub').textContent = r.up ? `${r.role} t${r.term}` : 'down';
  }
  drawMessages(svg.querySelector('.msgs'), state, pos, now);
}

function drawMessages(g, state, pos, now) {
  const live = state.messages.filter(
    (m) => now - m.at >= 0 && now - m.at <= FLIGHT_MS && pos.has(m.from) && pos.has(m.to),
  );
  while (g.children.length < live.length) g.append(svgEl('circle', { r: 4 }));
  for (let i = 0; i < g.children.length; i++) {
    const c = g.children[i];
    const m = live[i];
    if (!m) {
      c.setAttribute('visibility', 'hidden');
      continue;
    }
    const a = pos.get(m.from);
    const b = pos.get(m.to);
    let f = (now - m.at) / FLIGHT_MS;
    if (m.dropped) f = Math.min(f, 0.5);
    // Offset the two directions of a link so requests and replies do not overlap.
    const nx = -(b.y - a.y);
    const ny = b.x - a.x;
    const len = Math.hypot(nx, ny) || 1;
    const x = a.x + (b.x - a.x) * f + (nx / len) * 5;
    const y = a.y + (b.y - a.y) * f + (ny / len) * 5;
    c.setAttribute('visibility', 'visible');
    c.setAttribute('cx', x.toFixed(1));
    c.setAttribute('cy', y.toFixed(1));
    c.setAttribute('r', m.kind === 'heartbeat' ? 3 : 5);
    c.setAttribute('fill', m.dropped ? '#e03131' : (kindColours[m.kind] ?? '#888'));
    c.setAttribute('class', `msg ${m.kind}${m.dropped ? ' dropped' : ''}${m.ok === false ? ' refused' : ''}`);
  }
}

/** The legend of message colours. */
export function drawLegend(box) {
  if (box.children.length > 0) return;
  for (const [k, colour] of Object.entries(kindColours)) {
    const item = document.createElement('span');
    const dot = document.createElement('i');
    dot.style.background = colour;
    item.append(dot, document.createTextNode(kindWords[k]));
    box.append(item);
  }
}

// ---- timeline -------------------------------------------------------------------------------------

/**
 * The timeline under the view: a scrub bar over the frames kept, with a mark per term change (a button:
 * `onTerm(term)` answers why). `cursor` is null when live.
 */
export function drawTimeline(box, { first, last, cursor, feed, onTerm }) {
  const range = box.querySelector('input[type=range]');
  range.min = String(first);
  range.max = String(Math.max(first + 1, last));
  range.value = String(cursor ?? last);
  box.dataset.live = String(cursor === null);
  const marks = box.querySelector('.marks');
  const span = Math.max(1, last - first);
  const changes = termChanges(feed).filter((c) => c.at >= first && c.at <= last);
  // Marks are kept (not rebuilt each frame), so a click lands on the button it aimed at.
  const have = new Map([...marks.children].map((b) => [b.dataset.term, b]));
  for (const c of changes) {
    let b = have.get(String(c.term));
    have.delete(String(c.term));
    if (!b) {
      b = document.createElement('button');
      b.type = 'button';
      b.className = 'term-mark';
      b.dataset.term = String(c.term);
      b.style.borderColor = termColour(c.term);
      b.textContent = `t${c.term}`;
      b.title = `term ${c.term} began (${c.id}): click for why`;
      b.addEventListener('click', () => onTerm(c.term, c.at));
      marks.append(b);
    }
    b.dataset.at = String(c.at);
    b.style.left = `${((c.at - first) / span) * 100}%`;
  }
  for (const b of have.values()) b.remove();
  const at = cursor ?? last;
  const t = new Date(at);
  box.querySelector('.when').textContent =
    cursor === null
      ? 'live'
      : `${t.toTimeString().slice(0, 8)}.${String(t.getMilliseconds()).padStart(3, '0')}`;
}
