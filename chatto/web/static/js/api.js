// Transport: GraphQL over HTTP (cookie + CSRF token), the /auth endpoints,
// multipart uploads with progress, and a graphql-transport-ws socket that
// reconnects with back-off. Only store.js uses this module.

export class ApiError extends Error {
  constructor(message, code = 'ERROR', extra = {}) {
    super(message);
    this.code = code;
    this.retryAfter = extra.retryAfter ?? null;
  }
}

const session = { csrf: '' };
export function setCsrf(token) { session.csrf = token || ''; }

function errorFrom(doc, status, retryHeader) {
  const err = doc?.errors?.[0];
  const ext = err?.extensions || {};
  const retryAfter = ext.retryAfter ?? (retryHeader ? Number(retryHeader) : null);
  return new ApiError(err?.message || `request failed (${status})`, ext.code || 'ERROR', { retryAfter });
}

async function post(path, body) {
  let res;
  try {
    res = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError('The server cannot be reached. Check your connection.', 'NETWORK');
  }
  let doc = null;
  try { doc = await res.json(); } catch (e) { doc = null; }
  return { res, doc };
}

export async function authCall(path, body = {}) {
  const { res, doc } = await post(path, body);
  if (!res.ok || doc?.errors) throw errorFrom(doc, res.status, res.headers.get('retry-after'));
  return doc;
}

function dataOf(doc, status, retryHeader = null) {
  if (doc?.errors?.length && !doc.data) throw errorFrom(doc, status, retryHeader);
  if (doc?.errors?.length) {
    // A partial answer: the first error wins for a mutation, data for a query.
    const e = errorFrom(doc, status);
    if (Object.values(doc.data || {}).every((v) => v === null)) throw e;
  }
  if (!doc) throw new ApiError(`request failed (${status})`);
  return doc.data;
}

export async function gql(query, variables = {}) {
  const { res, doc } = await post('/api/graphql', { query, variables });
  return dataOf(doc, res.status, res.headers.get('retry-after'));
}

/** GraphQL multipart upload (graphql-multipart-request-spec) with progress. */
export function upload(query, variables, fileVar, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query, variables: { ...variables, [fileVar]: null } }));
    form.append('map', JSON.stringify({ 0: [`variables.${fileVar}`] }));
    form.append('0', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/graphql');
    xhr.setRequestHeader('x-csrf-token', session.csrf);
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable && onProgress) onProgress(ev.loaded / ev.total); };
    xhr.onerror = () => reject(new ApiError('Upload failed: the server cannot be reached.', 'NETWORK'));
    xhr.onload = () => {
      let doc = null;
      try { doc = JSON.parse(xhr.responseText); } catch (e) { doc = null; }
      if (!doc || doc.errors?.length) reject(errorFrom(doc, xhr.status));
      else resolve(doc.data);
    };
    xhr.send(form);
  });
}

// A request sent on the socket and not answered within this long is sent
// again over HTTP (the hot mutations are idempotent: see store.js).
const SOCKET_REQUEST_MS = 10000;

/** One graphql-transport-ws subscription that survives drops.
 *
 * While it is up, the hot mutations (posting, typing, read markers) go over
 * it too (`request`): no HTTP request, no per-request credential check on
 * the server. A request whose socket drops before the answer is sent again
 * over HTTP by the caller (`store.js` gives posts a clientMessageId, so a
 * post that did arrive is not stored twice).
 */
export class LiveSocket {
  constructor(query, { onEvent, onState, onResumed, onRefused }) {
    Object.assign(this, { query, onEvent, onState, onResumed, onRefused });
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.timer = 0;
    this.everOpen = false;
    this.ready = false;
    this.nextId = 0;
    this.pending = new Map();
  }

  /** Run a query or mutation on the socket; rejects with code 'NETWORK' if it drops. */
  request(query, variables = {}) {
    const ws = this.ws;
    if (!ws || !this.ready) return Promise.reject(new ApiError('not connected', 'NETWORK'));
    const id = `q${++this.nextId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settle(id, null, new ApiError('no answer', 'NETWORK')), SOCKET_REQUEST_MS);
      this.pending.set(id, { resolve, reject, timer, data: null });
      ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
    });
  }

  settle(id, value, error) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (error) p.reject(error); else p.resolve(value);
  }

  dropPending() {
    for (const id of [...this.pending.keys()]) this.settle(id, null, new ApiError('connection lost', 'NETWORK'));
  }

  answer(msg) {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === 'next') {
      try { p.data = dataOf(msg.payload, 200); } catch (e) { this.settle(msg.id, null, e); }
    } else if (msg.type === 'error') {
      this.settle(msg.id, null, errorFrom({ errors: msg.payload }, 200));
    } else if (msg.type === 'complete') {
      this.settle(msg.id, p.data, p.data ? null : new ApiError('no answer', 'NETWORK'));
    }
  }

  start() { this.stopped = false; this.connect(); }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/api/graphql`, 'graphql-transport-ws');
    this.ws = ws;
    this.onState('connecting');
    ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    ws.onmessage = (m) => this.frame(ws, JSON.parse(m.data));
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      this.dropPending();
      if (this.stopped) return;
      if (ev.code === 4401 || ev.code === 4403) { this.onRefused(ev.code); return; }
      this.onState('offline');
      // Exponential back-off with jitter, capped at 30 s.
      const delay = Math.min(30000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  frame(ws, msg) {
    if (msg.id && msg.id !== 'my') {
      this.answer(msg);
    } else if (msg.type === 'connection_ack') {
      ws.send(JSON.stringify({ id: 'my', type: 'subscribe', payload: { query: this.query } }));
      this.attempt = 0;
      this.ready = true;
      this.onState('online');
      // Also on the first open: whatever happened between the first page load
      // and the subscription is fetched, not lost.
      this.onResumed(this.everOpen);
      this.everOpen = true;
    } else if (msg.type === 'next') {
      const ev = msg.payload?.data?.myEvents;
      if (ev) this.onEvent(ev);
    } else if (msg.type === 'ping') {
      ws.send(JSON.stringify({ type: 'pong' }));
    } else if (msg.type === 'error' || msg.type === 'complete') {
      ws.close(4000);
    }
  }

  /** For tests and the reconnect button: drop and reconnect now. */
  reconnectNow() { this.attempt = 0; if (this.ws) this.ws.close(4000); else this.connect(); }
}
