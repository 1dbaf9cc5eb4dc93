// Browser-level signals: the unread count in the title, and the browser's
// Notification API for the server's NOTIFICATION events (DMs, mentions,
// replies, followed threads, per the viewer's levels) while the tab is
// hidden. Permission is asked only from a click (askPermission), never on load.
import { cleanName } from './dom.js';
import { on, roomLabel, state, user } from './store.js';

const KIND = { MENTION: 'mentioned you', REPLY: 'replied to you', THREAD_REPLY: 'replied in a thread', MESSAGE: 'wrote' };

export function startNotifications() {
  const title = () => {
    let unread = 0;
    for (const r of state.rooms.values()) unread += r.unreadCount || 0;
    const base = state.server?.name || 'Chatto';
    document.title = unread ? `(${unread}) ${base}` : base;
  };
  on('rooms', title);
  on('auth', title);
  on('notify', ({ notification: n }) => {
    if (!document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
    const room = state.rooms.get(n.roomId);
    const author = user(n.actorId, n.message?.author);
    const who = author ? cleanName(author.displayName || author.login) : 'Deleted User';
    const title = n.kind === 'DM' ? who : `${who} ${KIND[n.kind] || 'wrote'} in #${roomLabel(room) || 'a room'}`;
    const shown = new Notification(title, { body: (n.message?.body || '').slice(0, 140), tag: n.id, silent: false });
    shown.onclick = () => { window.focus(); window.chatto.navigate(`/rooms/${n.roomId}`); shown.close(); };
  });
}

export function notificationState() {
  return 'Notification' in window ? Notification.permission : 'unsupported';
}

export async function askPermission() {
  if (!('Notification' in window)) return 'unsupported';
  return Notification.requestPermission();
}
