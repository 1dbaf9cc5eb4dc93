// The viewer's notifications and followed threads: loading, dismissing,
// levels, and the live NOTIFICATION / NOTIFICATION_DISMISSED / THREAD_*
// events. Views read state.notifications and listen to 'notifications'.
import * as Q from './queries.js';
import { emit, gql, remember, state, upsertMessage } from './store.js';

const PAGE = `items { ${Q.NOTIFICATION} } hasMore endCursor`;

/** The newest page (more: the next older one). */
export async function loadNotifications(more = false) {
  const after = more ? state.notificationsCursor : null;
  const d = await gql(`query($a: String) { notifications(first: 30, after: $a) { ${PAGE} } }`, { a: after });
  const page = d.notifications;
  for (const n of page.items) remember(n.message?.author);
  const known = more ? state.notifications : [];
  const ids = new Set(known.map((n) => n.id));
  state.notifications = [...known, ...page.items.filter((n) => !ids.has(n.id))];
  state.notificationsMore = page.hasMore;
  state.notificationsCursor = page.endCursor;
  state.notificationsLoaded = true;
  emit('notifications');
}

export async function dismissNotification(id) {
  await gql('mutation($id: ID!) { dismissNotification(id: $id) }', { id });
  dropNotifications([id]);
}

export async function dismissAll() {
  await gql('mutation { dismissAllNotifications }');
  state.notifications = [];
  state.notificationsMore = false;
  emit('notifications');
}

function dropNotifications(ids, seq = null) {
  const gone = ids ? new Set(ids) : null;
  state.notifications = state.notifications.filter((n) => (gone ? !gone.has(n.id) : n.seq > seq));
  emit('notifications');
}

/** Live NOTIFICATION: it joins the list (if loaded) and may become a browser notification. */
export function notificationArrived(ev) {
  const n = ev.notification;
  if (!n) return;
  remember(n.message?.author);
  if (!state.notifications.some((x) => x.id === n.id)) state.notifications.unshift(n);
  if (n.kind === 'THREAD_REPLY') { state.hasUnreadThreads = true; emit('rooms'); emit('threads'); }
  emit('notifications');
  emit('notify', { notification: n });
}

export function notificationsDismissed(ev) {
  dropNotifications(ev.notificationIds || null, ev.seq ?? Infinity);
}

// --- levels ------------------------------------------------------------------
export const LEVELS = [['ALL', 'Every message'], ['MENTIONS', 'Mentions, replies and followed threads'], ['NOTHING', 'Nothing']];

export async function serverLevel() { return (await gql('{ notificationSettings { level } }')).notificationSettings.level; }
export async function setServerLevel(level) {
  await gql('mutation($l: NotificationLevel!) { setServerNotificationLevel(level: $l) { level } }', { l: level });
}
const PREF = 'roomId level muted effectiveLevel';
export async function roomPreference(roomId) {
  return (await gql(`query($r: ID!) { room(id: $r) { id viewerNotificationPreference { ${PREF} } } }`, { r: roomId }))
    .room?.viewerNotificationPreference;
}
export async function setRoomLevel(roomId, level, muted) {
  return (await gql(`mutation($r: ID!, $l: NotificationLevel, $m: Boolean) { setRoomNotificationLevel(roomId: $r, level: $l, muted: $m) { ${PREF} } }`,
    { r: roomId, l: level || null, m: muted })).setRoomNotificationLevel;
}

// --- followed threads ----------------------------------------------------------
export async function followedThreads() {
  const d = await gql(`{ followedThreads { room { id name kind } root { ${Q.MESSAGE} } unreadCount } hasUnreadFollowedThreads }`);
  for (const t of d.followedThreads) remember(t.root.author);
  state.hasUnreadThreads = d.hasUnreadFollowedThreads;
  emit('rooms');
  return d.followedThreads;
}

export async function setFollow(roomId, rootId, follow) {
  const name = follow ? 'followThread' : 'unfollowThread';
  const d = await gql(`mutation($r: ID!, $t: ID!) { ${name}(roomId: $r, threadRootId: $t) { ${Q.MESSAGE} } }`, { r: roomId, t: rootId });
  upsertMessage(d[name]);
  emit('follow', { rootId, follows: d[name].viewerFollowsThread });
  return d[name];
}

/** THREAD_FOLLOWED / THREAD_UNFOLLOWED (from another client too) and thread markers. */
export async function threadChanged(ev) {
  const rootId = ev.eventId && ev.type.startsWith('THREAD_') ? ev.eventId : ev.threadRootId;
  if (ev.roomId && rootId) {
    const d = await gql(Q.ONE_EVENT, { roomId: ev.roomId, id: rootId });
    if (d.room?.event) {
      upsertMessage(d.room.event);
      emit('follow', { rootId, follows: d.room.event.viewerFollowsThread });
    }
  }
  state.hasUnreadThreads = (await gql('{ hasUnreadFollowedThreads }')).hasUnreadFollowedThreads;
  emit('rooms');
  emit('threads');
}
