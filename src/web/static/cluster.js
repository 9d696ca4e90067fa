// The live cluster view: one card per member, each fed by that member's own /cluster/events stream
// (its inspector), so a card shows what the replica itself says, and a dead replica's card goes grey
// while the others carry on. Members and their HTTP URLs come from /cluster/status of any member.

import { feedText, openCharts } from './charts.js';

const FEED_MAX = 100;
const STALE_MS = 3000;
const $ = (sel, root = document) => root.querySelector(sel);

/** id → { id, http, card, es, view, up, lastSeen, nodes } */
const members = new Map();
let chartText = null;
let controls = [];
const known = new Set([location.origin]);

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
  connect(m);
}

function removeMember(id) {
  const m = members.get(id);
  if (!m) return;
  m.es?.close();
  clearTimeout(m.retry);
  m.card.remove();
  members.delete(id);
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
  });
  es.addEventListener('status', (e) => setView(m, JSON.parse(e.data)));
  es.addEventListener('transition', (e) => addFeed(m, JSON.parse(e.data)));
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
  if (!up) m.card.querySelector('.role').textContent = 'unreachable';
  // A card's buttons depend on which members are up (a down one is started through a live one).
  for (const x of members.values()) drawControls(x);
  summarize();
}

function setView(m, v) {
  m.view = v;
  m.lastSeen = Date.now();
  setUp(m, true);
  const c = m.card;
  c.dataset.role = v.role;
  c.dataset.state = v.state;
  c.dataset.term = String(v.term);
  c.querySelector('.role').textContent = v.role;
  c.querySelector('.state').textContent = v.state;
  c.querySelector('.term').textContent = String(v.term);
  c.querySelector('.leader').textContent = v.leaderId ?? 'none';
  c.querySelector('.commit').textContent = String(v.commitIndex);
  c.querySelector('.applied').textContent = String(v.lastApplied);
  c.querySelector('.loop').textContent = v.loopLagP99Ms === undefined ? '–' : String(v.loopLagP99Ms);
  c.querySelector('.fsync').textContent = v.fsyncP99Ms === undefined ? '–' : String(v.fsyncP99Ms);
  highlight(m, v.state);
  drawControls(m);
  summarize();
}

function addFeed(m, f) {
  const list = m.card.querySelector('.feed');
  const li = el('li');
  if (f.to.startsWith('leader') && !f.from.startsWith('leader')) li.className = 'won';
  else if (f.to === 'candidate' || f.to === 'preCandidate') li.className = 'election';
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
