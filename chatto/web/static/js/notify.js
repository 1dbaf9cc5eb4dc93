// Notifications: unread count in the title, and the browser's Notification
// API for DMs and mentions while the tab is hidden. Permission is asked only
// from a click (askPermission), never on load.
import { cleanName } from './dom.js';
import { on, roomLabel, state } from './store.js';

export function startNotifications() {
  const title = () => {
    let unread = 0;
    for (const r of state.rooms.values()) unread += r.unreadCount || 0;
    const base = state.server?.name || 'Chatto';
    document.title = unread ? `(${unread}) ${base}` : base;
  };
  on('rooms', title);
  on('auth', title);
  on('notify', ({ room, msg }) => {
    if (!document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
    const me = state.me;
    const mention = me && msg.body && new RegExp(`@${me.login}\\b`, 'i').test(msg.body);
    if (room.kind !== 'DM' && !mention) return;
    const who = msg.author ? cleanName(msg.author.displayName) : 'Deleted User';
    const n = new Notification(room.kind === 'DM' ? who : `${who} in #${roomLabel(room)}`, {
      body: (msg.body || '').slice(0, 140), tag: room.id, silent: false,
    });
    n.onclick = () => { window.focus(); window.chatto.navigate(`/rooms/${room.id}`); n.close(); };
  });
}

export function notificationState() {
  return 'Notification' in window ? Notification.permission : 'unsupported';
}

export async function askPermission() {
  if (!('Notification' in window)) return 'unsupported';
  return Notification.requestPermission();
}
