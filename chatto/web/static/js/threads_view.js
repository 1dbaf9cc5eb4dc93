// Followed threads: newest first, with unread replies; each opens its room
// with the thread beside it. Unfollow from here too.
import { h, nameEl, toast } from './dom.js';
import { followedThreads, setFollow } from './notices.js';
import { on, openThread, roomLabel, state } from './store.js';

export function threadsView(navigate) {
  const list = h('ul', { class: 'notifications', 'aria-label': 'Followed threads' }, h('li', { class: 'muted' }, 'Loading…'));
  const page = h('div', { class: 'page' }, h('h1', {}, 'Threads'),
    h('p', { class: 'muted' }, 'Threads you started, replied in or were mentioned in, and those you follow.'), list);
  const draw = async () => {
    try {
      const threads = await followedThreads();
      list.replaceChildren(...(threads.length ? threads.map((t) => {
        const room = state.rooms.get(t.room.id) || t.room;
        return h('li', { class: `note${t.unreadCount ? ' unread' : ''}` },
          h('button', { type: 'button', class: 'link note-open', onclick: async () => {
            navigate(`/rooms/${t.room.id}`);
            await openThread(t.room.id, t.root.id).catch(() => {});
          } }, nameEl(t.root.author), ` in ${room.kind === 'DM' ? roomLabel(room) : `#${room.name}`}`,
          h('span', { class: 'note-body' }, t.root.retracted ? 'a retracted message' : (t.root.body || '').slice(0, 200))),
          t.unreadCount ? h('span', { class: 'badge', 'aria-label': `${t.unreadCount} unread replies` }, String(t.unreadCount)) : null,
          h('button', { type: 'button', class: 'btn', onclick: () => setFollow(t.room.id, t.root.id, false).then(draw).catch((e) => toast(e.message)) }, 'Unfollow'));
      }) : [h('li', { class: 'muted' }, 'You follow no threads yet.')]));
    } catch (e) { toast(e.message); }
  };
  const off = on('threads', draw);
  page.destroy = off;
  draw();
  return page;
}
