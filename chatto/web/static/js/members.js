// The member list of a room: search (login or display name), pages of 50,
// presence dots, statuses, "message directly"; with room.ban-member, ban
// (with a reason) and the room's bans with unban.
import { explain } from './auth_view.js';
import { field, h, nameEl, statusEl, toast } from './dom.js';
import { gql, loadMembers, on, roomCan, searchMembers, startDM, state } from './store.js';
import { avatar } from './message.js';

export function memberRow(u, navigate, extra = null) {
  const status = (state.presence.get(u.id) || 'OFFLINE').toLowerCase();
  const dot = state.server?.presenceEnabled ? h('span', { class: `dot ${status}`, role: 'img', 'aria-label': status }) : null;
  return h('li', {}, avatar(u, 'sm'), dot, nameEl(u), ' ', statusEl(u),
    u.id === state.me?.id ? h('span', { class: 'muted' }, ' (you)') : h('button', {
      type: 'button', class: 'link', 'aria-label': `Message ${u.displayName || u.login} directly`,
      onclick: async () => {
        try { const r = await startDM([u.id]); navigate(`/rooms/${r.id}`); } catch (e) { toast(e.message); }
      },
    }, 'Message'), extra);
}

export function membersPanel(roomId, navigate) {
  const list = h('ul', { class: 'members' });
  const search = h('input', { type: 'search', name: 'memberSearch', autocomplete: 'off', placeholder: 'Name or login' });
  const more = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => page(true) }, 'Show more');
  const bans = h('div', {});
  const el = h('section', { class: 'panel', 'aria-label': 'Members' }, h('h2', {}, 'Members'),
    field('Search members', search), list, more, bans);
  let cursor = null;
  let users = [];
  let seq = 0;
  const banning = () => roomCan(roomId, 'room.ban-member') && state.rooms.get(roomId)?.kind !== 'DM';
  const draw = () => {
    list.replaceChildren(...users.map((u) => memberRow(u, navigate,
      banning() && u.id !== state.me?.id ? banButton(roomId, u, () => { drawBans(); page(false); }) : null)));
    if (!users.length) list.append(h('li', { class: 'muted' }, search.value ? 'No member matches.' : 'No members.'));
  };
  const page = async (append) => {
    const mine = ++seq;
    try {
      const p = await searchMembers(roomId, search.value.trim(), append ? cursor : null);
      if (mine !== seq) return;
      users = append ? [...users, ...p.users] : p.users;
      cursor = p.endCursor;
      more.hidden = !p.hasMore;
      draw();
    } catch (e) { toast(e.message); }
  };
  const drawBans = async () => {
    if (!banning()) { bans.replaceChildren(); return; }
    try {
      const d = await gql('query($r: ID!) { room(id: $r) { id bans { userId user { id login displayName } reason expiresAt } } }', { r: roomId });
      const rows = d.room.bans.map((b) => h('li', {}, nameEl(b.user), ' ', h('span', { class: 'muted' }, `— ${b.reason}`), ' ',
        h('button', { type: 'button', class: 'link', 'aria-label': `Unban ${b.user?.login || 'user'}`, onclick: async () => {
          try { await gql('mutation($r: ID!, $u: ID!) { unbanMember(roomId: $r, userId: $u) }', { r: roomId, u: b.userId }); drawBans(); } catch (e) { toast(explain(e)); }
        } }, 'Unban')));
      bans.replaceChildren(h('h3', {}, 'Banned'), rows.length ? h('ul', { class: 'members bans' }, rows) : h('p', { class: 'muted small' }, 'Nobody is banned.'));
    } catch (e) { bans.replaceChildren(); }
  };
  let timer = 0;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => page(false), 200); });
  const offs = [
    on('members', (d) => { if (d.roomId === roomId && !search.value) page(false); }),
    on('presence', draw),
    on('room-perms', (d) => { if (d.roomId === roomId) { draw(); drawBans(); } }),
  ];
  el.destroy = () => offs.forEach((f) => f());
  users = state.members.get(roomId) || [];
  draw();
  page(false);
  drawBans();
  if (!state.members.has(roomId)) loadMembers(roomId).catch((e) => toast(e.message));
  return el;
}

function banButton(roomId, u, done) {
  const wrap = h('span', { class: 'ban' });
  const start = h('button', { type: 'button', class: 'link danger', 'aria-label': `Ban ${u.login}`, onclick: () => {
    const reason = h('input', { name: 'banReason', required: true, maxlength: '500', 'aria-label': `Reason for banning ${u.login}` });
    wrap.replaceChildren(h('form', { class: 'row', onsubmit: async (e) => {
      e.preventDefault();
      try {
        await gql('mutation($r: ID!, $u: ID!, $why: String!) { banMember(roomId: $r, userId: $u, reason: $why) }',
          { r: roomId, u: u.id, why: reason.value.trim() });
        toast(`${u.login} is banned from this room.`);
        done();
      } catch (x) { toast(explain(x)); }
    } }, reason, h('button', { type: 'submit', class: 'btn danger' }, 'Ban'),
    h('button', { type: 'button', class: 'link', onclick: () => wrap.replaceChildren(start) }, 'Cancel')));
    reason.focus();
  } }, 'Ban');
  wrap.append(start);
  return wrap;
}
