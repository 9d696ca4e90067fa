// The simulator replay page (/cluster/replay): opens a trace file that `make sim` wrote (a file picker
// or a drop; the file is read in the browser, nothing leaves it), and plays the recorded run in the
// live view's drawings (cluster-draw.js) with play, pause, step and scrub. The invariant that failed is
// marked on the timeline at its moment and said in words.

import { drawLegend, drawNetwork, drawStrips, drawTimeline } from './cluster-draw.js';
import { whyElection } from './cluster-model.js';
import { SCALE, buildReplay, eventAt, parseTrace } from './replay-trace.js';

const $ = (sel, root = document) => root.querySelector(sel);
const FEED_MAX = 12;

/** The loaded replay, and where it stands: the event index and the view-clock time. */
let replay = null;
const pos = { index: 0, at: 0, playing: false };
const strips = { back: 0, cellPx: 8 };
const cards = new Map();

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const ms = (viewAt) => `${(viewAt / SCALE).toFixed(3)} ms`;

async function open(file) {
  const error = $('#load-error');
  error.textContent = '';
  let parsed;
  try {
    parsed = parseTrace(await file.text());
  } catch (e) {
    error.textContent = `${file.name}: ${e.message}`;
    return;
  }
  replay = buildReplay(parsed);
  const { header, end, failure } = parsed;
  const bug = header.run?.plantedBug ? ` · planted bug: ${header.run.plantedBug}` : '';
  $('#summary').textContent =
    `${file.name} · seed ${header.seed}${bug} · ${parsed.events.length} events over ${end.t.toFixed(0)} simulated ms · ${end.ok ? 'passed' : 'FAILED'}`;
  $('#player').hidden = false;
  $('#cards').replaceChildren();
  cards.clear();
  for (const id of header.nodes) addCard(id);
  const box = $('#failure');
  const mark = $('#timeline .failure-mark');
  box.hidden = !failure;
  mark.hidden = !failure;
  $('#to-failure').hidden = !failure;
  if (failure) {
    const i = parsed.events.indexOf(failure);
    box.dataset.index = String(i);
    box.dataset.at = String(failure.t);
    mark.title = `the invariant failed here (${failure.t.toFixed(3)} ms)`;
  }
  go(0);
}

function addCard(id) {
  const card = el('section', 'card');
  card.dataset.id = id;
  const head = el('div', 'head');
  head.append(el('h2', 'name', id), el('span', 'role', '…'));
  const where = el('p', 'where');
  where.append(el('span', 'state', '–'), el('span', 'leader-label', ' · leader '), el('span', 'leader', '–'));
  const facts = el('dl', 'facts');
  for (const k of ['term', 'commit', 'applied', 'last', 'snapshot']) {
    const cell = el('div');
    cell.append(el('dt', '', k), el('dd', k, '–'));
    facts.append(cell);
  }
  card.append(head, where, facts, el('ol', 'feed'));
  $('#cards').append(card);
  cards.set(id, card);
}

function drawCard(card, r, feed) {
  if (!r) return;
  card.dataset.up = String(r.up);
  card.dataset.role = r.up ? r.role : 'unreachable';
  card.classList.toggle('down', !r.up);
  card.classList.toggle('leader', r.up && r.role === 'leader');
  card.querySelector('.role').textContent = r.up ? r.role : 'down';
  card.querySelector('.state').textContent = r.up ? r.state : 'crashed';
  card.querySelector('.leader').textContent = r.up ? (r.leaderId ?? 'none') : '–';
  card.querySelector('.term').textContent = String(r.term);
  card.querySelector('.commit').textContent = String(r.commitIndex);
  card.querySelector('.applied').textContent = String(r.lastApplied);
  card.querySelector('.last').textContent = String(r.lastLogIndex);
  card.querySelector('.snapshot').textContent = String(r.snapshotIndex);
  const mine = feed
    .filter((f) => f.id === card.dataset.id)
    .slice(-FEED_MAX)
    .reverse();
  const list = card.querySelector('.feed');
  if (list.dataset.count === String(mine.length) && list.dataset.top === String(mine[0]?.seq)) return;
  list.dataset.count = String(mine.length);
  list.dataset.top = String(mine[0]?.seq);
  list.replaceChildren(
    ...mine.map((f) => {
      const li = el('li');
      if (f.to.startsWith('leader') && !f.from.startsWith('leader')) li.className = 'won';
      else if (f.to === 'candidate' || f.to === 'preCandidate') li.className = 'election';
      li.append(el('time', '', ms(f.at)), el('span', 'text', f.text), el('span', 'term', `t${f.term}`));
      return li;
    }),
  );
}

/** Moves to event `index` (its moment), or to view time `at` when given (scrubbing, playing). */
function go(index, at) {
  if (!replay) return;
  const last = replay.frames.length - 1;
  if (at === undefined) {
    pos.index = Math.max(0, Math.min(index, last));
    pos.at = replay.frames[pos.index].at;
  } else {
    pos.at = Math.max(replay.frames[0].at, Math.min(at, replay.frames[last].at));
    pos.index = eventAt(replay.frames, pos.at);
  }
  draw();
}

function describe(e) {
  switch (e.k) {
    case 'status':
      return `${e.node}: ${e.role === 'down' ? 'down' : `${e.role}, term ${e.term}, commit ${e.commit}, applied ${e.applied}, last ${e.last}`}`;
    case 'send':
      return `send ${e.text ?? `${e.from}→${e.to} ${e.type}`}`;
    case 'deliver':
    case 'drop':
    case 'duplicate':
      return `${e.k} ${e.from}→${e.to} ${e.type} t${e.term}${e.why ? ` (${e.why})` : ''}`;
    case 'fault':
      return `fault: ${e.what}${e.node ? ` ${e.node}` : ''}${e.detail ? `: ${e.detail}` : ''}`;
    case 'transition':
      return `${e.node}: ${e.from} → ${e.to} (${e.event})`;
    case 'failure':
      return `INVARIANT FAILED: ${e.message}`;
    default:
      return e.k;
  }
}

function draw() {
  const { trace, frames } = replay;
  const state = replay.stateAt(pos.index);
  drawNetwork($('#network'), state, pos.at);
  drawStrips($('#strips'), state, strips);
  for (const [id, card] of cards) drawCard(card, state.replicas[id], state.feed);
  const first = frames[0].at;
  const last = frames[frames.length - 1].at;
  drawTimeline($('#timeline'), { first, last, cursor: pos.at, feed: state.feed, onTerm: explain });
  $('#timeline .when').textContent = ms(pos.at);
  $('#scrub').step = 'any';
  const e = trace.events[pos.index];
  $('#position').textContent = `event ${pos.index + 1} of ${frames.length} · ${ms(pos.at)}`;
  $('#position').dataset.index = String(pos.index);
  $('#event').textContent = e ? describe(e) : '';
  const box = $('#failure');
  if (trace.failure) {
    // The checker dates its sentence by its last observation; the record's time is the run's moment.
    const message = trace.failure.message.replace(/^t=[\d.]+ms: /, '');
    const fi = Number(box.dataset.index);
    const reached = pos.index >= fi;
    box.dataset.reached = String(reached);
    document.body.classList.toggle('failed-now', reached);
    box.textContent = reached
      ? `Invariant failed at ${trace.failure.t.toFixed(3)} simulated ms (event ${fi + 1}): ${message}`
      : `This run fails at ${trace.failure.t.toFixed(3)} simulated ms (event ${fi + 1}, marked red on the timeline): ${message}`;
    const mark = $('#timeline .failure-mark');
    mark.style.left = `${((trace.failure.t * SCALE - first) / Math.max(1, last - first)) * 100}%`;
  }
  $('#play').textContent = pos.playing ? 'Pause' : 'Play';
}

function explain(term) {
  const why = whyElection(replay.feed, term);
  const box = $('#why');
  box.hidden = false;
  box.dataset.term = String(term);
  box.textContent = why?.text ?? `Term ${term}: its start is not in this trace.`;
  if (why) go(0, why.at);
}

// Playing: the cursor moves `speed` simulated ms per real second.
let lastTick = 0;
function tick(now) {
  if (pos.playing && replay) {
    const speed = Number($('#speed').value);
    const dt = Math.min(100, now - (lastTick || now));
    go(0, pos.at + (dt / 1000) * speed * SCALE);
    if (pos.index >= replay.frames.length - 1) pos.playing = false;
  }
  lastTick = now;
  requestAnimationFrame(tick);
}

$('#file').addEventListener('change', (e) => {
  const f = e.target.files?.[0];
  if (f) open(f);
});
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  const f = e.dataTransfer?.files?.[0];
  if (f) open(f);
});
$('#open').addEventListener('submit', (e) => e.preventDefault());
$('#play').addEventListener('click', () => {
  pos.playing = !pos.playing;
  draw();
});
$('#step').addEventListener('click', () => {
  pos.playing = false;
  go(pos.index + 1);
});
$('#back').addEventListener('click', () => {
  pos.playing = false;
  go(pos.index - 1);
});
$('#to-failure').addEventListener('click', () => {
  pos.playing = false;
  go(Number($('#failure').dataset.index));
});
$('#scrub').addEventListener('input', (e) => {
  pos.playing = false;
  go(0, Number(e.target.value));
});
$('#zoom').addEventListener('change', (e) => {
  strips.cellPx = Number(e.target.value);
  if (replay) draw();
});
drawLegend($('#legend'));
requestAnimationFrame(tick);
