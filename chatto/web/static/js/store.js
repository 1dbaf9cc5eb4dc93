// The client's state and its only connection to the server. Views read
// `state`, listen with `on(topic, fn)` and call the intents exported here.
import { ApiError, LiveSocket, authCall, gql, setCsrf, upload } from './api.js';
import * as Q from './queries.js';
import { applyLive } from './live.js';

export { ApiError };
export const state = {
  me: null, server: null, perms: new Set(), groups: [],
  rooms: new Map(), current: null, thread: null,
  timelines: new Map(), threads: new Map(), members: new Map(),
  users: new Map(), presence: new Map(), typing: new Map(), roomPerms: new Map(), pinned: new Map(),
  notifications: [], notificationsMore: false, notificationsCursor: null, hasUnreadThreads: false,
  conn: 'connecting', notice: '',
};
const bus = new EventTarget();
let socket = null;

/** A hot mutation: over the live socket when it is up, else (or if it drops) over HTTP.
 * Only idempotent operations come here: posts carry a clientMessageId. */
async function hot(query, variables) {
  if (socket?.ready) {
    try { return await socket.request(query, variables); } catch (e) { if (e.code !== 'NETWORK') throw e; }
  }
  return gql(query, variables);
}

export function emit(topic, detail = {}) { bus.dispatchEvent(new CustomEvent(topic, { detail })); }
export function on(topic, fn) {
  const handler = (e) => fn(e.detail);
  bus.addEventListener(topic, handler);
  return () => bus.removeEventListener(topic, handler);
}
export const can = (perm) => state.perms.has(perm);
export const user = (id, fallback) => state.users.get(id) || fallback || null;

// --- getting in and out ------------------------------------------------------
/** Public facts (GET /api/server): the name, and whether sign-up is open. */
export async function loadPublicInfo() {
  try {
    const res = await fetch('/api/server', { credentials: 'same-origin' });
    const doc = await res.json();
    // `registration` (open/invite-only/closed) where the server has it.
    const mode = doc.registration || (doc.registrationOpen === false ? 'closed' : 'open');
    state.publicInfo = { name: doc.name, registration: String(mode).toLowerCase() };
  } catch (e) {
    state.publicInfo = { name: 'Chatto', registration: 'open' };
  }
}

export async function resume() {
  try {
    const doc = await authCall('/auth/session');
    if (!doc.user) return false;
    setCsrf(doc.csrfToken);
    await loadEverything();
    return true;
  } catch (e) {
    if (e.code === 'UNAUTHENTICATED') return false;
    throw e;
  }
}

async function signedIn(doc) {
  setCsrf(doc.csrfToken);
  await loadEverything();
  emit('auth', { signedIn: true });
}

export const signIn = async (login, password) => signedIn(await authCall('/auth/login', { login, password }));
// `invite`: the code of an invite link (null without one).
export const checkInvite = (invite) => authCall('/auth/invite', { invite });
export const requestCode = (email, invite = null) => authCall('/auth/register', { email, ...(invite ? { invite } : {}) });
export const verifyCode = async (email, code, invite = null) =>
  (await authCall('/auth/register/verify-code', { email, code, ...(invite ? { invite } : {}) })).token;
export const completeSignUp = async (token, login, password) =>
  signedIn(await authCall('/auth/register/complete', { token, login, password }));
export const forgotPassword = (email) => authCall('/auth/forgot-password', { email });
export const resetPassword = (token, password) => authCall('/auth/reset-password', { token, password });

export async function signOut(everywhere = false) {
  try { await authCall(everywhere ? '/auth/logout-all' : '/auth/logout'); } finally { ended(''); }
}

/** The live stream says the session ended: still signed in (a password change
 * gave this client a fresh cookie)? Then reconnect; else sign out here. */
let renewing = null;
export async function sessionEnded() {
  // A password change ends every older session, this socket's too: the
  // answer to it carries this client's fresh cookie, so wait for it first.
  if (renewing) await renewing.catch(() => {});
  try {
    const doc = await authCall('/auth/session');
    if (doc.user) {
      setCsrf(doc.csrfToken);
      if (socket) socket.stop();
      socket = null;
      startLive();
      return;
    }
  } catch (e) { /* fall through */ }
  ended('Your session has ended. Please sign in again.');
}

export function ended(notice) {
  if (socket) socket.stop();
  socket = null;
  setCsrf('');
  Object.assign(state, { me: null, current: null, thread: null, notice, notifications: [], notificationsMore: false, hasUnreadThreads: false });
  for (const m of [state.rooms, state.timelines, state.threads, state.members, state.typing, state.roomPerms, state.pinned]) m.clear();
  emit('auth', { signedIn: false });
}

export async function changePassword(currentPassword, newPassword) {
  renewing = authCall('/auth/change-password', { currentPassword, newPassword });
  try {
    setCsrf((await renewing).csrfToken);
  } finally {
    setTimeout(() => { renewing = null; }, 5000);
  }
}

// --- loading -----------------------------------------------------------------
async function loadEverything() {
  const d = await gql(Q.BOOT);
  state.me = d.viewer;
  state.server = d.server;
  state.groups = d.roomGroups;
  state.perms = new Set(d.viewerPermissions);
  state.rooms = new Map(d.myRooms.map((r) => [r.id, r]));
  state.hasUnreadThreads = d.hasUnreadFollowedThreads;
  remember(d.viewer);
  startLive();
  emit('rooms');
  await Promise.all(d.myRooms.filter((r) => r.kind === 'DM').map((r) => loadMembers(r.id)));
  emit('rooms');
}

export async function refreshRooms() {
  const d = await gql(`query { myRooms { ${Q.ROOM} } roomGroups { ${Q.GROUPS} } viewerPermissions hasUnreadFollowedThreads }`);
  state.rooms = new Map(d.myRooms.map((r) => [r.id, r]));
  state.groups = d.roomGroups;
  state.hasUnreadThreads = d.hasUnreadFollowedThreads;
  state.perms = new Set(d.viewerPermissions);
  emit('rooms');
  // A new DM: its label and presence dot come from its members.
  const dms = d.myRooms.filter((r) => r.kind === 'DM' && !state.members.has(r.id));
  await Promise.all(dms.map((r) => loadMembers(r.id).catch(() => {})));
}

/** SERVER_UPDATED: the name, description or logo changed. */
export async function refreshServer() {
  state.server = (await gql(`query { server { ${Q.SERVER} } }`)).server;
  emit('server');
  emit('rooms');
}

export function remember(u) {
  if (u && u.id) state.users.set(u.id, { ...state.users.get(u.id), ...u });
}

function rememberMessages(list) { for (const m of list) remember(m.author); }

/** The first page of a room's members (state.members); searchMembers pages on. */
export async function loadMembers(roomId) {
  const page = await searchMembers(roomId, '');
  state.members.set(roomId, page.users);
  emit('members', { roomId });
  return page.users;
}

/** One page of a room's members (roomId null: the server's directory), with presence. */
export async function searchMembers(roomId, search, after = null) {
  const vars = { roomId, search: search || null, after };
  const page = roomId ? (await gql(Q.MEMBERS, vars)).room.members : (await gql(Q.DIRECTORY, vars)).members;
  page.users.forEach(remember);
  const ids = page.users.map((u) => u.id).filter((id) => !state.presence.has(id));
  if (ids.length && state.server?.presenceEnabled) {
    const p = await gql(Q.PRESENCE, { ids });
    for (const x of p.presence) state.presence.set(x.userId, x.status);
  }
  return page;
}

export function roomLabel(room) {
  if (!room) return '';
  if (room.kind !== 'DM') return room.name;
  const others = (state.members.get(room.id) || []).filter((u) => u.id !== state.me?.id);
  return others.length ? others.map((u) => u.displayName || u.login).join(', ') : room.name;
}

// --- timelines -----------------------------------------------------------------
function timeline(roomId, threadId = null) {
  const map = threadId ? state.threads : state.timelines;
  const key = threadId || roomId;
  if (!map.has(key)) map.set(key, { roomId, threadId, events: [], byId: new Map(), hasOlder: true, loaded: false, busy: false });
  return map.get(key);
}
export const timelineOf = (roomId, threadId = null) => timeline(roomId, threadId);

function insert(tl, msgs, where) {
  const fresh = msgs.filter((m) => !tl.byId.has(m.id));
  for (const m of fresh) tl.byId.set(m.id, m);
  if (where === 'start') tl.events.unshift(...fresh);
  else tl.events.push(...fresh);
  return fresh;
}

export const roomCan = (roomId, perm) => state.roomPerms.get(roomId)?.has(perm) ?? false;

export async function openRoom(roomId) {
  state.current = roomId;
  state.thread = null;
  emit('room', { roomId });
  const tl = timeline(roomId);
  const perms = gql('query($r: ID) { viewerPermissions(roomId: $r) }', { r: roomId }).then((d) => {
    state.roomPerms.set(roomId, new Set(d.viewerPermissions));
    emit('room-perms', { roomId });
  }).catch(() => {});
  if (!tl.loaded) await loadLatest(tl);
  await perms;
  if (state.rooms.get(roomId)?.kind === 'DM' || !state.members.has(roomId)) loadMembers(roomId).catch(() => {});
  markRead(roomId);
}

async function loadLatest(tl) {
  const d = await gql(Q.EVENTS, { roomId: tl.roomId, limit: 50, thread: tl.threadId });
  const page = d.room.events;
  rememberMessages(page.events);
  insert(tl, page.events, 'end');
  Object.assign(tl, { loaded: true, hasOlder: page.hasOlder, start: page.startCursor, end: page.endCursor });
  emit('timeline', { roomId: tl.roomId, threadId: tl.threadId, reset: true });
}

export async function loadOlder(roomId, threadId = null) {
  const tl = timeline(roomId, threadId);
  if (tl.busy || !tl.hasOlder || !tl.loaded) return 0;
  tl.busy = true;
  try {
    const d = await gql(Q.EVENTS, { roomId, before: tl.start, limit: 100, thread: threadId });
    const page = d.room.events;
    rememberMessages(page.events);
    const fresh = insert(tl, page.events, 'start');
    Object.assign(tl, { hasOlder: page.hasOlder, start: page.startCursor || tl.start });
    emit('older', { roomId, threadId, count: fresh.length });
    return fresh.length;
  } finally { tl.busy = false; }
}

/** After a (re)connect: fetch what every loaded timeline missed, in pages. */
async function catchUp() {
  for (const tl of [...state.timelines.values(), ...state.threads.values()]) {
    if (!tl.loaded) continue;
    let after = tl.events.length ? tl.events[tl.events.length - 1].cursor : tl.end;
    for (let guard = 0; after && guard < 50; guard += 1) {
      const d = await gql(Q.EVENTS, { roomId: tl.roomId, after, limit: 200, thread: tl.threadId });
      const page = d.room.events;
      rememberMessages(page.events);
      for (const m of insert(tl, page.events, 'end')) emit('append', { roomId: tl.roomId, threadId: tl.threadId, id: m.id });
      if (!page.hasNewer || !page.events.length) break;
      after = page.endCursor;
    }
  }
  await refreshRooms();
  emit('resumed');
}

export function startLive() {
  if (socket) return;
  socket = new LiveSocket(Q.LIVE, {
    onEvent: applyLive,
    onState: (s) => { state.conn = s; emit('conn'); },
    onResumed: () => catchUp().catch((e) => console.warn('catch-up failed', e.message)),
    onRefused: () => sessionEnded(),
  });
  socket.start();
}
export const reconnectNow = () => socket && socket.reconnectNow();

export function upsertMessage(msg) {
  remember(msg.author);
  const tl = msg.threadRootId && !msg.echo ? state.threads.get(msg.threadRootId) : state.timelines.get(msg.roomId);
  const touched = [];
  for (const t of [tl, state.threads.get(msg.id)]) {
    if (!t) continue;
    const old = t.byId.get(msg.id);
    if (old) { Object.assign(old, msg); touched.push(t); }
  }
  for (const t of touched) emit('message', { roomId: t.roomId, threadId: t.threadId, id: msg.id });
  return touched.length > 0;
}

export function appendLive(msg) {
  remember(msg.author);
  const threadId = msg.threadRootId && !msg.echo ? msg.threadRootId : null;
  const tl = threadId ? state.threads.get(threadId) : state.timelines.get(msg.roomId);
  if (!tl || !tl.loaded || tl.byId.has(msg.id)) return false;
  insert(tl, [msg], 'end');
  emit('append', { roomId: msg.roomId, threadId, id: msg.id });
  return true;
}

// --- intents on messages ---------------------------------------------------------
export async function send(roomId, body, { thread = null, attachments = [], reply = null } = {}) {
  const cid = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
  const vars = { roomId, body, thread, reply, att: attachments.length ? attachments : null, cid };
  const d = await hot(Q.POST, vars);
  appendLive(d.postMessage);
  return d.postMessage;
}
export async function edit(roomId, id, body) { upsertMessage((await gql(Q.EDIT, { roomId, id, body })).editMessage); }
export async function retract(roomId, id) { await gql(Q.RETRACT, { roomId, id }); }
export async function react(roomId, id, code, add = true) {
  upsertMessage((await gql(Q.REACT, { roomId, id, code, add })).react);
}
export async function uploadFile(roomId, file, onProgress) {
  return (await upload(Q.UPLOAD, { roomId }, 'file', file, onProgress)).uploadAttachment;
}
let typingSent = 0;
export function typing(roomId, active) {
  const now = Date.now();
  if (active && now - typingSent < 2000) return;
  typingSent = active ? now : 0;
  hot(Q.TYPING, { roomId, typing: active }).catch(() => {});
}

const readSent = new Map();
export function markRead(roomId) {
  const tl = state.timelines.get(roomId);
  const last = tl?.events[tl.events.length - 1];
  const room = state.rooms.get(roomId);
  if (!last || readSent.get(roomId) === last.id || document.hidden || !room?.isMember) return;
  readSent.set(roomId, last.id);
  if (room) { room.unreadCount = 0; room.mentionCount = 0; emit('rooms'); }
  hot(Q.MARK_READ, { roomId, id: last.id }).catch(() => readSent.delete(roomId));
}

export async function openThread(roomId, rootId) {
  state.thread = { roomId, rootId };
  const tl = timeline(roomId, rootId);
  emit('thread', { roomId, rootId });
  if (!tl.loaded) await loadLatest(tl);
  markThreadRead(roomId, rootId);
}

/** The thread's marker moves to its newest reply (followed threads count from it). */
export function markThreadRead(roomId, rootId) {
  const tl = state.threads.get(rootId);
  const last = tl?.events[tl.events.length - 1];
  if (!last || readSent.get(rootId) === last.id) return;
  readSent.set(rootId, last.id);
  gql(`mutation($r: ID!, $e: ID!, $t: ID) { markRead(roomId: $r, eventId: $e, threadRootId: $t) }`, { r: roomId, e: last.id, t: rootId })
    .catch(() => readSent.delete(rootId));
}
export function closeThread() { state.thread = null; emit('thread', {}); }

// --- rooms ---------------------------------------------------------------------
export async function browseRooms() { return gql(Q.ROOMS); }
export async function joinRoom(roomId) {
  const r = (await gql(Q.JOIN, { roomId })).joinRoom;
  state.rooms.set(r.id, r);
  emit('rooms');
  return r;
}
export async function leaveRoom(roomId) {
  await gql(Q.LEAVE, { roomId });
  state.rooms.delete(roomId);
  state.timelines.delete(roomId);
  emit('rooms');
}
export async function createRoom(name, topic, groupId) {
  const r = (await gql(Q.CREATE_ROOM, { name, topic, groupId: groupId || null })).createRoom;
  state.rooms.set(r.id, r);
  emit('rooms');
  return r;
}
export async function startDM(userIds) {
  const r = (await gql(Q.START_DM, { ids: userIds })).startDM;
  state.rooms.set(r.id, r);
  await loadMembers(r.id);
  emit('rooms');
  return r;
}
export async function updateRoom(roomId, name, topic, groupId) {
  const r = (await gql(`mutation($r: ID!, $n: String!, $t: String, $g: ID) { updateRoom(roomId: $r, name: $n, topic: $t, groupId: $g) { ${Q.ROOM} } }`,
    { r: roomId, n: name, t: topic, g: groupId || null })).updateRoom;
  state.rooms.set(r.id, r);
  emit('rooms');
  return r;
}
let presenceSent = 'ONLINE';
export function setPresence(status) {
  if (status === presenceSent) return;
  presenceSent = status;
  gql('mutation($s: PresenceStatus!) { setPresence(status: $s) }', { s: status }).catch(() => {});
}
export async function findUser(login) { return (await gql(Q.USER_BY_LOGIN, { login })).userByLogin; }
export { gql, upload };
