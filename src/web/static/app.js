// The Quorum Chat web client: plain DOM, hash routes, no build step. State lives in `state`; each page
// is a render function that rebuilds its part of the DOM. Text always goes in as text nodes, never as
// HTML, so a message cannot inject markup.
import { ApiError, Transport } from './api.js';

const SESSION_KEY = 'quorum-chat-session';
const PAGE_SIZE = 10;

const app = document.getElementById('app');
const nav = document.getElementById('nav');
const noticeEl = document.getElementById('notice');

const state = {
  /** @type {{username: string, nickname: string, view_limit: number} | null} */
  me: null,
  /** chat_id → Chat, as of the last ListChats plus live events */
  chats: new Map(),
  /** The open chat view, or null. */
  view: null,
  users: { pattern: '*', page: 1, result: null },
};

const transport = new Transport({ onNotice: (text) => notice(text, 'failover', 20_000) });

// ---- tiny DOM helper ----

/** h('button', {class: 'x', onclick: f}, 'text', child) */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let noticeTimer = null;
/** The route the notice belongs to: it goes when the user navigates elsewhere. */
let noticeRoute = '';
/** The one-line status under the header; it fades after a while so that it never goes stale. */
function notice(text, kind = 'info', ttlMs = 8000) {
  clearTimeout(noticeTimer);
  noticeEl.textContent = text;
  noticeEl.className = kind;
  noticeEl.hidden = !text;
  noticeRoute = location.hash;
  if (text) noticeTimer = setTimeout(() => notice(''), ttlMs);
}

function errorText(err) {
  return err instanceof ApiError ? err.message : 'Something went wrong; please try again.';
}

/** Today: the time. An earlier day: the date and the time (and the year, if not this one). */
function fmtTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === today.toDateString()) return time;
  const sameYear = d.getFullYear() === today.getFullYear();
  const date = d.toLocaleDateString([], {
    month: 'short',
    day: 'numeric',
    year: sameYear ? undefined : 'numeric',
  });
  return `${date}, ${time}`;
}

/** A form whose submit handler gets the field values; shows its own one-line error. */
function form(cls, fields, submitLabel, onSubmit, extra = []) {
  const error = h('p', { class: 'error', role: 'alert' });
  const button = h('button', { type: 'submit' }, submitLabel);
  const el = h('form', { class: cls }, ...fields, error, button, ...extra);
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    button.disabled = true;
    try {
      await onSubmit(Object.fromEntries(new FormData(el)));
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

const field = (label, name, attrs = {}) => h('label', {}, label, h('input', { name, ...attrs }));

// ---- session ----

function saveSession(token, user) {
  transport.token = token;
  state.me = user;
  localStorage.setItem(SESSION_KEY, JSON.stringify({ token, user }));
}

function endSession(message) {
  transport.stopEvents();
  transport.token = null;
  transport.lastIndex = 0;
  state.me = null;
  state.chats.clear();
  state.view = null;
  state.users = { pattern: '*', page: 1, result: null };
  localStorage.removeItem(SESSION_KEY);
  location.hash = '#/login';
  if (message) notice(message);
  route();
}

function startLive() {
  transport.startEvents({
    onEvent,
    // (Re)connected: anything missed while down is replayed by index; refresh the rest anyway.
    onReady: () => {
      refreshChats();
      if (state.view?.loaded) loadLatest(state.view);
    },
    onAuthLost: (message) => endSession(message),
  });
  transport.loadMembers();
}

// ---- live events ----

function onEvent(ev) {
  const view = state.view;
  const here = (chatId) => view && view.chat_id === chatId;
  if (ev.event === 'typing') {
    // Ephemeral: no list refresh.
    const t = ev.typing;
    if (here(t.chat_id) && t.username !== state.me.username) setTyping(view, t.typing);
    return;
  }
  if (ev.event === 'message_received') {
    const m = ev.message_received;
    if (here(m.chat_id)) {
      if (m.sender === state.me.username) addMessages(view, [m]);
      else {
        setTyping(view, false);
        // Shown at once only if nothing older can be waiting unshown: everything before it was
        // delivered and no live message was passed over since. Shown means read: say so to the
        // server (and so to the sender), up to its id.
        if (view.unread_remaining === 0 && !view.busy && !view.behind) {
          addMessages(view, [m]);
          markRead(view, m.message_id);
        } else {
          // Passed over: it must come through ReadMessages before a later live message is shown, or
          // MarkRead up to that one's id would make it read on the server but never on screen. A
          // delivery in flight may have been answered before it was applied, so deliver again after
          // it; with the count not known (or a stale 0), deliver now; with older messages waiting,
          // "N more unread" is on screen and delivers on a click.
          view.behind = true;
          if (view.busy) view.again = true;
          else if (!(view.unread_remaining > 0)) deliver(view);
        }
      }
      renderChatView();
    }
    const chat = state.chats.get(m.chat_id);
    if (chat) chat.last_message_at = m.sent_at;
  } else if (ev.event === 'messages_read') {
    const r = ev.messages_read;
    if (here(r.chat_id) && r.reader !== state.me.username) {
      for (const m of view.messages.values()) {
        if (m.sender === state.me.username && m.message_id <= r.up_to_id) m.read = true;
      }
      renderChatView();
    }
    return;
  } else if (ev.event === 'message_edited') {
    const m = ev.message_edited;
    if (here(m.chat_id) && view.messages.has(m.message_id)) {
      addMessages(view, [m]);
      renderChatView();
    }
    return;
  } else if (ev.event === 'messages_deleted') {
    if (here(ev.messages_deleted.chat_id)) {
      for (const id of ev.messages_deleted.message_ids) {
        view.messages.delete(id);
        view.selected.delete(id);
        if (view.editing === id) stopEditing(view);
      }
      renderChatView();
    }
  } else if (ev.event === 'chat_removed') {
    const id = ev.chat_removed.chat_id;
    const chat = state.chats.get(id);
    state.chats.delete(id);
    if (here(id)) {
      location.hash = '#/chats';
      notice(`The chat with ${chat ? chat.other_user : 'that user'} was removed.`);
    }
  } else if (ev.event === 'chat_started') {
    state.chats.set(ev.chat_started.chat_id, ev.chat_started);
  }
  refreshChats();
  renderChatList();
}

// Coalesce the refreshes that a burst of events asks for into one ListChats.
let refreshTimer = null;
function refreshChats() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(loadChats, 50);
}

let chatsSeq = 0;
async function loadChats() {
  if (!state.me) return;
  const seq = ++chatsSeq;
  try {
    const { chats } = await transport.call('ListChats');
    if (seq !== chatsSeq) return; // a newer refresh is on its way
    state.chats = new Map(chats.map((c) => [c.chat_id, c]));
  } catch (err) {
    if (err instanceof ApiError && err.code === 'UNAUTHENTICATED') return endSession(err.message);
    return;
  }
  const view = state.view;
  const open = view && state.chats.get(view.chat_id);
  if (open) {
    // The server's count is authoritative; pick up what arrived while a delivery was in flight. A 0
    // may have been counted before a live message the page passed over: a delivery settles that.
    const stale = view.behind && open.unread_count === 0;
    if (stale || ((view.unread_remaining ?? 0) === 0 && open.unread_count > 0)) deliver(view);
    else if (!view.busy) view.unread_remaining = open.unread_count;
    renderChatView();
  }
  renderChatList();
}

// ---- pages ----

function route() {
  if (noticeRoute !== location.hash && noticeEl.className !== 'failover') notice('');
  const hash = location.hash || '#/';
  const [, page, arg] = hash.split('/');
  if (!state.me && page !== 'signup') return renderLogin();
  if (!state.me) return renderSignup();
  nav.hidden = false;
  document.getElementById('me').textContent = `@${state.me.username}`;
  for (const a of nav.querySelectorAll('a[data-route]')) {
    a.classList.toggle(
      'active',
      a.dataset.route === page || (page === 'chat' && a.dataset.route === 'chats'),
    );
  }
  if (page !== 'chat') leaveChat();
  if (page === 'users') return renderUsers();
  if (page === 'settings') return renderSettings();
  if (page === 'chat' && arg) return openChat(decodeURIComponent(arg));
  if (page !== 'chats') history.replaceState(null, '', '#/chats');
  renderChats();
}

function setPage(...children) {
  app.replaceChildren(...children);
}

function renderLogin() {
  nav.hidden = true;
  setPage(
    h(
      'section',
      { class: 'card narrow' },
      h('h1', {}, 'Log in'),
      form(
        'login',
        [
          field('Username', 'username', { autocomplete: 'username', required: true }),
          field('Password', 'password', {
            type: 'password',
            autocomplete: 'current-password',
            required: true,
          }),
        ],
        'Log in',
        async ({ username, password }) => {
          const { token, user } = await transport.call('Login', { username, password });
          saveSession(token, user);
          notice('');
          startLive();
          location.hash = '#/chats';
        },
        [h('p', { class: 'alt' }, 'New here? ', h('a', { href: '#/signup' }, 'Create an account'))],
      ),
    ),
  );
}

function renderSignup() {
  nav.hidden = true;
  setPage(
    h(
      'section',
      { class: 'card narrow' },
      h('h1', {}, 'Sign up'),
      form(
        'signup',
        [
          field('Username', 'username', {
            autocomplete: 'username',
            required: true,
            minlength: 3,
            maxlength: 32,
          }),
          field('Nickname', 'nickname', { required: true, maxlength: 64 }),
          field('Password', 'password', {
            type: 'password',
            autocomplete: 'new-password',
            required: true,
            minlength: 8,
          }),
        ],
        'Sign up',
        async ({ username, nickname, password }) => {
          await transport.call('Signup', { username, nickname, password });
          const { token, user } = await transport.call('Login', { username, password });
          saveSession(token, user);
          startLive();
          location.hash = '#/chats';
          notice(`Welcome, ${user.nickname}!`);
        },
        [h('p', { class: 'alt' }, 'Have an account? ', h('a', { href: '#/login' }, 'Log in'))],
      ),
    ),
  );
}

function renderChats() {
  setPage(
    h(
      'section',
      { class: 'card' },
      h('h1', {}, 'Chats'),
      h('ul', { id: 'chat-list', class: 'list' }),
      h('p', { class: 'alt' }, 'Start a chat from ', h('a', { href: '#/users' }, 'Users'), '.'),
    ),
  );
  renderChatList();
  loadChats();
}

function renderChatList() {
  const total = [...state.chats.values()].reduce((n, c) => n + c.unread_count, 0);
  const badge = document.getElementById('total-unread');
  badge.textContent = String(total);
  badge.hidden = total === 0;
  const list = document.getElementById('chat-list');
  if (!list) return;
  const chats = [...state.chats.values()].sort((a, b) => b.last_message_at - a.last_message_at);
  if (chats.length === 0) {
    list.replaceChildren(h('li', { class: 'empty' }, 'No chats yet.'));
    return;
  }
  list.replaceChildren(
    ...chats.map((c) =>
      h(
        'li',
        { class: 'chat-row', 'data-chat': c.chat_id, 'data-user': c.other_user },
        h(
          'a',
          { href: `#/chat/${encodeURIComponent(c.chat_id)}` },
          h(
            'span',
            { class: 'who' },
            h('strong', {}, c.other_nickname),
            ' ',
            h('span', { class: 'muted' }, `@${c.other_user}`),
          ),
          h('span', { class: 'when muted' }, fmtTime(c.last_message_at)),
          c.unread_count > 0 ? h('span', { class: 'badge unread' }, String(c.unread_count)) : null,
        ),
      ),
    ),
  );
}

function renderUsers() {
  const u = state.users;
  const results = h('div', { id: 'user-results' });
  const search = form(
    'search',
    [
      h('input', {
        name: 'pattern',
        value: u.pattern,
        placeholder: 'glob, e.g. b* or ?ob',
        'aria-label': 'Pattern',
      }),
    ],
    'Search',
    async ({ pattern }) => {
      u.pattern = pattern;
      await loadUsers(1);
    },
  );
  setPage(
    h(
      'section',
      { class: 'card' },
      h('h1', {}, 'Users'),
      h('p', { class: 'muted' }, '* matches any run of characters, ? matches one.'),
      search,
      results,
    ),
  );
  if (u.result) renderUserResults();
  else loadUsers(1).catch((err) => notice(errorText(err), 'error'));
}

let usersSeq = 0;
async function loadUsers(page) {
  const u = state.users;
  const seq = ++usersSeq;
  const result = await transport.call('ListUsers', { pattern: u.pattern, page, page_size: PAGE_SIZE });
  if (seq !== usersSeq) return; // a newer search overtook this one
  u.result = result;
  u.page = page;
  renderUserResults();
}

function renderUserResults() {
  const el = document.getElementById('user-results');
  if (!el) return;
  const r = state.users.result;
  const pages = Math.max(r.total_pages, 1);
  const go = (p) => () => loadUsers(p).catch((err) => notice(errorText(err), 'error'));
  el.replaceChildren(
    h(
      'ul',
      { class: 'list' },
      r.users.length === 0
        ? h('li', { class: 'empty' }, 'No users match.')
        : r.users.map((user) =>
            h(
              'li',
              { class: 'user-row', 'data-user': user.username },
              h(
                'span',
                { class: 'who' },
                h('strong', {}, user.nickname),
                ' ',
                h('span', { class: 'muted' }, `@${user.username}`),
              ),
              h(
                'button',
                { type: 'button', class: 'start-chat', onclick: () => startChat(user.username) },
                'Chat',
              ),
            ),
          ),
    ),
    h(
      'div',
      { class: 'pager' },
      h(
        'button',
        { type: 'button', class: 'prev', disabled: r.page <= 1, onclick: go(r.page - 1) },
        '‹ Prev',
      ),
      h(
        'span',
        { class: 'page-info' },
        `Page ${Math.min(r.page, pages)} of ${pages} · ${r.total_count} users`,
      ),
      h(
        'button',
        { type: 'button', class: 'next', disabled: r.page >= r.total_pages, onclick: go(r.page + 1) },
        'Next ›',
      ),
    ),
  );
}

async function startChat(username) {
  try {
    const chat = await transport.call('StartChat', { username });
    state.chats.set(chat.chat_id, chat);
    location.hash = `#/chat/${encodeURIComponent(chat.chat_id)}`;
  } catch (err) {
    notice(errorText(err), 'error');
  }
}

// ---- chat view ----

/** How many messages one page of history holds (GetMessages). */
const HISTORY_PAGE = 30;
/** A typing:true is over after this long without a refresh (API.md). */
const TYPING_TTL_MS = 6000;
/** While the user types, SetTyping(true) is repeated at most this often. */
const TYPING_REFRESH_MS = 3000;

function openChat(chatId) {
  const chat = state.chats.get(chatId);
  const view = {
    chat_id: chatId,
    other: chat ? chat.other_user : '',
    other_nickname: chat ? chat.other_nickname : '',
    /** message_id → Message: one entry per id, whatever path (reply, event, retry) brought it. */
    messages: new Map(),
    /**
     * How many messages of the other side are still unread on the server, or null until a reply has
     * said so. The chat list's count may be stale, so the view starts not knowing: a live message is
     * only shown (and marked read up to its id) once nothing older can be waiting unshown.
     */
    unread_remaining: null,
    /** A live message of the other side was passed over and no delivery has brought it yet. */
    behind: false,
    /** Failed deliveries in a row, and until when automatic ones wait (see deliver). */
    failures: 0,
    retryAt: 0,
    retryTimer: null,
    selected: new Set(),
    loaded: false,
    busy: false,
    again: false,
    asked: false,
    /** Paging back: the oldest id a history page returned, and whether older ones exist. */
    oldest: 0,
    has_more: false,
    loadingOlder: false,
    /** The other side is typing (until a timer ends it). */
    typing: false,
    typingTimer: null,
    /** Our own typing: when we last said so. */
    typingSentAt: 0,
    /** The id of the own message being edited in the composer, or null. */
    editing: null,
  };
  state.view = view;
  const log = h('ol', { id: 'messages', class: 'messages', 'aria-live': 'polite' });
  log.addEventListener('scroll', () => {
    if (log.scrollTop < 60) loadOlder(view);
  });
  const input = h('textarea', {
    name: 'content',
    rows: 2,
    placeholder: 'Write a message…',
    'aria-label': 'Message',
  });
  const cancel = h(
    'button',
    { type: 'button', class: 'link cancel-edit', hidden: true, onclick: () => stopEditing(view) },
    'Cancel',
  );
  const composer = form(
    'composer',
    [input],
    'Send',
    async ({ content }) => {
      if (!content.trim()) return;
      if (view.editing !== null) return saveEdit(view, content);
      // Clear at once so the next message can be typed while this one is on its way; put it back if
      // sending fails and nothing new was typed.
      input.value = '';
      sendTyping(view, false);
      try {
        const m = await transport.call('SendMessage', { chat_id: chatId, content });
        addMessages(view, [m]);
        renderChatView();
      } catch (err) {
        if (input.value === '') input.value = content;
        throw err;
      }
    },
    [cancel],
  );
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      composer.requestSubmit();
    } else if (ev.key === 'Escape' && view.editing !== null) {
      stopEditing(view);
    }
  });
  input.addEventListener('input', () => {
    if (view.editing === null) sendTyping(view, input.value.trim() !== '');
  });
  input.addEventListener('blur', () => sendTyping(view, false));
  setPage(
    h(
      'section',
      { class: 'card chat' },
      h(
        'div',
        { class: 'chat-head' },
        h('a', { href: '#/chats', class: 'back' }, '‹'),
        h('h1', { id: 'chat-title' }),
        h('span', { id: 'chat-tools' }),
      ),
      h('div', { id: 'older' }),
      log,
      h('div', { id: 'more' }),
      h('p', { id: 'typing', class: 'typing muted', hidden: true }),
      composer,
    ),
  );
  renderChatView();
  enterChat(view, chat);
  if (!chat) loadChats();
}

/** Opening: the latest page of history, then the first view_limit unread messages. */
async function enterChat(view, chat) {
  await loadLatest(view);
  if (state.view !== view) return;
  if (!chat || chat.unread_count > 0) deliver(view);
  else refreshChats();
}

function leaveChat() {
  const view = state.view;
  if (!view) return;
  sendTyping(view, false);
  clearTimeout(view.typingTimer);
  clearTimeout(view.retryTimer);
  state.view = null;
}

/** Merges messages into the view. A reply may have been computed before an event the page already
 * applied, so what only moves forward stays: read never goes back to unread, and the newer edit wins. */
function addMessages(view, messages) {
  for (const m of messages) {
    const had = view.messages.get(m.message_id);
    if (!had) view.messages.set(m.message_id, m);
    else {
      const newer = (had.edited_at ?? 0) > (m.edited_at ?? 0) ? had : m;
      view.messages.set(m.message_id, {
        ...m,
        content: newer.content,
        edited_at: newer.edited_at,
        read: m.read || had.read,
      });
    }
  }
}

/** GetMessages (a pure read): the newest page; also what a reconnect uses to catch up. */
async function loadLatest(view) {
  try {
    const r = await transport.call('GetMessages', { chat_id: view.chat_id, limit: HISTORY_PAGE });
    if (state.view !== view) return;
    addMessages(view, r.messages);
    if (!view.loaded) {
      view.oldest = r.messages.length > 0 ? r.messages[0].message_id : 0;
      view.has_more = r.has_more;
    }
    view.loaded = true;
    renderChatView({ toBottom: true });
  } catch (err) {
    if (state.view === view) notice(errorText(err), 'error');
    if (err instanceof ApiError && err.code === 'NOT_FOUND') location.hash = '#/chats';
  }
}

/** Scrolling up: the page before the oldest message shown, keeping what the user looks at in place. */
async function loadOlder(view) {
  if (!view.loaded || !view.has_more || view.loadingOlder || view.oldest === 0) return;
  view.loadingOlder = true;
  renderOlder(view);
  try {
    const r = await transport.call('GetMessages', {
      chat_id: view.chat_id,
      before_id: view.oldest,
      limit: HISTORY_PAGE,
    });
    if (state.view !== view) return;
    addMessages(view, r.messages);
    if (r.messages.length > 0) view.oldest = r.messages[0].message_id;
    view.has_more = r.has_more && r.messages.length > 0;
    renderChatView({ keepPlace: true });
  } catch (err) {
    if (state.view === view) notice(errorText(err), 'error');
  } finally {
    view.loadingOlder = false;
    if (state.view === view) renderOlder(view);
  }
}

/** After a failed delivery, automatic ones wait this long, doubling with each failure up to the max. */
const DELIVER_BACKOFF_MS = 1000;
const DELIVER_BACKOFF_MAX_MS = 30_000;

/**
 * ReadMessages: delivers the next view_limit unread messages and marks them read (a write; one at a
 * time). `asked` is the user's click on "N more unread", which must never be swallowed by a call in
 * flight; automatic deliveries only happen while nothing older is waiting. After a failure (a write
 * refused by the rate limit, say) automatic deliveries back off, or each failure's chat-list refresh
 * would start the next at once and the page would spend the user's write budget as fast as it refills.
 */
async function deliver(view, asked = false) {
  if (view.busy) {
    if (asked) view.asked = true;
    else view.again = true;
    return;
  }
  const wait = view.retryAt - Date.now();
  if (!asked && wait > 0) {
    if (view.retryTimer === null) {
      view.retryTimer = setTimeout(() => {
        view.retryTimer = null;
        if (state.view === view) deliver(view);
      }, wait);
    }
    return;
  }
  view.busy = true;
  try {
    const r = await transport.call('ReadMessages', { chat_id: view.chat_id });
    addMessages(view, r.messages);
    view.unread_remaining = r.unread_remaining;
    if (r.unread_remaining === 0) view.behind = false;
    view.failures = 0;
    view.retryAt = 0;
  } catch (err) {
    view.failures++;
    // A rate limit says how long to wait; otherwise (or if it says less) the doubling back-off.
    const backoff = Math.min(DELIVER_BACKOFF_MS * 2 ** (view.failures - 1), DELIVER_BACKOFF_MAX_MS);
    view.retryAt = Date.now() + Math.max(backoff, err instanceof ApiError ? err.retryAfterMs : 0);
    if (state.view === view) notice(errorText(err), 'error');
    if (err instanceof ApiError && err.code === 'NOT_FOUND') location.hash = '#/chats';
  } finally {
    view.busy = false;
  }
  if (state.view !== view) return;
  renderChatView({ toBottom: true });
  refreshChats();
  // A click queued while this call was in flight stays a click: no back-off for it.
  const clicked = view.asked;
  const again = clicked || (view.again && view.unread_remaining === 0);
  view.asked = false;
  view.again = false;
  if (again) deliver(view, clicked);
}

/** MarkRead for a live message shown in the open chat (best effort: if it fails, the message is still
 * unread on the server and comes again through ReadMessages). */
function markRead(view, upToId) {
  transport.call('MarkRead', { chat_id: view.chat_id, up_to_id: upToId }).then(
    () => refreshChats(),
    () => refreshChats(),
  );
}

/** Tells the other side we are typing (refreshed at most every few seconds) or stopped. */
function sendTyping(view, typing) {
  const now = Date.now();
  if (typing) {
    if (now - view.typingSentAt < TYPING_REFRESH_MS) return;
    view.typingSentAt = now;
  } else {
    if (view.typingSentAt === 0) return;
    view.typingSentAt = 0;
  }
  transport.call('SetTyping', { chat_id: view.chat_id, typing }).catch(() => {
    // Best effort: a typing:true expires by itself on the other side.
  });
}

/** The other side's typing state; a typing:true is over after TYPING_TTL_MS without a refresh. */
function setTyping(view, typing) {
  clearTimeout(view.typingTimer);
  view.typing = typing;
  if (typing) view.typingTimer = setTimeout(() => setTyping(view, false), TYPING_TTL_MS);
  renderTyping(view);
}

function renderTyping(view) {
  const el = document.getElementById('typing');
  if (!el || state.view !== view) return;
  el.hidden = !view.typing;
  el.textContent = view.typing ? `${view.other_nickname || view.other || 'They'} is typing…` : '';
}

function renderOlder(view) {
  const el = document.getElementById('older');
  if (!el) return;
  el.replaceChildren(
    view.has_more
      ? h(
          'button',
          {
            type: 'button',
            class: 'link load-older',
            disabled: view.loadingOlder,
            onclick: () => loadOlder(view),
          },
          view.loadingOlder ? 'Loading…' : 'Older messages',
        )
      : '',
  );
}

function startEditing(view, id) {
  const m = view.messages.get(id);
  if (!m) return;
  view.editing = id;
  sendTyping(view, false);
  const input = document.querySelector('form.composer textarea');
  input.value = m.content;
  input.focus();
  renderChatView();
}

function stopEditing(view) {
  view.editing = null;
  const input = document.querySelector('form.composer textarea');
  if (input) input.value = '';
  renderChatView();
}

async function saveEdit(view, content) {
  const id = view.editing;
  const m = await transport.call('EditMessage', { chat_id: view.chat_id, message_id: id, content });
  addMessages(view, [m]);
  view.selected.clear();
  stopEditing(view);
}

function renderChatView(opts = {}) {
  const view = state.view;
  const log = document.getElementById('messages');
  if (!view || !log) return;
  const chat = state.chats.get(view.chat_id);
  if (chat) {
    view.other = chat.other_user;
    view.other_nickname = chat.other_nickname;
  }
  document
    .getElementById('chat-title')
    .replaceChildren(
      view.other_nickname || 'Chat',
      ' ',
      h('span', { class: 'muted' }, view.other ? `@${view.other}` : ''),
    );
  const n = view.selected.size;
  document.getElementById('chat-tools').replaceChildren(
    n === 1 && view.editing === null
      ? h(
          'button',
          {
            type: 'button',
            class: 'edit-selected',
            onclick: () => startEditing(view, [...view.selected][0]),
          },
          'Edit',
        )
      : '',
    n > 0
      ? h(
          'button',
          { type: 'button', class: 'danger delete-selected', onclick: deleteSelected },
          `Delete selected (${n})`,
        )
      : '',
  );
  const composer = document.querySelector('form.composer');
  if (composer) {
    composer.classList.toggle('editing', view.editing !== null);
    composer.querySelector('button[type=submit]').textContent = view.editing !== null ? 'Save' : 'Send';
    composer.querySelector('.cancel-edit').hidden = view.editing === null;
  }
  document
    .getElementById('more')
    .replaceChildren(
      view.unread_remaining > 0
        ? h(
            'button',
            { type: 'button', class: 'more-unread', onclick: () => deliver(view, true) },
            `${view.unread_remaining} more unread`,
          )
        : '',
    );
  renderOlder(view);
  renderTyping(view);
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const fromBottom = log.scrollHeight - log.scrollTop;
  const messages = [...view.messages.values()].sort((a, b) => a.message_id - b.message_id);
  log.replaceChildren(
    ...(messages.length === 0 && view.loaded
      ? [h('li', { class: 'empty' }, 'No messages yet. Say hello!')]
      : []),
    ...messages.map((m) => {
      const mine = m.sender === state.me.username;
      const selected = view.selected.has(m.message_id);
      return h(
        'li',
        {
          class: `msg ${mine ? 'mine' : 'theirs'}${selected ? ' selected' : ''}${view.editing === m.message_id ? ' editing' : ''}`,
          'data-id': m.message_id,
          title: mine ? 'Click to select' : undefined,
          onclick: mine ? () => toggleSelect(m.message_id) : undefined,
        },
        h('span', { class: 'content' }, m.content),
        h(
          'span',
          { class: 'meta' },
          fmtTime(m.sent_at),
          m.edited_at
            ? h('span', { class: 'edited', title: `Edited ${fmtTime(m.edited_at)}` }, ' · edited')
            : '',
          mine && m.read ? h('span', { class: 'tick' }, ' · read') : '',
        ),
      );
    }),
  );
  // New messages at the bottom follow the conversation; older ones loaded above keep the place.
  if (opts.keepPlace) log.scrollTop = log.scrollHeight - fromBottom;
  else if (atBottom || opts.toBottom) log.scrollTop = log.scrollHeight;
}

function toggleSelect(id) {
  const view = state.view;
  if (view.editing !== null) return;
  if (view.selected.has(id)) view.selected.delete(id);
  else view.selected.add(id);
  renderChatView();
}

async function deleteSelected() {
  const view = state.view;
  const ids = [...view.selected];
  try {
    await transport.call('DeleteMessages', { chat_id: view.chat_id, message_ids: ids });
    for (const id of ids) view.messages.delete(id);
    view.selected.clear();
    if (ids.includes(view.editing)) stopEditing(view);
    renderChatView();
  } catch (err) {
    notice(errorText(err), 'error');
  }
}

// ---- settings ----

function renderSettings() {
  const current = h('p', { class: 'muted', id: 'current-limit' });
  const showLimit = (n) => {
    current.textContent = `New messages are delivered ${n} at a time.`;
  };
  showLimit(state.me.view_limit);
  const limitInput = h('input', {
    name: 'view_limit',
    type: 'number',
    min: 1,
    max: 1000,
    required: true,
    value: state.me.view_limit,
  });
  setPage(
    h(
      'section',
      { class: 'card narrow' },
      h('h1', {}, 'Settings'),
      form(
        'settings',
        [h('label', {}, 'View limit', limitInput), current],
        'Save',
        async ({ view_limit }) => {
          const r = await transport.call('UpdateSettings', { view_limit: Number(view_limit) });
          saveSession(transport.token, { ...state.me, view_limit: r.view_limit });
          showLimit(r.view_limit);
          notice(`View limit set to ${r.view_limit}.`);
        },
      ),
      h('h2', { class: 'danger-zone' }, 'Delete account'),
      h(
        'p',
        { class: 'muted' },
        'This removes your account and every chat you take part in, for both sides.',
      ),
      form(
        'delete-account',
        [
          field('Password', 'password', {
            type: 'password',
            autocomplete: 'current-password',
            required: true,
          }),
        ],
        'Delete my account',
        async ({ password }) => {
          await transport.call('DeleteAccount', { password });
          endSession('Your account was deleted.');
        },
      ),
    ),
  );
  // Refresh from the server, unless the user has started editing (a late answer must not undo that).
  let touched = false;
  limitInput.addEventListener('input', () => {
    touched = true;
  });
  transport
    .call('GetSettings')
    .then((r) => {
      if (touched) return;
      limitInput.value = String(r.view_limit);
      showLimit(r.view_limit);
    })
    .catch(() => {});
}

// ---- start ----

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await transport.call('Logout');
  } catch {
    // The session ends locally whatever the server said.
  }
  endSession('You are logged out.');
});

window.addEventListener('hashchange', route);

async function boot() {
  const saved = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null');
  if (saved?.token) {
    transport.token = saved.token;
    state.me = saved.user;
    try {
      const s = await transport.call('GetSettings');
      state.me.view_limit = s.view_limit;
      startLive();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'UNAUTHENTICATED') {
        endSession('Your session ended; please log in again.');
        return;
      }
      startLive();
    }
  }
  route();
}

boot();
