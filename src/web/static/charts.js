// The chart dialog of the /cluster page: a replica's replica, replication and chat charts at a size
// where every state and event name can be read (zoom and pan), as an overview (roles and main
// transitions in plain words) or the full reference. The active states are lit, and each transition
// is animated as it fires. The charts are the generated diagrams/ (served at /cluster/charts/); the
// states come from the replica's own inspector stream (/cluster/events), opened while the dialog is.
//
// Usage from the page: `openCharts({ id, http })`, and `feedText(text)` for a feed line that wraps
// between tokens only. Everything else is this module's.

const MACHINES = ['replica', 'replication', 'chat'];
const LEVELS = { overview: 'Overview', reference: 'Reference' };
const FIRE_MS = 1800;
const ZOOMS = [0.5, 0.67, 0.75, 0.8, 1, 1.25, 1.5, 2];
/** The overview opens fitted to the window down to this zoom (its smallest text is then 12 px);
 *  the reference opens at 100% (its notes are 12 px there) and is panned. */
const MIN_OPEN_ZOOM = 0.75;

const texts = new Map();
let ui = null;
/** What the dialog shows: { member, es, view, states, machine, level, zoom, feed } */
let cur = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(cls, label, onClick, title) {
  const b = el('button', cls, label);
  b.type = 'button';
  if (title) b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

/** The dialog, built once. */
function build() {
  const dialog = el('dialog', 'charts');
  dialog.id = 'charts';
  dialog.setAttribute('aria-labelledby', 'charts-title');
  const head = el('header', 'charts-head');
  const title = el('h2', 'charts-title');
  title.id = 'charts-title';
  const state = el('p', 'charts-state');
  state.setAttribute('role', 'status');
  const close = button('charts-close', '×', () => dialog.close(), 'close (Esc)');
  close.setAttribute('aria-label', 'close');
  head.append(title, state, close);

  const bar = el('div', 'charts-bar');
  const tabs = el('div', 'charts-tabs');
  tabs.setAttribute('role', 'tablist');
  for (const m of MACHINES) {
    const t = button('charts-tab', m, () => show({ machine: m }));
    t.dataset.machine = m;
    t.setAttribute('role', 'tab');
    tabs.append(t);
  }
  const levels = el('div', 'charts-levels');
  for (const [level, label] of Object.entries(LEVELS)) {
    const b = button('charts-level', label, () => show({ level }));
    b.dataset.level = level;
    levels.append(b);
  }
  const zoom = el('div', 'charts-zoom');
  zoom.append(
    button('zoom-out', '−', () => setZoom(step(-1)), 'zoom out'),
    button('zoom-reset', '100%', () => setZoom(1), 'actual size'),
    button('zoom-in', '+', () => setZoom(step(1)), 'zoom in'),
    button('zoom-fit', 'fit', () => setZoom(fitZoom()), 'fit the window (may be too small to read)'),
  );
  bar.append(tabs, levels, zoom);

  const view = el('div', 'charts-view');
  view.tabIndex = 0;
  const note = el('p', 'charts-note');
  const feed = el('ol', 'charts-feed');
  feed.setAttribute('aria-label', 'transitions as they fire');
  dialog.append(head, bar, note, view, feed);
  document.body.append(dialog);
  dialog.addEventListener('close', stop);
  pan(view);
  return { dialog, title, state, tabs, levels, zoom, view, note, feed };
}

/** Drag to pan; ctrl + wheel to zoom. */
function pan(view) {
  let drag = null;
  view.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, left: view.scrollLeft, top: view.scrollTop };
    view.setPointerCapture(e.pointerId);
    view.classList.add('panning');
  });
  view.addEventListener('pointermove', (e) => {
    if (!drag) return;
    view.scrollLeft = drag.left - (e.clientX - drag.x);
    view.scrollTop = drag.top - (e.clientY - drag.y);
  });
  const end = () => {
    drag = null;
    view.classList.remove('panning');
  };
  view.addEventListener('pointerup', end);
  view.addEventListener('pointercancel', end);
  view.addEventListener(
    'wheel',
    (e) => {
      if (!e.ctrlKey) return;
      e.preventDefault();
      setZoom(step(e.deltaY < 0 ? 1 : -1));
    },
    { passive: false },
  );
}

function step(dir) {
  const z = cur?.zoom ?? 1;
  const i = ZOOMS.findIndex((x) => x >= z - 1e-9);
  const at = i < 0 ? ZOOMS.length - 1 : i;
  return ZOOMS[Math.max(0, Math.min(ZOOMS.length - 1, at + dir))];
}

function fitZoom() {
  const svg = ui.view.querySelector('svg');
  if (!svg) return 1;
  const { w, h } = naturalSize(svg);
  return Math.min(1, (ui.view.clientWidth - 8) / w, (ui.view.clientHeight - 8) / h);
}

/** The SVG's size at 100% (Graphviz writes it in points). */
function naturalSize(svg) {
  const [, , w, h] = (svg.getAttribute('viewBox') ?? '0 0 800 600').split(/\s+/).map(Number);
  return { w: (w * 4) / 3, h: (h * 4) / 3 };
}

function setZoom(z) {
  if (!cur) return;
  cur.zoom = z;
  const svg = ui.view.querySelector('svg');
  if (svg) {
    const { w, h } = naturalSize(svg);
    svg.style.width = `${Math.round(w * z)}px`;
    svg.style.height = `${Math.round(h * z)}px`;
  }
  ui.zoom.querySelector('.zoom-reset').textContent = `${Math.round(z * 100)}%`;
}

async function chartText(machine, level) {
  const file = level === 'overview' ? `${machine}.overview.svg` : `${machine}.svg`;
  if (!texts.has(file)) {
    texts.set(
      file,
      fetch(`/cluster/charts/${file}`, { cache: 'no-cache' }).then((r) =>
        r.ok ? r.text() : Promise.reject(new Error(`${file}: HTTP ${r.status}`)),
      ),
    );
  }
  try {
    return await texts.get(file);
  } catch (err) {
    texts.delete(file);
    throw err;
  }
}

/** Opens the dialog on member `{ id, http }` (its own inspector stream feeds it). */
export function openCharts(member) {
  ui ??= build();
  stop();
  cur = {
    member,
    es: null,
    view: null,
    states: null,
    machine: 'replica',
    level: 'overview',
    zoom: 1,
  };
  ui.dialog.dataset.replica = member.id;
  ui.title.textContent = `${member.id}: state charts`;
  ui.state.textContent = 'connecting…';
  ui.feed.replaceChildren();
  ui.dialog.dataset.fired = '';
  if (!ui.dialog.open) ui.dialog.showModal();
  connect(cur);
  show({});
}

function stop() {
  cur?.es?.close();
  if (cur) cur.es = null;
}

function connect(c) {
  const es = new EventSource(`${c.member.http}/cluster/events`);
  c.es = es;
  es.addEventListener('snapshot', (e) => {
    const { view, feed } = JSON.parse(e.data);
    ui.feed.replaceChildren();
    for (const f of feed.slice(-8)) addFeed(f);
    setView(c, view);
  });
  es.addEventListener('status', (e) => setView(c, JSON.parse(e.data)));
  es.addEventListener('transition', (e) => {
    const f = JSON.parse(e.data);
    addFeed(f);
    // The transition frame comes before its status frame: the view still has the term before it.
    const higher = c.view !== null && f.term > c.view.term;
    if (cur === c && c.machine === 'replica') fire(f.from, f.to, f.cause, higher);
  });
  es.onerror = () => {
    if (cur === c) ui.state.textContent = `${c.member.id} is not answering`;
  };
}

/** States per machine from a status frame (older servers: the replica's state only). */
function statesOf(v) {
  return v.charts ?? { replica: v.state, replication: null, chat: null };
}

function setView(c, v) {
  if (cur !== c) return;
  const before = c.states;
  c.view = v;
  c.states = statesOf(v);
  ui.state.textContent = `${v.state} · term ${v.term} · leader ${v.leaderId ?? 'none'}`;
  // The replication and chat actors have no feed of their own: a changed state is their transition.
  const m = c.machine;
  if (before && m !== 'replica' && before[m] && c.states[m] && before[m] !== c.states[m]) {
    fire(before[m], c.states[m], null, false);
  }
  light();
}

/** Shows `machine` at `level` (either may be left out: keep the current one). */
async function show({ machine, level }) {
  const c = cur;
  if (!c) return;
  c.machine = machine ?? c.machine;
  c.level = level ?? c.level;
  for (const t of ui.tabs.children) t.setAttribute('aria-selected', String(t.dataset.machine === c.machine));
  for (const b of ui.levels.children) b.setAttribute('aria-pressed', String(b.dataset.level === c.level));
  ui.dialog.dataset.machine = c.machine;
  ui.dialog.dataset.level = c.level;
  let text;
  try {
    text = await chartText(c.machine, c.level);
  } catch (err) {
    ui.view.replaceChildren(el('p', 'charts-error', `The chart is missing: ${err.message}`));
    return;
  }
  if (cur !== c) return;
  ui.view.innerHTML = text;
  const svg = ui.view.querySelector('svg');
  if (svg) {
    svg.removeAttribute('width');
    svg.removeAttribute('height');
  }
  setZoom(c.level === 'overview' ? Math.max(MIN_OPEN_ZOOM, Math.min(1, fitZoom())) : 1);
  c.lit = '';
  light();
}

/** `leader.active` → ['leader', 'leader_active']: the ids of a state and its ancestors in the SVG. */
function idsOf(path) {
  const parts = path.split('.');
  return parts.map((_, i) => parts.slice(0, i + 1).join('_'));
}

function titleOf(g) {
  return g.querySelector(':scope > title')?.textContent ?? '';
}

/** Lights the active states of the shown machine; tells when it has none (replication off the leader). */
function light() {
  const c = cur;
  if (!c || !c.states) return;
  const svg = ui.view.querySelector('svg');
  if (!svg) return;
  const state = c.states[c.machine];
  const ids = new Set((state ?? '').split(',').filter(Boolean).flatMap(idsOf));
  for (const g of svg.querySelectorAll('g.node, g.cluster')) {
    const t = titleOf(g);
    const on = ids.has(t) || (t.startsWith('cluster_') && ids.has(t.slice(8)));
    g.classList.toggle('active', on);
  }
  ui.dialog.dataset.state = state ?? '';
  // A newly lit state is brought into view (the reference is larger than the window).
  if (c.lit !== state) {
    c.lit = state;
    const g = svg.querySelector('g.node.active');
    if (g && !visible(g)) g.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }
  ui.note.textContent =
    state === null
      ? c.machine === 'replication'
        ? 'The replication actor runs only on the leader: this replica does not lead now.'
        : 'This replica does not report this machine.'
      : `${c.machine}: ${state.split(',').join(' and ')}`;
}

function visible(g) {
  const r = g.getBoundingClientRect();
  const v = ui.view.getBoundingClientRect();
  return r.left >= v.left && r.right <= v.right && r.top >= v.top && r.bottom <= v.bottom;
}

/**
 * The edges of the shown chart from `from` to `to` (states or ancestors), the ones `cause` fires first.
 * The overview's edge from "any role" (the higher-term rule) only when the term went up, and then alone.
 */
function edgesFor(svg, from, to, cause, higherTerm) {
  const froms = new Set(idsOf(from));
  if (higherTerm && svg.querySelector('g.edge.from-any')) froms.clear();
  froms.add('any');
  const tos = new Set(idsOf(to));
  const token = cause ? `on-${cause.replace(/^xstate\.after\./, '').split('.')[0]}` : null;
  const all = [...svg.querySelectorAll('g.edge')].filter((g) => {
    const cls = [...g.classList];
    if (!higherTerm && g.classList.contains('from-any')) return false;
    return (
      cls.some((k) => k.startsWith('from-') && froms.has(k.slice(5))) &&
      cls.some((k) => k.startsWith('to-') && tos.has(k.slice(3)))
    );
  });
  const caused = cause ? all.filter((g) => g.classList.contains(token)) : [];
  const eventless = all.filter((g) => g.classList.contains('on-always'));
  return caused.length > 0 ? caused : eventless.length > 0 ? eventless : all;
}

/** Animates the transition from → to on the shown chart: the edge it took, and the state it reached. */
function fire(from, to, cause, higherTerm) {
  const svg = ui.view.querySelector('svg');
  // Staying in a state is drawn only for the higher-term rule (a follower adopting a new term).
  if (!svg || (from === to && !higherTerm)) return;
  const edges = edgesFor(svg, from, to, cause, higherTerm);
  if (from === to && edges.length === 0) return;
  const nodes = [...svg.querySelectorAll('g.node, g.cluster')].filter((g) => {
    const t = titleOf(g).replace(/^cluster_/, '');
    return idsOf(to).includes(t);
  });
  for (const g of [...edges, ...nodes]) {
    g.classList.remove('firing');
    // Restart the animation when the same edge fires again.
    void g.getBoundingClientRect();
    g.classList.add('firing');
    clearTimeout(g.firingTimer);
    g.firingTimer = setTimeout(() => g.classList.remove('firing'), FIRE_MS);
  }
  // The last edges fired since the dialog opened, newest last (for a test or a curious reader).
  const log = [...(ui.dialog.dataset.fired ?? '').split(' | ').filter(Boolean), ...edges.map(titleOf)];
  ui.dialog.dataset.fired = log.slice(-20).join(' | ');
}

/**
 * A feed line's text as `<span class="text">`, each token (a run without spaces) in its own
 * `<span class="tok">` that never breaks (charts.css): lines wrap between tokens only, so
 * `leader.active` or `pre-candidate` is never split. The text content is unchanged.
 */
export function feedText(text) {
  const span = el('span', 'text');
  for (const part of text.split(/(\s+)/)) {
    if (part === '') continue;
    span.append(/^\s+$/.test(part) ? document.createTextNode(part) : el('span', 'tok', part));
  }
  return span;
}

function addFeed(f) {
  const li = el('li');
  const t = new Date(f.at);
  li.append(
    el('time', '', `${t.toTimeString().slice(0, 8)}.${String(t.getMilliseconds()).padStart(3, '0')}`),
    feedText(f.text),
  );
  ui.feed.prepend(li);
  while (ui.feed.children.length > 8) ui.feed.lastElementChild.remove();
}
