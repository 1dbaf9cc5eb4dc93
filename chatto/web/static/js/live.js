// Applies one myEvents event to the store and tells the views what changed.
import * as Q from './queries.js';
import { notificationArrived, notificationsDismissed, threadChanged } from './notices.js';
import {
  appendLive, emit, gql, loadMembers, markRead, markThreadRead, refreshRooms, refreshServer, sessionEnded, state, upsertMessage,
} from './store.js';

const TYPING_TTL = 6000;

export function applyLive(ev) {
  const handler = HANDLERS[ev.type];
  if (handler) handler(ev);
}

async function posted(ev) {
  const msg = ev.message;
  if (!msg) return;
  // The first message of a DM can arrive before the room is known here.
  if (!state.rooms.has(msg.roomId)) await refreshRooms().catch(() => {});
  const mine = msg.authorId === state.me?.id;
  // A posted message ends its author's typing indicator.
  const typers = state.typing.get(msg.roomId);
  if (typers?.delete(msg.authorId)) emit('typing', { roomId: msg.roomId });
  appendLive(msg);
  if (msg.threadRootId && !msg.echo) {
    bumpReplies(msg);
    if (!mine && state.thread?.rootId === msg.threadRootId && !document.hidden) markThreadRead(msg.roomId, msg.threadRootId);
  }
  const room = state.rooms.get(msg.roomId);
  if (!room || mine || (msg.threadRootId && !msg.echo)) return;
  const visible = state.current === msg.roomId && !document.hidden;
  if (visible) markRead(msg.roomId);
  else {
    room.unreadCount = (room.unreadCount || 0) + 1;
    if (mentionsMe(msg)) room.mentionCount = (room.mentionCount || 0) + 1;
    emit('rooms');
  }
}

export const mentionsMe = (msg) => !!msg && (msg.mentionsRoom || (msg.mentions || []).includes(state.me?.id));

function bumpReplies(msg) {
  const tl = state.timelines.get(msg.roomId);
  const root = tl?.byId.get(msg.threadRootId);
  if (root) {
    root.replyCount = (root.replyCount || 0) + 1;
    emit('message', { roomId: msg.roomId, threadId: null, id: root.id });
  }
}

async function changed(ev) {
  let msg = ev.message;
  if (!msg && ev.roomId && ev.eventId) {
    msg = (await gql(Q.ONE_EVENT, { roomId: ev.roomId, id: ev.eventId })).room?.event;
  }
  if (!msg) return;
  if (ev.type === 'MESSAGE_RETRACTED') Object.assign(msg, { retracted: true, body: null, attachments: [] });
  for (const r of msg.reactions || []) r.mine = r.userIds.includes(state.me?.id);
  upsertMessage(msg);
}

function typingEv(ev) {
  if (ev.userId === state.me?.id) return;
  if (!state.typing.has(ev.roomId)) state.typing.set(ev.roomId, new Map());
  const typers = state.typing.get(ev.roomId);
  if (ev.typing) typers.set(ev.userId, Date.now() + TYPING_TTL);
  else typers.delete(ev.userId);
  emit('typing', { roomId: ev.roomId });
  setTimeout(() => emit('typing', { roomId: ev.roomId }), TYPING_TTL + 50);
}

function presenceEv(ev) {
  state.presence.set(ev.userId, ev.presence);
  emit('presence', { userId: ev.userId });
}

function membership(ev) {
  if (ev.userId === state.me?.id) { refreshRooms().catch(() => {}); return; }
  if (state.members.has(ev.roomId)) loadMembers(ev.roomId).catch(() => {});
  const room = state.rooms.get(ev.roomId);
  if (room && ev.type === 'MEMBER_JOINED') room.memberCount += 1;
  if (room && ev.type === 'MEMBER_LEFT') room.memberCount = Math.max(0, room.memberCount - 1);
  emit('rooms');
}

function deleted(ev) {
  state.users.delete(ev.userId);
  for (const tl of [...state.timelines.values(), ...state.threads.values()]) {
    for (const m of tl.events) if (m.authorId === ev.userId) m.author = null;
  }
  for (const [roomId, list] of state.members) state.members.set(roomId, list.filter((u) => u.id !== ev.userId));
  state.deletedUsers = (state.deletedUsers || new Set()).add(ev.userId);
  emit('timeline', { roomId: state.current, reset: false, redraw: true });
  emit('rooms');
}

async function profile(ev) {
  const d = await gql(`query P($id: ID!) { user(id: $id) { ${Q.USER} } }`, { id: ev.userId });
  if (!d.user) return;
  state.users.set(d.user.id, d.user);
  if (d.user.id === state.me?.id) Object.assign(state.me, d.user);
  emit('timeline', { roomId: state.current, reset: false, redraw: true });
  emit('rooms');
}

function readMarker(ev) {
  if (ev.threadRootId) { threadChanged(ev).catch(() => {}); return; }
  const room = state.rooms.get(ev.roomId);
  if (!room) return;
  room.unreadCount = ev.unreadCount ?? 0;
  room.mentionCount = ev.mentionCount ?? 0;
  emit('rooms');
}

const HANDLERS = {
  MESSAGE_POSTED: posted,
  MESSAGE_EDITED: changed,
  MESSAGE_RETRACTED: changed,
  REACTION_CHANGED: changed,
  MESSAGE_PINNED: (ev) => emit('pins-live', { roomId: ev.roomId }),
  MESSAGE_UNPINNED: (ev) => emit('pins-live', { roomId: ev.roomId }),
  TYPING: typingEv,
  PRESENCE: presenceEv,
  MEMBER_JOINED: membership,
  MEMBER_LEFT: membership,
  MEMBER_BANNED: membership,
  MEMBER_UNBANNED: membership,
  MEMBER_DELETED: deleted,
  ROOM_CREATED: () => refreshRooms().catch(() => {}),
  ROOM_UPDATED: () => refreshRooms().catch(() => {}),
  ROOM_ARCHIVED: () => refreshRooms().catch(() => {}),
  PROFILE_UPDATED: (ev) => profile(ev).catch(() => {}),
  READ_MARKER: readMarker,
  NOTIFICATION: notificationArrived,
  NOTIFICATION_DISMISSED: notificationsDismissed,
  THREAD_FOLLOWED: (ev) => threadChanged(ev).catch(() => {}),
  THREAD_UNFOLLOWED: (ev) => threadChanged(ev).catch(() => {}),
  NOTIFICATION_SETTINGS: (ev) => emit('notification-settings', { roomId: ev.roomId }),
  SERVER_UPDATED: () => refreshServer().catch(() => {}),
  GROUPS_UPDATED: () => refreshRooms().catch(() => {}),
  SESSION_TERMINATED: () => sessionEnded(),
};
