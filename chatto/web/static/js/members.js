// The member list of a room, with presence dots and "message directly".
import { h, nameEl, toast } from './dom.js';
import { loadMembers, on, startDM, state } from './store.js';
import { avatar } from './message.js';

export function membersPanel(roomId, navigate) {
  const list = h('ul', { class: 'members' });
  const el = h('section', { class: 'panel', 'aria-label': 'Members' }, h('h2', {}, 'Members'), list);
  const draw = () => {
    const users = state.members.get(roomId) || [];
    list.replaceChildren(...users.map((u) => {
      const status = (state.presence.get(u.id) || 'OFFLINE').toLowerCase();
      return h('li', {}, avatar(u, 'sm'), h('span', { class: `dot ${status}`, role: 'img', 'aria-label': status }), nameEl(u),
        u.id === state.me?.id ? h('span', { class: 'muted' }, ' (you)') : h('button', {
          type: 'button', class: 'link', 'aria-label': `Message ${u.displayName || u.login} directly`,
          onclick: async () => {
            try { const r = await startDM([u.id]); navigate(`/rooms/${r.id}`); } catch (e) { toast(e.message); }
          },
        }, 'Message'));
    }));
  };
  const offs = [on('members', (d) => d.roomId === roomId && draw()), on('presence', draw)];
  el.destroy = () => offs.forEach((f) => f());
  if (!state.members.has(roomId)) loadMembers(roomId).catch((e) => toast(e.message));
  draw();
  return el;
}
