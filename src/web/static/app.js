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
/** The one-line status under the header; it fades after a while so that it never goes stale. */
function notice(text, kind = 'info', ttlMs = 8000) {
  clearTimeout(noticeTimer);
  noticeEl.textContent = text;
  noticeEl.className = kind;
  noticeEl.hidden = !text;
  if (text) noticeTimer = setTimeout(() => notice(''), ttlMs);
}

function errorText(err) {
  return err instanceof ApiError ? err.message : 'Something went wrong; please try again.';
}

function fmtTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
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
  if (message) notice(message);
  location.hash = '#/login';
  route();
}

function startLive() {
  transport.startEvents({
    onEvent,
    // (Re)connected: anything missed while down is replayed by index; refresh the rest anyway.
    onReady: () => {
      refreshChats();
      if (state.view) deliver(state.view);
    },
    onAuthLost: (message) => endSession(message),
  });
  transport.loadMembers();
}

// ---- live events ----

function onEvent(ev) {
  if (ev.event === 'message_received') {
    const m = ev.message_received;
    const view = state.view;
    if (view && view.chat_id === m.chat_id) {
      if (m.sender === state.me.username) addMessages(view, [m]);
      // Deliver at once only if everything before it was delivered: view_limit still applies.
      else if (view.unread_remaining === 0) deliver(view);
      else view.unread_remaining++;
      renderChatView();
    }
    const chat = state.chats.get(m.chat_id);
    if (chat) chat.last_message_at = m.sent_at;
  } else if (ev.event === 'messages_deleted') {
    const view = state.view;
    if (view && view.chat_id === ev.messages_deleted.chat_id) {
      for (const id of ev.messages_deleted.message_ids) {
        view.messages.delete(id);
        view.selected.delete(id);
      }
      renderChatView();
    }
  } else if (ev.event === 'chat_removed') {
    const id = ev.chat_removed.chat_id;
    const chat = state.chats.get(id);
    state.chats.delete(id);
    if (state.view?.chat_id === id) {
      notice(`The chat with ${chat ? chat.other_user : 'that user'} was removed.`);
      location.hash = '#/chats';
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
    // The server's count is authoritative; pick up what arrived while a delivery was in flight.
    if (view.unread_remaining === 0 && open.unread_count > 0) deliver(view);
    else if (!view.busy) view.unread_remaining = open.unread_count;
    renderChatView();
  }
  renderChatList();
}

// ---- pages ----

function route() {
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
  if (page !== 'chat') state.view = null;
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
          notice(`Welcome, ${user.nickname}!`);
          startLive();
          location.hash = '#/chats';
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

function openChat(chatId) {
  const chat = state.chats.get(chatId);
  state.view = {
    chat_id: chatId,
    other: chat ? chat.other_user : '',
    other_nickname: chat ? chat.other_nickname : '',
    /** message_id → Message: one entry per id, whatever path (reply, event, retry) brought it. */
    messages: new Map(),
    unread_remaining: 0,
    selected: new Set(),
    loaded: false,
    busy: false,
    again: false,
    asked: false,
  };
  const log = h('ol', { id: 'messages', class: 'messages', 'aria-live': 'polite' });
  const input = h('textarea', {
    name: 'content',
    rows: 2,
    placeholder: 'Write a message…',
    'aria-label': 'Message',
  });
  const composer = form('composer', [input], 'Send', async ({ content }) => {
    if (!content.trim()) return;
    const view = state.view;
    // Clear at once so the next message can be typed while this one is on its way; put it back if
    // sending fails and nothing new was typed.
    input.value = '';
    try {
      const m = await transport.call('SendMessage', { chat_id: chatId, content });
      if (view) addMessages(view, [m]);
      renderChatView();
    } catch (err) {
      if (input.value === '') input.value = content;
      throw err;
    }
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      composer.requestSubmit();
    }
  });
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
      h('div', { id: 'more' }),
      log,
      composer,
    ),
  );
  renderChatView();
  deliver(state.view);
  if (!chat) loadChats();
}

function addMessages(view, messages) {
  for (const m of messages) view.messages.set(m.message_id, m);
}

/**
 * GetMessages: delivers read messages plus the next view_limit unread ones (a write; one at a time).
 * `asked` is the user's click on "N more unread", which must never be swallowed by a call in flight;
 * automatic deliveries only happen while nothing older is waiting.
 */
async function deliver(view, asked = false) {
  if (view.busy) {
    if (asked) view.asked = true;
    else view.again = true;
    return;
  }
  view.busy = true;
  try {
    const r = await transport.call('GetMessages', { chat_id: view.chat_id });
    // The reply lists every delivered message, so older ones it lacks were deleted meanwhile. Keep
    // messages newer than the reply's last one: a send or event may have overtaken this call.
    const newest = r.messages.reduce((max, m) => Math.max(max, m.message_id), 0);
    const fresh = new Map(r.messages.map((m) => [m.message_id, m]));
    for (const [id, m] of view.messages) if (id > newest && m.sender === state.me.username) fresh.set(id, m);
    view.messages = fresh;
    view.unread_remaining = r.unread_remaining;
    view.loaded = true;
  } catch (err) {
    if (state.view === view) notice(errorText(err), 'error');
    if (err instanceof ApiError && err.code === 'NOT_FOUND') location.hash = '#/chats';
  } finally {
    view.busy = false;
  }
  if (state.view !== view) return;
  renderChatView();
  refreshChats();
  const again = view.asked || (view.again && view.unread_remaining === 0);
  view.asked = false;
  view.again = false;
  if (again) deliver(view);
}

function renderChatView() {
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
  document
    .getElementById('chat-tools')
    .replaceChildren(
      n > 0
        ? h(
            'button',
            { type: 'button', class: 'danger delete-selected', onclick: deleteSelected },
            `Delete selected (${n})`,
          )
        : '',
    );
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
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
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
          class: `msg ${mine ? 'mine' : 'theirs'}${selected ? ' selected' : ''}`,
          'data-id': m.message_id,
          title: mine ? 'Click to select' : undefined,
          onclick: mine ? () => toggleSelect(m.message_id) : undefined,
        },
        h('span', { class: 'content' }, m.content),
        h('span', { class: 'meta' }, fmtTime(m.sent_at), mine && m.read ? ' · read' : ''),
      );
    }),
  );
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function toggleSelect(id) {
  const view = state.view;
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
