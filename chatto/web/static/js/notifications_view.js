// The notifications page: newest first, each opens its room (or thread) and
// can be dismissed; "Dismiss all"; older pages on demand. Live arrivals and
// dismissals (from any of the viewer's clients) redraw it.
import { cleanName, fmtDay, fmtTime, h, toast } from './dom.js';
import { dismissAll, dismissNotification, loadNotifications } from './notices.js';
import { on, openThread, roomLabel, state, user } from './store.js';

const WHAT = { MENTION: 'mentioned you', REPLY: 'replied to you', THREAD_REPLY: 'replied in a thread you follow', DM: 'sent you a message', MESSAGE: 'wrote' };

export function notificationsView(navigate) {
  const list = h('ul', { class: 'notifications', 'aria-label': 'Notifications' });
  const more = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => loadNotifications(true).catch((e) => toast(e.message)) }, 'Older notifications');
  const all = h('button', { type: 'button', class: 'btn', onclick: () => dismissAll().catch((e) => toast(e.message)) }, 'Dismiss all');
  const page = h('div', { class: 'page' }, h('div', { class: 'row' }, h('h1', {}, 'Notifications'), all), list, more);
  const open = async (n) => {
    navigate(`/rooms/${n.roomId}`);
    if (n.threadRootId) await openThread(n.roomId, n.threadRootId).catch(() => {});
  };
  const item = (n) => {
    const author = user(n.actorId, n.message?.author);
    const who = author ? cleanName(author.displayName || author.login) : 'Deleted User';
    const room = state.rooms.get(n.roomId);
    const where = room ? (room.kind === 'DM' ? 'in a direct message' : `in #${roomLabel(room)}`) : '';
    return h('li', { class: `note ${n.kind.toLowerCase()}`, dataset: { id: n.id } },
      h('button', { type: 'button', class: 'link note-open', onclick: () => open(n) },
        h('strong', {}, h('bdi', {}, who)), ` ${WHAT[n.kind] || 'wrote'} ${where}`,
        h('span', { class: 'note-body' }, (n.message?.body || '').slice(0, 200))),
      h('time', { class: 'muted small', datetime: n.createdAt, title: fmtDay(n.createdAt) }, fmtTime(n.createdAt)),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Dismiss: ${who} ${WHAT[n.kind] || 'wrote'}`,
        onclick: () => dismissNotification(n.id).catch((e) => toast(e.message)) }, '✕'));
  };
  const draw = () => {
    const items = state.notifications;
    list.replaceChildren(...(items.length ? items.map(item) : [h('li', { class: 'muted' }, 'No notifications. Mentions, replies and direct messages show up here.')]));
    more.hidden = !state.notificationsMore;
    all.disabled = !items.length;
  };
  const off = on('notifications', draw);
  page.destroy = off;
  draw();
  loadNotifications().catch((e) => toast(e.message));
  return page;
}
