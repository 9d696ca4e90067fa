// The live cluster view: the live data source and the controls. Each member's own /cluster/events
// stream (its inspector) feeds one view state (cluster-model.js), so what the page shows of a replica is
// what the replica itself says, and a dead replica goes grey while the others carry on. Members and
// their HTTP URLs come from /cluster/status of any member. Everything drawn is drawn from the view
// state by cluster-draw.js (and the cards here): live, the current state; scrubbed back on the
// timeline, a frame the History kept. A replay feeds recorded states into the same functions.

import { drawLegend, drawNetwork, drawTimeline, drawView } from './cluster-draw.js';
import {
  History,
  applyDown,
  applyStatus,
  applyTraffic,
  applyTransition,
  emptyState,
  expireMessages,
  removeReplica,
  whyElection,
} from './cluster-model.js';

import { feedText, openCharts } from './charts.js';

const FEED_MAX = 100;
/** A frame for the timeline this often (ms). */
const FRAME_MS = 250;
const STALE_MS = 3000;
const $ = (sel, root = document) => root.querySelector(sel);

/** id → { id, http, card, es, view, up, lastSeen, nodes } */
const members = new Map();
let chartText = null;
let controls = [];
const known = new Set([location.origin]);
/** The live view state, and the frames of the last minutes. */
const live = emptyState(Date.now());
const history = new History();
/** null: live; else the time scrubbed to. */
let cursor = null;
/** Log strips: entries scrolled back from the newest, and the cell width. */
const strips = { back: 0, cellPx: 8 };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function getJson(url, ms = 1500) {
  const res = await fetch(url, { signal: AbortSignal.timeout(ms), cache: 'no-store' });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/** The member list from the first replica that answers (this page's own first). */
async function refreshMembers() {
  for (const base of known) {
    try {
      const s = await getJson(`${base}/cluster/status`);
      controls = s.controls ?? [];
      $('#dev').hidden = controls.length === 0;
      drawCutChoices();
      const ids = new Set();
      for (const m of s.members) {
        if (!m.http) continue;
        ids.add(m.id);
        known.add(m.http);
        const cur = members.get(m.id);
        if (!cur) addMember(m.id, m.http);
        else if (cur.http !== m.http) {
          removeMember(m.id);
          addMember(m.id, m.http);
        }
      }
      for (const id of [...members.keys()]) if (!ids.has(id)) removeMember(id);
      if (!chartText)
        chartText = await fetch(`${base}/cluster/chart.svg`).then((r) => (r.ok ? r.text() : null));
      for (const m of members.values()) if (chartText && !m.nodes) drawChart(m);
      return;
    } catch {
      // Try the next member.
    }
  }
}

function addMember(id, http) {
  const card = el('section', 'card down');
  card.dataset.id = id;
  card.dataset.up = 'false';
  const head = el('div', 'head');
  head.append(el('h2', 'name', id), el('span', 'role', '…'));
  const where = el('p', 'where');
  where.append(el('span', 'state', '–'), el('span', 'leader-label', ' · leader '), el('span', 'leader', '–'));
  const facts = el('dl', 'facts');
  // loop: p99 event-loop delay (it delays election timers); fsync: p99 of recent log fsyncs.
  const labels = { loop: 'loop p99 ms', fsync: 'fsync p99 ms' };
  for (const k of ['term', 'commit', 'applied', 'lag', 'loop', 'fsync']) {
    const cell = el('div');
    cell.append(el('dt', '', labels[k] ?? k), el('dd', k, '–'));
    facts.append(cell);
  }
  const buttons = el('div', 'controls');
  const chart = el('div', 'chart');
  const feed = el('ol', 'feed');
  card.append(head, where, facts, buttons, chart, feed);
  // Clicking a replica (not one of its buttons or its feed) opens its state charts (charts.js).
  const open = () => openCharts(members.get(id) ?? { id, http });
  chart.title = 'click for the state charts';
  const chartsButton = el('button', 'charts-open', 'Charts');
  chartsButton.type = 'button';
  chartsButton.addEventListener('click', open);
  head.append(chartsButton);
  card.addEventListener('click', (e) => {
    if (!e.target.closest('button, input, select, a, .feed')) open();
  });
  const cards = $('#cards');
  const after = [...cards.children].find(
    (c) => c.dataset.id.localeCompare(id, undefined, { numeric: true }) > 0,
  );
  cards.insertBefore(card, after ?? null);
  const m = { id, http, card, es: null, view: null, up: false, lastSeen: 0, nodes: null, retry: null };
  members.set(id, m);
  if (chartText) drawChart(m);
  drawControls(m);
  drawCutChoices();
  connect(m);
}

function removeMember(id) {
  const m = members.get(id);
  if (!m) return;
  m.es?.close();
  clearTimeout(m.retry);
  m.card.remove();
  members.delete(id);
  removeReplica(live, id);
  drawCutChoices();
}

function connect(m) {
  m.es?.close();
  const es = new EventSource(`${m.http}/cluster/events`);
  m.es = es;
  es.addEventListener('snapshot', (e) => {
    const { view, feed } = JSON.parse(e.data);
    m.card.querySelector('.feed').replaceChildren();
    for (const f of feed) addFeed(m, f);
    setView(m, view);
    // The timeline has the replica from the moment the page knows it, not from the next tick.
    recordFrame();
  });
  es.addEventListener('status', (e) => setView(m, JSON.parse(e.data)));
  es.addEventListener('transition', (e) => addFeed(m, JSON.parse(e.data)));
  es.addEventListener('traffic', (e) => applyTraffic(live, m.id, JSON.parse(e.data), Date.now()));
  es.onerror = () => {
    setUp(m, false);
    // A refused connection or an error status closes the stream for good: reopen it ourselves.
    if (es.readyState === EventSource.CLOSED) {
      clearTimeout(m.retry);
      m.retry = setTimeout(() => members.get(m.id) === m && connect(m), 1000);
    }
  };
}

function setUp(m, up) {
  if (m.up === up) return;
  m.up = up;
  m.card.dataset.up = String(up);
  m.card.classList.toggle('down', !up);
  if (!up) {
    m.card.querySelector('.role').textContent = 'unreachable';
    applyDown(live, m.id, Date.now());
  }
  // A card's buttons depend on which members are up (a down one is started through a live one).
  for (const x of members.values()) drawControls(x);
  summarize();
}

function setView(m, v) {
  m.view = v;
  m.lastSeen = Date.now();
  applyStatus(live, v, Date.now());
  setUp(m, true);
  if (cursor === null) drawCard(m, live.replicas[m.id]);
  drawControls(m);
  summarize();
}

/** A card's facts from a replica of the view state (live, or a frame of the timeline). */
function drawCard(m, r) {
  if (!r) return;
  const c = m.card;
  c.dataset.role = r.up ? r.role : 'unreachable';
  c.classList.toggle('leader', r.up && r.role === 'leader');
  c.dataset.state = r.state;
  c.dataset.term = String(r.term);
  c.querySelector('.role').textContent = r.up ? r.role : 'unreachable';
  c.querySelector('.state').textContent = r.state;
  c.querySelector('.term').textContent = String(r.term);
  c.querySelector('.leader').textContent = r.leaderId ?? 'none';
  c.querySelector('.commit').textContent = String(r.commitIndex);
  c.querySelector('.applied').textContent = String(r.lastApplied);
  c.querySelector('.loop').textContent = r.loopLagP99Ms === undefined ? '–' : String(r.loopLagP99Ms);
  c.querySelector('.fsync').textContent = r.fsyncP99Ms === undefined ? '–' : String(r.fsyncP99Ms);
  highlight(m, r.state);
}

function addFeed(m, f) {
  applyTransition(live, m.id, f);
  const list = m.card.querySelector('.feed');
  const li = el('li');
  if (f.to.startsWith('leader') && !f.from.startsWith('leader')) li.className = 'won';
  else if (f.to === 'candidate' || f.to === 'preCandidate') li.className = 'election';
  li.dataset.term = String(f.term);
  const t = new Date(f.at);
  const time = `${t.toTimeString().slice(0, 8)}.${String(t.getMilliseconds()).padStart(3, '0')}`;
  li.append(el('time', '', time), feedText(f.text), el('span', 'term', `t${f.term}`));
  list.prepend(li);
  while (list.children.length > FEED_MAX) list.lastElementChild.remove();
}

/** Inline the chart and index its state nodes by their <title> (Graphviz: `leader_active`, `cluster_leader`). */
function drawChart(m) {
  const box = m.card.querySelector('.chart');
  box.innerHTML = chartText;
  const svg = box.querySelector('svg');
  if (!svg) return;
  svg.removeAttribute('width');
  svg.removeAttribute('height');
  m.nodes = new Map();
  for (const g of svg.querySelectorAll('g.node, g.cluster')) {
    const title = g.querySelector(':scope > title')?.textContent;
    if (!title) continue;
    // Notes explain the chart in the README; in a card they only hide the states.
    if (title.endsWith('__note')) g.classList.add('note');
    else m.nodes.set(title, g);
  }
  for (const g of svg.querySelectorAll('g.edge')) {
    const title = g.querySelector(':scope > title')?.textContent ?? '';
    if (title.includes('__note')) g.classList.add('note');
  }
  if (m.view) highlight(m, m.view.state);
}

function highlight(m, state) {
  if (!m.nodes) return;
  for (const g of m.nodes.values()) g.classList.remove('active');
  const parts = state.split('.');
  for (let i = 1; i <= parts.length; i++) {
    const id = parts.slice(0, i).join('_');
    m.nodes.get(id)?.classList.add('active');
    m.nodes.get(`cluster_${id}`)?.classList.add('active');
  }
}

function drawControls(m) {
  const box = m.card.querySelector('.controls');
  if (controls.length === 0) {
    box.replaceChildren();
    return;
  }
  if (box.children.length === 0) {
    const add = (action, label, body) => {
      const b = el('button', action, label);
      b.type = 'button';
      b.addEventListener('click', () => control(m, { action, ...body }));
      box.append(b);
    };
    if (controls.includes('transfer')) add('transfer', 'Transfer leadership', {});
    if (controls.includes('pause')) add('pause', 'Pause 5 s', { seconds: 5 });
    if (controls.includes('stop')) add('stop', 'Stop', {});
    if (controls.includes('restart')) add('restart', 'Restart', { id: m.id });
  }
  const transfer = box.querySelector('.transfer');
  if (transfer) transfer.disabled = !m.up || m.view?.role !== 'leader';
  for (const b of box.querySelectorAll('.pause, .stop')) b.disabled = !m.up;
  // The launcher restarts a live replica (kill -9, then a start from its data dir) or starts a down one;
  // any live member passes the request on, so a down card can be brought back too.
  const restart = box.querySelector('.restart');
  if (restart) {
    restart.textContent = m.up ? 'Restart' : 'Start';
    restart.title = m.up ? 'kill -9, then start again from its data dir' : 'start again from its data dir';
    restart.disabled = relayFor(m) === undefined;
  }
}

/** The member that carries a control for `m`: itself when up; for a restart or start, any live one. */
function relayFor(m, action = 'restart') {
  if (m.up) return m;
  if (action !== 'restart') return undefined;
  return [...members.values()].find((x) => x.up);
}

async function control(m, body) {
  const notice = $('#dev-notice');
  const secret = $('#secret').value;
  if (!secret) {
    notice.textContent = 'Enter the cluster secret first.';
    return;
  }
  const via = relayFor(m, body.action);
  if (!via) {
    notice.textContent = `${m.id} is down; no live member can pass the request on.`;
    return;
  }
  notice.textContent = `${body.action} ${m.id}…`;
  try {
    const res = await fetch(`${via.http}/cluster/control`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const out = await res.json().catch(() => ({}));
    notice.textContent = out.message ?? out.error ?? `HTTP ${res.status}`;
  } catch (err) {
    notice.textContent = `${via.id} did not answer: ${err.message}`;
  }
}

/** The header line, and each card's lag (entries behind the highest commit index any replica reports). */
function summarize() {
  if (cursor !== null) return;
  const up = [...members.values()].filter((m) => m.up && m.view);
  const leaders = up.filter((m) => m.view.role === 'leader');
  const top = Math.max(0, ...up.map((m) => m.view.commitIndex));
  for (const m of members.values()) {
    m.card.querySelector('.lag').textContent =
      m.up && m.view ? String(Math.max(0, top - m.view.lastApplied)) : '–';
    m.card.classList.toggle('leader', m.up && m.view?.role === 'leader');
  }
  const term = Math.max(0, ...up.map((m) => m.view.term));
  const who =
    leaders.length === 1
      ? `leader ${leaders[0].id}`
      : leaders.length === 0
        ? 'no leader'
        : `${leaders.length} leaders`;
  const s = $('#summary');
  s.textContent = `${up.length}/${members.size} up · ${who} · term ${term}`;
  s.dataset.leaders = String(leaders.length);
}

// ---- fault controls: cut a link, heal all ----------------------------------------------------------

function drawCutChoices() {
  const ids = [...members.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  for (const sel of [$('#cut-a'), $('#cut-b')]) {
    const keep = sel.value;
    sel.replaceChildren(...ids.map((id) => new Option(id, id)));
    if (ids.includes(keep)) sel.value = keep;
  }
  if ($('#cut-a').value === $('#cut-b').value && ids.length > 1) $('#cut-b').value = ids[1];
  const on = controls.includes('cut');
  $('#links').hidden = !on;
}

/** POST one control to the replica at `m` (no relay); the answer's message, or why it failed. */
async function post(m, body) {
  try {
    const res = await fetch(`${m.http}/cluster/control`, {
      method: 'POST',
      headers: { authorization: `Bearer ${$('#secret').value}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const out = await res.json().catch(() => ({}));
    return { ok: res.ok, text: out.message ?? out.error ?? `HTTP ${res.status}` };
  } catch (err) {
    return { ok: false, text: `${m.id} did not answer: ${err.message}` };
  }
}

/** Cut a–b at both ends (each drops the other's messages both ways), so either end alone suffices. */
async function cutLink() {
  const notice = $('#dev-notice');
  if (!$('#secret').value) {
    notice.textContent = 'Enter the cluster secret first.';
    return;
  }
  const [a, b] = [$('#cut-a').value, $('#cut-b').value];
  if (a === b) {
    notice.textContent = 'Choose two different replicas.';
    return;
  }
  const ends = [members.get(a), members.get(b)].filter((m) => m?.up);
  if (ends.length === 0) {
    notice.textContent = `${a} and ${b} are both down.`;
    return;
  }
  const out = await Promise.all(ends.map((m) => post(m, { action: 'cut', peer: m.id === a ? b : a })));
  notice.textContent = out.every((o) => o.ok)
    ? `The link ${a} ↔ ${b} is cut.`
    : out.map((o) => o.text).join(' ');
}

async function healAll() {
  const notice = $('#dev-notice');
  if (!$('#secret').value) {
    notice.textContent = 'Enter the cluster secret first.';
    return;
  }
  const up = [...members.values()].filter((m) => m.up);
  const out = await Promise.all(up.map((m) => post(m, { action: 'heal' })));
  notice.textContent = out.every((o) => o.ok)
    ? `All links healed (${up.length} replicas).`
    : out.map((o) => o.text).join(' ');
}

$('#cut').addEventListener('click', cutLink);
$('#heal').addEventListener('click', healAll);

// ---- drawing: live, or a frame of the timeline ---------------------------------------------------

function frameNow() {
  if (cursor === null) return { ...live, at: Date.now() };
  return history.at(cursor, live.feed) ?? { ...live, at: Date.now() };
}

let lastStrips = 0;
let lastDraw = 0;
/** Frames drawn per second at most: the dots move smoothly at 30, at half the CPU of 60. */
const FPS = 30;
function draw() {
  const now = Date.now();
  if (now - lastDraw >= 1000 / FPS - 2) paint(now);
  requestAnimationFrame(draw);
}

/** Draw the frame shown now (live, or scrubbed back); `all` redraws the strips, cards and timeline too. */
function paint(now, all = now - lastStrips >= 100) {
  lastDraw = now;
  if (cursor === null) expireMessages(live, now);
  const frame = frameNow();
  // The strips change with the status ticks: ten redraws a second are plenty; the messages move on
  // every frame.
  if (!all) {
    drawNetwork($('#network'), frame, frame.at);
    return;
  }
  lastStrips = now;
  drawView({ network: $('#network'), strips: $('#strips') }, frame, { now: frame.at, strips });
  if (cursor !== null) for (const m of members.values()) drawCard(m, frame.replicas[m.id]);
  drawTimeline($('#timeline'), {
    first: history.first,
    last: history.last,
    cursor,
    feed: live.feed,
    onTerm: explain,
  });
  const newest = Math.max(0, ...Object.values(frame.replicas).map((r) => r.lastLogIndex));
  const scroll = $('#strip-scroll');
  scroll.max = String(Math.max(0, newest));
  scroll.value = String(Math.max(0, newest - strips.back));
}

/** Scrub to a term change and say why it happened. */
function explain(term, at) {
  const why = whyElection(live.feed, term);
  const box = $('#why');
  box.hidden = false;
  box.dataset.term = String(term);
  box.textContent = why?.text ?? `Term ${term}: its start is older than this page's feed.`;
  travel(Math.min(history.last, (why?.at ?? at) + 1));
}

function travel(t) {
  cursor = t === null || t >= history.last ? null : Math.max(history.first, t);
  document.body.classList.toggle('past', cursor !== null);
  if (cursor === null) {
    for (const m of members.values()) drawCard(m, live.replicas[m.id]);
    summarize();
  }
  // At once, not at the next tick: what the timeline says and what is drawn change together.
  paint(Date.now(), true);
}

$('#scrub').addEventListener('input', (e) => travel(Number(e.target.value)));
$('#live').addEventListener('click', () => {
  $('#why').hidden = true;
  travel(null);
});
$('#strips').addEventListener(
  'wheel',
  (e) => {
    e.preventDefault();
    const d = (Math.abs(e.deltaX) > Math.abs(e.deltaY) ? e.deltaX : -e.deltaY) / strips.cellPx;
    strips.back = Math.max(0, Math.round(strips.back - d));
    lastStrips = 0;
  },
  { passive: false },
);
$('#strip-scroll').addEventListener('input', (e) => {
  strips.back = Math.max(0, Number(e.target.max) - Number(e.target.value));
  lastStrips = 0;
});
$('#newest').addEventListener('click', () => {
  strips.back = 0;
  lastStrips = 0;
});
$('#zoom').addEventListener('change', (e) => {
  strips.cellPx = Number(e.target.value);
  lastStrips = 0;
});
// A frame every FRAME_MS (and one as each replica's stream opens), the first one now, before any
// stream is open: the timeline covers the whole time the page is open, so a term change in its first
// moments still gets a mark (a mark is drawn only inside the frames kept).
function recordFrame() {
  live.at = Date.now();
  history.record(live);
}
recordFrame();
setInterval(recordFrame, FRAME_MS);
drawLegend($('#legend'));
requestAnimationFrame(draw);

// A replica whose stream went quiet (a stopped process keeps its socket) is shown as unreachable.
setInterval(() => {
  for (const m of members.values()) if (m.up && Date.now() - m.lastSeen > STALE_MS) setUp(m, false);
}, 1000);

// The cluster secret lives only in the password field, in this page's memory: never in sessionStorage
// or localStorage, where it would outlive the page on the chat app's origin and be readable by any
// script there. Earlier versions kept it in sessionStorage: remove what they left.
sessionStorage.removeItem('qc-secret');
$('#dev').addEventListener('submit', (e) => e.preventDefault());
await refreshMembers();
setInterval(refreshMembers, 3000);
