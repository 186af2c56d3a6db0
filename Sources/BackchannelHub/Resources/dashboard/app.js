// Backchannel operator dashboard.
//
// Plain ES2020, no libraries, no build step. Everything shown comes from the operator API
// (/v1, /v1/power) called with the operator's bearer token; live updates come from the
// server-sent events of GET /v1/events, read with fetch() because EventSource cannot send
// an Authorization header. Device- and operator-supplied text only ever reaches the DOM
// through textContent (see el()), never through innerHTML.
'use strict';

// ---------------------------------------------------------------------------------------
// Small helpers

const $ = (selector, root = document) => root.querySelector(selector);
const TOKEN_KEY = 'backchannel.token';
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'REJECTED', 'EXPIRED', 'CANCELED', 'TIMED_OUT']);
const PRESENCE_LABEL = {
  online: 'Online', unavailable: 'Unavailable', 'presence-error': 'Presence error', unknown: 'Unknown',
};
const CARD_VALUES = ['kW', 'kWh', 'V', 'relay'];
const MAX_ROWS = 60;

/** Creates an element. Strings become text nodes, so data can never become markup. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A badge whose colour comes from its value (CSS [data-v]) and whose text says it too. */
const badge = (value, label = value) => el('span', { class: 'badge', dataset: { v: value } }, label);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const byData = (attr, value) => `[data-${attr}="${CSS.escape(value)}"]`;
const compactJSON = (value) => JSON.stringify(value === undefined ? null : value);
const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
const setAttr = (node, name, value) => { if (node.getAttribute(name) !== value) node.setAttribute(name, value); };

function fmtNum(value) {
  if (typeof value !== 'number') return value == null ? '—' : String(value);
  const digits = Math.abs(value) >= 1000 ? 1 : Math.abs(value) >= 100 ? 2 : 3;
  return value.toLocaleString(undefined, { maximumFractionDigits: digits });
}

function fmtTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

function fmtAgo(iso) {
  if (!iso) return 'never';
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

const latest = (a, b) => (!a ? b : !b ? a : Date.parse(a) >= Date.parse(b) ? a : b);

/** Calls fn at most once per `ms` (throttle): a steady stream of calls still runs it every
 *  `ms`, with the latest arguments, instead of waiting for a quiet period that never comes. */
function debounce(fn, ms) {
  let timer = null;
  let latestArgs = [];
  return (...args) => {
    latestArgs = args;
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(...latestArgs); }, ms);
  };
}

// ---------------------------------------------------------------------------------------
// State

const state = {
  token: null,
  me: null,                 // {name, role, tenant}
  devices: new Map(),       // id -> {view, presence, values, valuesAt}
  commands: new Map(),      // id -> CommandView (possibly partial, from events)
  campaigns: new Map(),     // id -> CampaignView
  alarms: new Map(),        // id -> Alarm
  fetching: new Set(),      // device ids being fetched after an event
  streamCtrl: null,
  streamGen: 0,
  lastStreamActivity: 0,
  liveAllowed: true,
  timers: [],
};

// The device page currently open (null elsewhere).
let page = null;

// ---------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

/**
 * Calls the operator API. Answers the parsed JSON (or the Response with raw: true).
 * A 401 anywhere ends the session and returns to the login form.
 */
async function api(path, { method = 'GET', body, raw = false, signal } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    endSession('The hub rejected the token (401). Please sign in again.');
    throw new ApiError(401, 'unauthorized', 'not signed in');
  }
  if (!response.ok) {
    let code = 'error';
    let message = `${response.status} ${response.statusText}`;
    try { const err = await response.json(); code = err.code || code; message = err.message || message; } catch { /* not JSON */ }
    throw new ApiError(response.status, code, message);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

const enc = encodeURIComponent;
const query = (params) => new URLSearchParams(
  Object.entries(params).filter(([, v]) => v != null && v !== ''),
).toString();

/** Explains a failed section politely; a 403 names the role that may not see it. */
function sectionError(container, error) {
  if (error.status === 401) return;
  let text;
  if (error.status === 403) text = `Not permitted for role ${state.me ? state.me.role : 'unknown'}.`;
  else if (error.status === 404) text = `Not found: ${error.message}`;
  else text = `Could not load: ${error.message}`;
  container.replaceChildren(el('p', { class: 'notice', dataset: { status: String(error.status || '') } }, text));
}

// ---------------------------------------------------------------------------------------
// Session: login, whoami, logout

async function startSession(token) {
  state.token = token;
  const me = await api('/v1/whoami');
  state.me = me;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('#who').textContent = `${me.name} · ${me.role} · tenant ${me.tenant}`;
  $('#logout').hidden = false;
  $('#nav').hidden = false;
  $('#login-error').textContent = '';
  $('#token').value = '';
  route();
  // Start listening before loading, so nothing that happens during the load is missed.
  runEventStream();
  await Promise.all([loadDevices(), loadCommands(), loadCampaigns(), loadAlarms()]);
  if (state.token !== token) return; // signed out (or in again) while loading
  state.timers.push(setInterval(refreshPresence, 10_000));
  state.timers.push(setInterval(tick, 5_000));
  state.timers.push(setInterval(watchStream, 5_000));
  loadInitialValues();
}

/** Forgets the token and everything loaded with it, and shows the login form. */
function endSession(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  state.streamGen += 1;
  if (state.streamCtrl) state.streamCtrl.abort();
  state.timers.forEach(clearInterval);
  state.timers = [];
  for (const map of [state.devices, state.commands, state.campaigns, state.alarms]) map.clear();
  page = null;
  chart.points = [];
  for (const id of ['#grid', '#commands', '#campaigns', '#alarms', '#device-commands', '#device-ids', '#readings',
    '#pq-events', '#outages', '#bill']) {
    const node = $(id);
    if (node) node.replaceChildren();
  }
  $('#who').textContent = '';
  $('#live').textContent = '';
  $('#logout').hidden = true;
  $('#nav').hidden = true;
  $('#login-error').textContent = message;
  route();
}

function setupLogin() {
  $('#login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = $('#token').value.trim();
    if (!token) { $('#login-error').textContent = 'Enter a token.'; return; }
    $('#login').disabled = true;
    try {
      await startSession(token);
    } catch (error) {
      if (error.status !== 401) {
        $('#login-error').textContent = `Sign-in failed: ${error.message}`;
        state.token = null;
      }
    } finally {
      $('#login').disabled = false;
    }
  });
  $('#logout').addEventListener('click', () => endSession('Signed out.'));
}

// ---------------------------------------------------------------------------------------
// Router: #/  #/device/<id>  #/console  #/alarms

const VIEWS = ['login-view', 'grid-view', 'device-view', 'console-view', 'alarms-view'];

function showView(id) {
  for (const view of VIEWS) $(`#${view}`).hidden = view !== id;
}

function route(fromNavigation = false) {
  if (!state.me) { page = null; showView('login-view'); return; }
  const hash = location.hash || '#/';
  let current = '#/';
  if (!hash.startsWith('#/')) return; // an in-page anchor (the skip link), not a route
  if (hash.startsWith('#/device/')) {
    let id;
    try {
      id = decodeURIComponent(hash.slice('#/device/'.length));
    } catch {
      location.hash = '#/';
      return;
    }
    showView('device-view');
    openDevicePage(id);
    current = null;
  } else {
    page = null;
    if (hash === '#/console') { showView('console-view'); current = hash; }
    else if (hash === '#/alarms') { showView('alarms-view'); current = hash; }
    else showView('grid-view');
  }
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.getAttribute('href') === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // After a navigation, move focus to the content so keyboard and screen reader users follow.
  if (fromNavigation) $('#main').focus({ preventScroll: true });
}

// ---------------------------------------------------------------------------------------
// Devices and the grid

function record(id) {
  let rec = state.devices.get(id);
  if (!rec) {
    rec = { view: { id, labels: {} }, presence: null, values: {}, valuesAt: null };
    state.devices.set(id, rec);
  }
  return rec;
}

const presenceOf = (rec) => rec.presence?.inferred || rec.view.presenceState || 'unknown';
const lastSeenOf = (rec) => latest(rec.view.lastSeenAt, rec.presence?.lastContactAt);

/** Reads every page of a cursor-paged list. */
async function allPages(path, params = {}) {
  const items = [];
  let cursor = '';
  do {
    const result = await api(`${path}?${query({ ...params, limit: 1000, cursor })}`);
    items.push(...result.items);
    cursor = result.nextCursor || '';
  } while (cursor);
  return items;
}

async function loadDevices() {
  try {
    const views = await allPages('/v1/devices');
    for (const view of views) record(view.id).view = view;
    views.forEach((view) => renderCard(state.devices.get(view.id)));
    updateDeviceList();
    await refreshPresence();
  } catch (error) {
    sectionError($('#grid'), error);
  }
}

/** The safety net: presence of every device every 10 s (events bring changes sooner). */
async function refreshPresence() {
  if (!state.me) return;
  try {
    const items = await allPages('/v1/presence');
    for (const presence of items) {
      if (!state.devices.has(presence.device)) { fetchDevice(presence.device); continue; }
      const rec = record(presence.device);
      rec.presence = presence;
      renderCard(rec);
    }
    if (page) renderDeviceSummary();
  } catch (error) {
    if (error.status === 403 && !state.liveAllowed) await reloadDeviceViews();
  }
}

/** Without presence or events (role billing), the device list itself is polled instead. */
async function reloadDeviceViews() {
  try {
    for (const view of await allPages('/v1/devices')) { record(view.id).view = view; renderCard(record(view.id)); }
    updateDeviceList();
  } catch { /* shown on the next full load */ }
}

/** Fetches one device and its presence (a new device, or one we did not know). */
async function fetchDevice(id) {
  if (!id || state.fetching.has(id)) return;
  state.fetching.add(id);
  try {
    const [view, detail] = await Promise.all([
      api(`/v1/devices/${enc(id)}`),
      api(`/v1/devices/${enc(id)}/presence?limit=1`).catch(() => null),
    ]);
    const rec = record(id);
    rec.view = view;
    if (detail) rec.presence = detail.presence;
    renderCard(rec);
    updateDeviceList();
    if (page && page.id === id) renderDeviceSummary();
  } catch { /* another tenant's or gone: nothing to show */ } finally {
    state.fetching.delete(id);
  }
}

/**
 * Card values start from each device's newest reading, for roles that may read metering data
 * (admin, billing). A handful of devices at a time; events keep them current afterwards.
 */
async function loadInitialValues() {
  const ids = [...state.devices.keys()].slice(0, 100);
  const worker = async () => {
    while (ids.length && state.me) {
      const id = ids.shift();
      try {
        const pageOf = await api(`/v1/devices/${enc(id)}/uplink?kind=reading&limit=10`);
        for (const item of [...pageOf.items].reverse()) applyReading(id, item.name, item.data, item.receivedAt);
      } catch (error) {
        if (error.status === 403 || error.status === 401) { ids.length = 0; return; }
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

/** Records a reading's key values (kW, kWh, V, relay) for the card. */
function applyReading(id, name, data, at) {
  if (!data || typeof data !== 'object' || Array.isArray(data) || name === 'interval') return;
  const rec = state.devices.get(id);
  if (!rec) return;
  let changed = false;
  for (const key of CARD_VALUES) {
    if (key in data) { rec.values[key] = data[key]; changed = true; }
  }
  if (changed) { rec.valuesAt = at; renderCard(rec); }
}

/** Creates or updates the card of a device. */
function renderCard(rec) {
  const id = rec.view.id;
  // The card is kept on the record: looking it up among thousands of cards on every reading
  // and every tick would make a large fleet's grid crawl.
  let card = rec.card?.isConnected ? rec.card : $(byData('device', id), $('#grid'));
  if (!card) {
    card = buildCard(id);
    // Keep the grid ordered by id.
    const next = [...$('#grid').children].find((other) => other.dataset.device > id);
    $('#grid').insertBefore(card, next || null);
  }
  rec.card = card;
  const presence = presenceOf(rec);
  const label = PRESENCE_LABEL[presence] || presence;
  const declared = rec.presence?.declared?.state || rec.view.presence?.state;
  const seen = fmtAgo(lastSeenOf(rec));
  // Write only what changed: uplink events arrive often and observers watch these attributes.
  setAttr(card, 'data-presence', presence);
  setText($('.name', card), rec.view.name || id);
  setAttr($('.badge', card), 'data-v', presence);
  setText($('.badge', card), label);
  setText($('.declared', card), declared && declared !== 'available' ? `declared ${declared}` : '');
  setText($('.seen', card), `Last seen ${seen}`);
  for (const key of CARD_VALUES) setText($(`[data-value="${key}"]`, card), fmtNum(rec.values[key]));
  setAttr(card, 'aria-label', `${rec.view.name || id}, ${label}, last seen ${seen}`);
  applyFilterTo(card, rec);
}

function buildCard(id) {
  const open = () => { location.hash = `#/device/${enc(id)}`; };
  const values = el('dl', {}, CARD_VALUES.map((key) => [
    el('div', {}, el('dt', {}, key), el('dd', { dataset: { value: key } }, '—')),
  ]));
  return el('li', {
    class: 'card', tabindex: 0, dataset: { device: id, presence: 'unknown' },
    onclick: (event) => { if (!event.target.closest('a')) open(); },
    onkeydown: (event) => { if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); open(); } },
  },
  el('div', { class: 'card-top' },
    el('h3', {}, el('a', { class: 'name', href: `#/device/${enc(id)}`, tabindex: -1 })),
    badge('unknown', 'Unknown')),
  el('span', { class: 'id' }, id),
  el('span', { class: 'declared row-meta' }),
  values,
  el('span', { class: 'seen' }));
}

/** Applies the presence filter and the search box to one card. */
function applyFilterTo(card, rec) {
  const wanted = $('#presence-filter').value;
  const needle = $('#search').value.trim().toLowerCase();
  const labels = Object.entries(rec.view.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ');
  const haystack = `${rec.view.id} ${rec.view.name || ''} ${labels}`.toLowerCase();
  card.hidden = (wanted && presenceOf(rec) !== wanted) || (needle && !haystack.includes(needle));
}

function applyFilters() {
  for (const card of $('#grid').children) {
    const rec = state.devices.get(card.dataset.device);
    if (rec) applyFilterTo(card, rec);
  }
  updateDeviceList();
}

/** The grid's counter and the console's datalist of device ids. */
function updateDeviceList() {
  const cards = [...$('#grid').children].filter((c) => c.dataset.device);
  const shown = cards.filter((c) => !c.hidden).length;
  $('#grid-status').textContent = cards.length
    ? `${shown} of ${cards.length} devices shown`
    : 'No devices yet. They appear here as soon as they are provisioned or connect.';
  const list = $('#device-ids');
  if (list.children.length !== state.devices.size) {
    list.replaceChildren(...[...state.devices.keys()].sort().map((id) => el('option', { value: id })));
  }
}

/** Refreshes the relative times (every 5 s). */
function tick() {
  for (const rec of state.devices.values()) {
    if (rec.card?.isConnected) setText($('.seen', rec.card), `Last seen ${fmtAgo(lastSeenOf(rec))}`);
  }
  if (page) renderDeviceSummary();
}

// ---------------------------------------------------------------------------------------
// Live events: GET /v1/events read as a stream

/**
 * Returns a function to feed decoded text chunks to; calls onData with each event's data.
 * Handles lines split across chunks, CR/LF/CRLF endings, comments and multi-line data.
 */
function sseParser(onData) {
  let buffer = '';
  let data = [];
  let skipLF = false;
  return (chunk) => {
    if (skipLF && chunk.startsWith('\n')) chunk = chunk.slice(1);
    skipLF = chunk.endsWith('\r');
    buffer += chunk;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop(); // an incomplete line waits for the next chunk
    for (const line of lines) {
      if (line === '') {             // a blank line ends an event
        if (data.length) onData(data.join('\n'));
        data = [];
      } else if (!line.startsWith(':')) { // ':' starts a comment (": keep-alive")
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') data.push(value);
      }
    }
  };
}

function setLive(text, mode) {
  const live = $('#live');
  live.textContent = text;
  live.dataset.state = mode;
}

/** Keeps one event stream open while signed in, reconnecting with backoff (1 s doubling to 30 s). */
async function runEventStream() {
  const generation = ++state.streamGen;
  let backoff = 1000;
  let connectedBefore = false;
  while (state.token && generation === state.streamGen) {
    const ctrl = new AbortController();
    state.streamCtrl = ctrl;
    // The watchdog measures this connection, not the silence of the one before it.
    state.lastStreamActivity = Date.now();
    try {
      const response = await api('/v1/events', { raw: true, signal: ctrl.signal });
      state.liveAllowed = true;
      setLive('Live', 'live');
      const openedAt = Date.now();
      // Events are not replayed: after a reconnection, reload what may have changed meanwhile.
      if (connectedBefore) resync();
      connectedBefore = true;
      state.lastStreamActivity = Date.now();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      const feed = sseParser(handleEventData);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (generation !== state.streamGen) { ctrl.abort(); return; } // a newer session's stream took over
        state.lastStreamActivity = Date.now();
        feed(decoder.decode(value, { stream: true }));
      }
      // Only a stream that stayed open earns a fast reconnect: one closed at once by a proxy
      // must not make the page reconnect (and reload everything) every second.
      if (Date.now() - openedAt > 30_000) backoff = 1000;
    } catch (error) {
      if (generation !== state.streamGen || error.status === 401) return;
      if (error.status === 403) {
        state.liveAllowed = false;
        setLive(`No live updates for role ${state.me.role}; refreshing every 10 s`, 'down');
        return;
      }
    }
    if (generation !== state.streamGen) return;
    setLive(`Reconnecting in ${Math.round(backoff / 1000)} s…`, 'down');
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 30_000);
  }
}

/** The hub sends a keep-alive comment every 15 s; a silent stream is presumed dead. */
function watchStream() {
  if (state.streamCtrl && state.liveAllowed && Date.now() - state.lastStreamActivity > 40_000) {
    state.lastStreamActivity = Date.now();
    state.streamCtrl.abort(); // ends the read loop, which then reconnects (not a new generation)
  }
}

function resync() {
  loadDevices();
  loadCommands();
  loadCampaigns();
  loadAlarms();
  if (page) { page = null; route(); } // reopen the device page with fresh data
}

function handleEventData(text) {
  let event;
  try { event = JSON.parse(text); } catch { return; }
  const handler = EVENT_HANDLERS[event.type];
  if (handler) {
    try { handler(event); } catch (error) { console.error('event handler failed', event, error); }
  }
}

const EVENT_HANDLERS = {
  'device.provisioned': (event) => fetchDevice(event.device),
  'device.first-seen': (event) => fetchDevice(event.device),
  'device.presence': onPresenceEvent,
  uplink: onUplinkEvent,
  'command.submitted': onCommandEvent,
  'command.transition': onCommandEvent,
  campaign: onCampaignEvent,
  alarm: onAlarmEvent,
  power: onPowerEvent,
};

/** `device.presence`: detail is the new inferred state, data the PresenceTransition. */
function onPresenceEvent(event) {
  if (!state.devices.has(event.device)) { fetchDevice(event.device); return; }
  const rec = record(event.device);
  const transition = event.data || {};
  const inferred = transition.to || event.detail;
  rec.presence = {
    ...(rec.presence || { device: event.device }),
    inferred,
    since: transition.at || event.at,
    declared: transition.declared ? { state: transition.declared, note: transition.note } : rec.presence?.declared,
  };
  rec.view.presenceState = inferred;
  // Contact and connection mean the device was just heard from.
  if (['contact', 'connected', 'declared'].includes(transition.reason)) {
    rec.view.lastSeenAt = latest(rec.view.lastSeenAt, event.at);
  }
  renderCard(rec);
  if (page && page.id === event.device) renderDeviceSummary();
}

/** `uplink`: detail is "<kind> <name>", data the values (absent for roles without readData). */
function onUplinkEvent(event) {
  const rec = state.devices.get(event.device);
  if (!rec) { fetchDevice(event.device); return; }
  rec.view.lastSeenAt = latest(rec.view.lastSeenAt, event.at);
  const [kind, ...rest] = (event.detail || '').split(' ');
  const name = rest.join(' ');
  if (kind === 'reading') applyReading(event.device, name, event.data, event.at);
  renderCard(rec);
  if (page && page.id === event.device) {
    if (kind === 'reading' && name === 'interval' && event.data) chartAddInterval(event.data);
    if (kind === 'reading') { page.readings.set(name, { data: event.data, at: event.at }); renderReadings(); }
    if (kind === 'event') refreshPowerSections();
  }
}

function onCommandEvent(event) {
  const id = event.command;
  if (!id) return;
  const known = state.commands.get(id);
  if (event.type === 'command.submitted') {
    // Built from the event alone, so a large campaign costs no extra requests.
    const cmd = known || {
      id, device: event.device, name: event.detail || '', state: event.state || 'QUEUED', createdAt: event.at,
    };
    state.commands.set(id, cmd);
    addCommandRow($('#commands'), cmd);
    if (page && page.id === event.device) addCommandRow($('#device-commands'), cmd);
    return;
  }
  if (known) {
    known.state = event.state;
    known.updatedAt = event.at;
    updateCommandRows(known);
    // The outcome is not in the event: fetch the command once it is terminal and shown.
    if (TERMINAL.has(event.state) && document.querySelector(byData('command', id))) refetchCommand(id);
  }
  if ([...state.campaigns.values()].some((c) => c.state === 'running')) refreshRunningCampaigns();
}

async function refetchCommand(id) {
  try { const cmd = await api(`/v1/commands/${enc(id)}`); state.commands.set(id, cmd); updateCommandRows(cmd); } catch { /* keep the partial row */ }
}

/** `campaign`: detail starts with the campaign id; the campaign is refetched for its counts. */
function onCampaignEvent(event) {
  const id = (event.detail || '').split(' ')[0];
  if (id) fetchCampaign(id);
}

/** `alarm`: data is the AlarmEvent ({alarmID, …}); the alarm is refetched. */
function onAlarmEvent(event) {
  const id = event.data && event.data.alarmID;
  if (id) fetchAlarm(id); else loadAlarms();
}

function onPowerEvent(event) {
  if (page && page.id === event.device) refreshPowerSections();
}

// ---------------------------------------------------------------------------------------
// Commands (console list and device page)

function commandRow(cmd) {
  const terminal = TERMINAL.has(cmd.state);
  const row = el('li', { dataset: { command: cmd.id, state: cmd.state } },
    el('div', { class: 'row-main' },
      el('strong', {}, cmd.name || '(command)'), ' → ',
      el('a', { href: `#/device/${enc(cmd.device || '')}` }, cmd.device || '?'),
      el('div', { class: 'row-meta' }, `${cmd.id} · ${fmtTime(cmd.updatedAt || cmd.createdAt)}`,
        cmd.origin && cmd.origin !== 'operator' ? ` · ${cmd.origin}` : '')),
    el('div', { class: 'row-side' }, badge(cmd.state, cmd.state)));
  if (cmd.args && Object.keys(cmd.args).length) {
    $('.row-meta', row).append(` · args ${compactJSON(cmd.args)}`);
  }
  if (terminal && cmd.outcome) {
    const outcome = cmd.outcome;
    const shown = outcome.data !== undefined ? outcome.data : outcome;
    const result = el('code', { class: 'result' }, compactJSON(shown));
    if (cmd.state !== 'SUCCEEDED') {
      result.classList.add('bad');
      if (outcome.data !== undefined && (outcome.code || outcome.detail)) {
        result.textContent = `${[outcome.code, outcome.detail].filter(Boolean).join(': ')} ${compactJSON(shown)}`;
      }
    }
    row.append(result);
  } else if (terminal) {
    row.append(el('code', { class: 'result' }, '…'));
  }
  return row;
}

/** Adds a command at the top of a list (once), keeping the list bounded. */
function addCommandRow(list, cmd) {
  if ($(byData('command', cmd.id), list)) return;
  if (list.firstElementChild && list.firstElementChild.matches('p')) list.replaceChildren();
  list.prepend(commandRow(cmd));
  while (list.children.length > MAX_ROWS) {
    const gone = list.lastElementChild.dataset.command;
    list.lastElementChild.remove();
    // Forget a command no list shows any more, so a long-running console does not grow.
    if (gone && !document.querySelector(byData('command', gone))) state.commands.delete(gone);
  }
}

function updateCommandRows(cmd) {
  for (const row of document.querySelectorAll(byData('command', cmd.id))) row.replaceWith(commandRow(cmd));
}

async function loadCommands() {
  try {
    const result = await api('/v1/commands?limit=25');
    const list = $('#commands');
    for (const cmd of result.items.reverse()) {
      state.commands.set(cmd.id, cmd);
      addCommandRow(list, cmd);
      updateCommandRows(cmd); // a row shown before a reconnection may have missed transitions
    }
  } catch (error) {
    sectionError($('#commands'), error);
  }
}

// ---------------------------------------------------------------------------------------
// Console: send a command, or a campaign to several devices

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/** Reads and checks the form; answers {targets, name, args} or throws an Error to show. */
function readCommandForm() {
  const targets = $('#cmd-target').value.split(',').map((s) => s.trim()).filter(Boolean);
  const name = $('#cmd-name').value.trim();
  const argsText = $('#cmd-args').value.trim();
  if (!targets.length) throw new Error('Enter a device id (or several, separated by commas).');
  if (!NAME_RE.test(name)) throw new Error('The command name must be 1-64 characters of A-Z a-z 0-9 . _ : -');
  let args = {};
  if (argsText) {
    try { args = JSON.parse(argsText); } catch (error) {
      throw new Error(`Arguments are not valid JSON: ${error.message}`);
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new Error('Arguments must be a JSON object, such as {"state": "open"}.');
    }
  }
  return { targets: [...new Set(targets)], name, args };
}

async function sendCommand(event) {
  event.preventDefault();
  const error = $('#cmd-error');
  error.textContent = '';
  let form;
  try { form = readCommandForm(); } catch (problem) { error.textContent = problem.message; return; }
  $('#cmd-send').disabled = true;
  try {
    if (form.targets.length === 1) {
      const cmd = await api(`/v1/devices/${enc(form.targets[0])}/commands`, {
        method: 'POST', body: { name: form.name, args: form.args },
      });
      state.commands.set(cmd.id, { ...state.commands.get(cmd.id), ...cmd });
      addCommandRow($('#commands'), state.commands.get(cmd.id));
      updateCommandRows(state.commands.get(cmd.id));
    } else {
      const campaign = await api('/v1/campaigns', {
        method: 'POST', body: { name: form.name, args: form.args, devices: form.targets },
      });
      upsertCampaign(campaign);
    }
  } catch (problem) {
    if (problem.status === 403) error.textContent = `Not permitted for role ${state.me.role}: ${problem.message}`;
    else if (problem.status !== 401) error.textContent = `The hub refused: ${problem.message}`;
  } finally {
    $('#cmd-send').disabled = false;
  }
}

// ---------------------------------------------------------------------------------------
// Campaigns

function campaignRow(campaign) {
  const counts = Object.entries(campaign.counts || {}).filter(([, n]) => n > 0);
  return el('li', { dataset: { campaign: campaign.id, state: campaign.state } },
    el('div', { class: 'row-main' },
      el('strong', {}, campaign.name), ` to ${campaign.devices} device${campaign.devices === 1 ? '' : 's'}`,
      el('div', { class: 'row-meta' }, `${campaign.id} · ${fmtTime(campaign.createdAt)}`,
        campaign.args && Object.keys(campaign.args).length ? ` · args ${compactJSON(campaign.args)}` : '',
        campaign.detail ? ` · ${campaign.detail}` : '')),
    el('div', { class: 'row-side' }, badge(campaign.state)),
    el('div', { class: 'counts', 'aria-label': 'Devices by state' },
      counts.map(([name, n]) => el('span', { dataset: { count: name } }, badge(name, `${name} ${n}`))),
      el('span', {}, `succeeded ${campaign.succeeded ?? 0} · failed ${campaign.failed ?? 0}`)));
}

function upsertCampaign(campaign) {
  state.campaigns.set(campaign.id, campaign);
  const list = $('#campaigns');
  const row = campaignRow(campaign);
  const existing = $(byData('campaign', campaign.id), list);
  if (existing) existing.replaceWith(row);
  else {
    if (list.firstElementChild && list.firstElementChild.matches('p')) list.replaceChildren();
    list.prepend(row);
  }
}

async function fetchCampaign(id) {
  try { upsertCampaign(await api(`/v1/campaigns/${enc(id)}`)); } catch { /* not ours, or gone */ }
}

async function loadCampaigns() {
  try {
    const result = await api('/v1/campaigns?limit=20');
    result.items.reverse().forEach(upsertCampaign);
  } catch (error) {
    sectionError($('#campaigns'), error);
  }
}

// Children's transitions do not name their campaign: refresh running ones at most once a second.
const refreshRunningCampaigns = debounce(() => {
  for (const campaign of state.campaigns.values()) if (campaign.state === 'running') fetchCampaign(campaign.id);
}, 1000);

// ---------------------------------------------------------------------------------------
// Alarms

function alarmRow(alarm) {
  const acknowledged = alarm.state === 'acknowledged' || alarm.state === 'acknowledgedAndCleared';
  const row = el('li', { dataset: { alarm: alarm.id, state: alarm.state, severity: alarm.severity } },
    el('div', { class: 'row-main' },
      badge(alarm.severity), ' ', el('strong', {}, alarm.name), ' on ',
      el('a', { href: `#/device/${enc(alarm.device || '')}` }, alarm.device || '?'),
      el('div', { class: 'row-meta' },
        `raised ${fmtTime(alarm.raisedAt)}`,
        alarm.value != null ? ` · value ${fmtNum(alarm.value)}` : '',
        alarm.offeredTo ? ` · offered to ${alarm.offeredTo}` : '',
        alarm.acknowledgedBy ? ` · acknowledged by ${alarm.acknowledgedBy} ${fmtTime(alarm.acknowledgedAt)}` : '',
        alarm.clearedAt ? ` · cleared ${fmtTime(alarm.clearedAt)}` : '')),
    el('div', { class: 'row-side' }, badge(alarm.state)));
  if (!acknowledged) {
    $('.row-side', row).append(el('button', {
      type: 'button', class: 'ack', 'aria-label': `Acknowledge ${alarm.name} on ${alarm.device}`,
      onclick: (event) => acknowledgeAlarm(alarm.id, event.currentTarget),
    }, 'Acknowledge'));
  }
  return row;
}

function upsertAlarm(alarm) {
  state.alarms.set(alarm.id, alarm);
  const list = $('#alarms');
  const row = alarmRow(alarm);
  const existing = $(byData('alarm', alarm.id), list);
  if (existing) existing.replaceWith(row);
  else {
    if (list.firstElementChild && list.firstElementChild.matches('p')) list.replaceChildren();
    list.prepend(row);
  }
  updateAlarmCount();
}

function updateAlarmCount() {
  const open = [...state.alarms.values()].filter((a) => a.state === 'raised' || a.state === 'cleared').length;
  const count = $('#alarm-count');
  count.hidden = open === 0;
  count.textContent = String(open);
  count.setAttribute('aria-label', `${open} unacknowledged`);
}

async function loadAlarms() {
  const list = $('#alarms');
  try {
    const result = await api(`/v1/alarms${$('#alarms-all').checked ? '?all=true' : ''}`);
    state.alarms.clear();
    list.replaceChildren();
    result.items.reverse().forEach(upsertAlarm);
    if (!result.items.length) list.replaceChildren(el('p', { class: 'notice' }, 'No alarms.'));
    updateAlarmCount();
  } catch (error) {
    sectionError(list, error);
  }
}

async function fetchAlarm(id) {
  try { upsertAlarm(await api(`/v1/alarms/${enc(id)}`)); } catch { /* gone, or not ours */ }
}

async function acknowledgeAlarm(id, button) {
  $('#alarms-status').textContent = '';
  button.disabled = true;
  try {
    upsertAlarm(await api(`/v1/alarms/${enc(id)}/ack`, { method: 'POST', body: { operator: state.me.name } }));
  } catch (error) {
    button.disabled = false;
    if (error.status === 403) $('#alarms-status').textContent = `Acknowledging is not permitted for role ${state.me.role}.`;
    else if (error.status !== 401) $('#alarms-status').textContent = `Could not acknowledge: ${error.message}`;
  }
}

// ---------------------------------------------------------------------------------------
// Device page

function openDevicePage(id) {
  if (page && page.id === id) return; // already open (e.g. a re-route after reconnecting)
  page = { id, readings: new Map() };
  $('#device-title').textContent = id;
  for (const sel of ['#readings', '#pq-events', '#outages', '#bill', '#device-commands']) {
    $(sel).replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  }
  for (const link of document.querySelectorAll('#downloads a[data-format]')) {
    const ext = { csv: 'csv', greenbutton: 'xml', xml: 'xml' }[link.dataset.format];
    link.setAttribute('download', `${id}-intervals${link.dataset.format === 'greenbutton' ? '-greenbutton' : ''}.${ext}`);
  }
  if (!state.devices.has(id)) fetchDevice(id);
  renderDeviceSummary();
  loadReadings(id);
  loadChart();
  refreshPowerSectionsNow();
  loadBill(id);
  loadDeviceCommands(id);
}

function renderDeviceSummary() {
  const rec = state.devices.get(page.id);
  const box = $('#device-summary');
  if (!rec) { box.replaceChildren('Loading device…'); return; }
  const presence = presenceOf(rec);
  const declared = rec.presence?.declared;
  const labels = Object.entries(rec.view.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
  box.replaceChildren(
    el('span', {}, rec.view.name || ''),
    el('span', { dataset: { presence } }, badge(presence, PRESENCE_LABEL[presence] || presence)),
    declared ? el('span', {}, `declared ${declared.state}${declared.note ? ` (${declared.note})` : ''}`) : null,
    el('span', {}, `last seen ${fmtAgo(lastSeenOf(rec))}`),
    labels ? el('span', {}, `labels: ${labels}`) : null,
    rec.view.clockOffset != null ? el('span', {}, `clock offset ${fmtNum(Math.round(rec.view.clockOffset * 1000))} ms`) : null,
  );
}

async function loadReadings(id) {
  try {
    const result = await api(`/v1/devices/${enc(id)}/uplink?kind=reading&limit=50`);
    if (!page || page.id !== id) return;
    for (const item of result.items) { // newest first: keep the first of each name
      if (!page.readings.has(item.name)) page.readings.set(item.name, { data: item.data, at: item.receivedAt });
    }
    renderReadings();
  } catch (error) {
    if (page && page.id === id) { page.readingsError = error; sectionError($('#readings'), error); }
  }
}

/** The readings table: one row per value (nested objects flattened as a.b). */
function renderReadings() {
  if (page.readingsError) return;
  const rows = [];
  const flatten = (prefix, value) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) flatten(prefix ? `${prefix}.${k}` : k, v);
    } else rows.push([prefix, value]);
  };
  const names = [...page.readings.keys()].sort();
  const body = [];
  for (const name of names) {
    const { data, at } = page.readings.get(name);
    rows.length = 0;
    if (data == null) rows.push(['(values hidden)', null]); else flatten('', data);
    for (const [key, value] of rows) {
      body.push(el('tr', { dataset: { reading: name, key } },
        el('td', {}, name), el('td', {}, key || 'value'),
        el('td', { class: 'num' }, typeof value === 'object' && value !== null ? compactJSON(value) : fmtNum(value)),
        el('td', {}, fmtTime(at))));
    }
  }
  if (!body.length) { $('#readings').replaceChildren(el('p', { class: 'notice' }, 'No readings yet.')); return; }
  $('#readings').replaceChildren(el('div', { class: 'table-wrap' }, el('table', {},
    el('thead', {}, el('tr', {}, ['Reading', 'Name', 'Value', 'Received'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, body))));
}

/** A small table from rows of cells; `headers` name the columns. */
function table(headers, rows) {
  return el('div', { class: 'table-wrap' }, el('table', {},
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((c) => el('td', {}, c)))))));
}

const refreshPowerSections = debounce(() => refreshPowerSectionsNow(), 800);

function refreshPowerSectionsNow() {
  if (!page) return;
  loadPQ(page.id);
  loadOutages(page.id);
}

async function loadPQ(id) {
  const box = $('#pq-events');
  try {
    const events = await api(`/v1/power/pq?${query({ device: id, limit: 20 })}`);
    if (!page || page.id !== id) return;
    if (!events.length) { box.replaceChildren(el('p', { class: 'notice' }, 'No power quality events.')); return; }
    box.replaceChildren(table(['When', 'Event', 'Details'], events.map((e) => {
      const { device, id: eventID, receivedAt, at, kind, classification, ...rest } = e;
      return [fmtTime(at || receivedAt), [kind, classification].filter(Boolean).join(' / ') || '—', compactJSON(rest)];
    })));
  } catch (error) { if (page && page.id === id) sectionError(box, error); }
}

async function loadOutages(id) {
  const box = $('#outages');
  try {
    const outages = await api(`/v1/power/outages?${query({ device: id, limit: 20 })}`);
    if (!page || page.id !== id) return;
    if (!outages.length) { box.replaceChildren(el('p', { class: 'notice' }, 'No outages recorded.')); return; }
    box.replaceChildren(table(['Start', 'End', 'Cause', 'Last gasp'], outages.map((o) => [
      fmtTime(o.start), o.end ? fmtTime(o.end) : 'open', o.cause, o.lastGasp ? 'yes' : 'no',
    ])));
  } catch (error) { if (page && page.id === id) sectionError(box, error); }
}

async function loadBill(id) {
  const box = $('#bill');
  try {
    const tariffs = await api('/v1/power/tariffs');
    if (!page || page.id !== id) return;
    if (!tariffs.length) { box.replaceChildren(el('p', { class: 'notice' }, 'No tariff is defined, so there is no bill.')); return; }
    const tariff = tariffs[0];
    const bill = await api(`/v1/power/devices/${enc(id)}/bill?${query({ tariff: tariff.id })}`);
    if (!page || page.id !== id) return;
    const money = (v) => `${fmtNum(v)} ${bill.currency}`;
    box.replaceChildren(
      el('p', {}, `Tariff ${bill.tariff} (${tariff.id}), ${fmtTime(bill.from)} – ${fmtTime(bill.to)}: `,
        el('strong', {}, money(bill.total)), `, ${fmtNum(bill.energyKWh)} kWh`,
        bill.complete ? '' : ` (incomplete: ${bill.missingIntervals.length} intervals missing)`),
      table(['Charge', 'Quantity', 'Rate', 'Amount'], bill.lineItems.map((item) => [
        item.description, `${fmtNum(item.quantity)} ${item.unit}`, fmtNum(item.rate), money(item.amount),
      ])),
      bill.warnings.length ? el('ul', {}, bill.warnings.map((w) => el('li', {}, w))) : null,
    );
  } catch (error) { if (page && page.id === id) sectionError(box, error); }
}

async function loadDeviceCommands(id) {
  const list = $('#device-commands');
  try {
    const result = await api(`/v1/devices/${enc(id)}/commands?limit=10`);
    if (!page || page.id !== id) return;
    list.replaceChildren();
    for (const cmd of result.items.reverse()) { state.commands.set(cmd.id, cmd); addCommandRow(list, cmd); }
    if (!result.items.length) list.replaceChildren(el('p', { class: 'notice' }, 'No commands yet.'));
  } catch (error) { if (page && page.id === id) sectionError(list, error); }
}

/** Downloads need the Authorization header: fetch the file, then save it from an object URL. */
async function download(event) {
  const link = event.target.closest('a[data-format]');
  if (!link || !page) return;
  event.preventDefault();
  const { from, to } = chart;
  const params = query({ format: link.dataset.format, from: new Date(from).toISOString(), to: new Date(to).toISOString() });
  try {
    const response = await api(`/v1/power/devices/${enc(page.id)}/intervals?${params}`, { raw: true });
    const url = URL.createObjectURL(await response.blob());
    const save = el('a', { href: url, download: link.getAttribute('download') || 'intervals' });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    if (error.status === 403) $('#chart-status').textContent = `Downloads are not permitted for role ${state.me.role}.`;
    else if (error.status !== 401) $('#chart-status').textContent = `Download failed: ${error.message}`;
  }
}

// ---------------------------------------------------------------------------------------
// Load-profile chart (canvas): kW = kWh × 3600 / interval seconds (×4 for 15-minute data)

const chart = { points: [], from: 0, to: 0, viewFrom: 0, viewTo: 0, drag: null };
const MIN_SPAN = 2 * 3600_000;

async function loadChart() {
  const id = page.id;
  const generation = (chart.generation = (chart.generation || 0) + 1);
  const days = Number($('#period').value);
  chart.to = Date.now();
  chart.from = chart.to - days * 86400_000;
  chart.viewFrom = chart.from;
  chart.viewTo = chart.to;
  chart.points = [];
  chart.error = null;
  drawChart();
  try {
    const params = query({ format: 'json', from: new Date(chart.from).toISOString(), to: new Date(chart.to).toISOString() });
    const intervals = await api(`/v1/power/devices/${enc(id)}/intervals?${params}`);
    // A later period change (or another device) owns the chart now.
    if (!page || page.id !== id || generation !== chart.generation) return;
    chart.points = intervals.map(toPoint).filter(Boolean);
  } catch (error) {
    if (!page || page.id !== id || generation !== chart.generation) return;
    chart.error = error.status === 403 ? `Not permitted for role ${state.me.role}.` : `Could not load: ${error.message}`;
  }
  drawChart();
}

function toPoint(interval) {
  const t = Date.parse(interval.start);
  const seconds = interval.seconds ?? 900;
  // The hub stores only 60-86400 s intervals, but a live reading is shown as the device sent
  // it: one from the far future or with an absurd length would stretch the axes without end.
  if (Number.isNaN(t) || typeof interval.kWh !== 'number' || !Number.isFinite(interval.kWh)) return null;
  if (!Number.isInteger(seconds) || seconds < 60 || seconds > 86400 || t > Date.now() + 86400_000) return null;
  return { t, end: t + seconds * 1000, kW: (interval.kWh * 3600) / seconds };
}

/** A live `interval` reading of the open device joins the chart when it falls in the period. */
function chartAddInterval(data) {
  const point = toPoint(data);
  if (!point || point.t < chart.from || chart.points.some((p) => p.t === point.t)) return;
  chart.points.push(point);
  chart.points.sort((a, b) => a.t - b.t);
  if (point.end > chart.to) {
    const atEnd = chart.viewTo === chart.to;
    chart.to = point.end;
    if (atEnd) chart.viewTo = chart.to;
  }
  drawChart();
}

/** Zooms by `factor` (< 1 zooms in) around the time `center`, within the loaded period. */
function zoom(factor, center = (chart.viewFrom + chart.viewTo) / 2) {
  const full = chart.to - chart.from;
  const span = Math.min(full, Math.max(MIN_SPAN, (chart.viewTo - chart.viewFrom) * factor));
  const ratio = (center - chart.viewFrom) / (chart.viewTo - chart.viewFrom);
  setView(center - span * ratio, span);
}

function pan(fraction) {
  const span = chart.viewTo - chart.viewFrom;
  setView(chart.viewFrom + span * fraction, span);
}

function setView(start, span) {
  const clamped = Math.min(Math.max(start, chart.from), chart.to - span);
  chart.viewFrom = clamped;
  chart.viewTo = clamped + span;
  drawChart();
}

const CHART_PAD = { left: 56, right: 14, top: 14, bottom: 40 };

/** A "nice" tick step (1, 2 or 5 × 10^n) giving about `count` ticks up to `max`. */
function niceStep(max, count) {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

const TIME_STEPS = [15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * 60_000);

function timeLabel(t, step) {
  const d = new Date(t);
  const date = d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (step >= 86400_000) return date;
  return d.getHours() === 0 && d.getMinutes() === 0 ? date : time;
}

function drawChart() {
  const canvas = $('#chart');
  if (!canvas || !page) return;
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '12px system-ui, sans-serif';

  const plotW = width - CHART_PAD.left - CHART_PAD.right;
  const plotH = height - CHART_PAD.top - CHART_PAD.bottom;
  const { viewFrom, viewTo } = chart;
  const visible = chart.points.filter((p) => p.end > viewFrom && p.t < viewTo);
  const peak = visible.reduce((m, p) => Math.max(m, p.kW), 0);
  const step = niceStep(peak > 0 ? peak : 1, 5);
  const yMax = Math.max(step, Math.ceil((peak || 1) / step) * step);
  const x = (t) => CHART_PAD.left + ((t - viewFrom) / (viewTo - viewFrom)) * plotW;
  const y = (kW) => CHART_PAD.top + plotH - (kW / yMax) * plotH;

  // Horizontal grid and kW labels.
  ctx.fillStyle = '#4a5561';
  ctx.strokeStyle = '#e3e7eb';
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let v = 0, n = 0; v <= yMax + step / 2 && n < 50; v += step, n += 1) {
    ctx.beginPath(); ctx.moveTo(CHART_PAD.left, y(v)); ctx.lineTo(width - CHART_PAD.right, y(v)); ctx.stroke();
    ctx.fillText(fmtNum(Number(v.toPrecision(6))), CHART_PAD.left - 6, y(v));
  }
  ctx.save();
  ctx.translate(12, CHART_PAD.top + plotH / 2); ctx.rotate(-Math.PI / 2);
  ctx.textAlign = 'center'; ctx.fillText('kW', 0, 0);
  ctx.restore();

  // Time ticks: the smallest step leaving ~90 px per label, aligned to local time.
  const span = viewTo - viewFrom;
  const tStep = TIME_STEPS.find((s) => (span / s) * 90 <= plotW) || TIME_STEPS[TIME_STEPS.length - 1];
  const offset = new Date(viewFrom).getTimezoneOffset() * 60_000;
  let tick = Math.ceil((viewFrom - offset) / Math.min(tStep, 86400_000)) * Math.min(tStep, 86400_000) + offset;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (let n = 0; tick <= viewTo && n < 500; tick += tStep, n += 1) {
    const px = x(tick);
    ctx.strokeStyle = '#eef1f4';
    ctx.beginPath(); ctx.moveTo(px, CHART_PAD.top); ctx.lineTo(px, CHART_PAD.top + plotH); ctx.stroke();
    ctx.fillText(timeLabel(tick, tStep), px, CHART_PAD.top + plotH + 6);
  }

  // Bars, clipped to the plot.
  ctx.save();
  ctx.beginPath(); ctx.rect(CHART_PAD.left, CHART_PAD.top, plotW, plotH); ctx.clip();
  ctx.fillStyle = '#2f74c0';
  for (const p of visible) {
    const x0 = x(p.t);
    const w = Math.max(x(p.end) - x0 - (x(p.end) - x0 > 4 ? 1 : 0), 0.75);
    ctx.fillRect(x0, y(p.kW), w, y(0) - y(p.kW));
  }
  ctx.restore();

  // Axes.
  ctx.strokeStyle = '#4a5561';
  ctx.beginPath();
  ctx.moveTo(CHART_PAD.left, CHART_PAD.top); ctx.lineTo(CHART_PAD.left, CHART_PAD.top + plotH);
  ctx.lineTo(width - CHART_PAD.right, CHART_PAD.top + plotH); ctx.stroke();

  describeChart(visible, peak, ctx, width, height);
}

/** The status line (also the canvas's accessible name) summarises what is drawn. */
function describeChart(visible, peak, ctx, width, height) {
  let text;
  if (chart.error) text = chart.error;
  else if (!visible.length) text = `No interval data between ${fmtTime(chart.viewFrom)} and ${fmtTime(chart.viewTo)}.`;
  else {
    const energy = visible.reduce((sum, p) => sum + (p.kW * (p.end - p.t)) / 3600_000, 0);
    const top = visible.find((p) => p.kW === peak);
    text = `${visible.length} intervals from ${fmtTime(chart.viewFrom)} to ${fmtTime(chart.viewTo)}: `
      + `${fmtNum(energy)} kWh, peak ${fmtNum(peak)} kW at ${fmtTime(top.t)}.`;
  }
  if (chart.error || !visible.length) {
    ctx.fillStyle = '#4a5561'; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
    ctx.fillText(chart.error || 'No interval data', width / 2, height / 2);
  }
  announceChart(text);
}

/** The status line is a live region: while dragging or wheeling, it is rewritten at most every
 *  half second, so a screen reader is not flooded with every intermediate view. */
const announceChart = debounce((text) => {
  if ($('#chart-status').textContent === text) return;
  $('#chart-status').textContent = text;
  $('#chart').setAttribute('aria-label', `Load profile chart. ${text}`);
}, 500);

function setupChart() {
  const canvas = $('#chart');
  $('#period').addEventListener('change', () => page && loadChart());
  $('#zoom-in').addEventListener('click', () => zoom(0.5));
  $('#zoom-out').addEventListener('click', () => zoom(2));
  $('#pan-left').addEventListener('click', () => pan(-0.25));
  $('#pan-right').addEventListener('click', () => pan(0.25));
  canvas.addEventListener('wheel', (event) => {
    event.preventDefault();
    const rect = canvas.getBoundingClientRect();
    const plotW = rect.width - CHART_PAD.left - CHART_PAD.right;
    const ratio = Math.min(1, Math.max(0, (event.clientX - rect.left - CHART_PAD.left) / plotW));
    zoom(event.deltaY < 0 ? 0.8 : 1.25, chart.viewFrom + ratio * (chart.viewTo - chart.viewFrom));
  }, { passive: false });
  canvas.addEventListener('keydown', (event) => {
    const actions = {
      ArrowLeft: () => pan(-0.25), ArrowRight: () => pan(0.25), '+': () => zoom(0.5), '=': () => zoom(0.5),
      '-': () => zoom(2), Home: () => setView(chart.from, chart.to - chart.from),
    };
    if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
  });
  // Drag to pan.
  canvas.addEventListener('pointerdown', (event) => {
    chart.drag = { x: event.clientX, from: chart.viewFrom };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!chart.drag) return;
    const plotW = canvas.clientWidth - CHART_PAD.left - CHART_PAD.right;
    const span = chart.viewTo - chart.viewFrom;
    setView(chart.drag.from - ((event.clientX - chart.drag.x) / plotW) * span, span);
  });
  const endDrag = () => { chart.drag = null; };
  canvas.addEventListener('pointerup', endDrag);
  canvas.addEventListener('pointercancel', endDrag);
  new ResizeObserver(() => drawChart()).observe(canvas);
}

// ---------------------------------------------------------------------------------------
// Start

function boot() {
  setupLogin();
  setupChart();
  $('#presence-filter').addEventListener('change', applyFilters);
  $('#search').addEventListener('input', applyFilters);
  $('#cmd-form').addEventListener('submit', sendCommand);
  $('#alarms-all').addEventListener('change', loadAlarms);
  $('#downloads').addEventListener('click', download);
  window.addEventListener('hashchange', () => route(true));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    startSession(saved).catch((error) => {
      if (error.status !== 401) endSession(`Could not reach the hub: ${error.message}`);
    });
  } else {
    route();
  }
}

boot();
