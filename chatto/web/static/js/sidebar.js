// The sidebar: rooms by group, DMs, unread and mention badges, navigation.
import { h, nameEl, statusEl } from './dom.js';
import { loadNotifications } from './notices.js';
import { can, on, roomLabel, state } from './store.js';

export function sidebar(navigate) {
  const el = h('nav', { class: 'sidebar', 'aria-label': 'Rooms and direct messages' });
  const draw = () => el.replaceChildren(...content(navigate).filter(Boolean));
  on('rooms', draw);
  on('room', draw);
  on('route', draw);
  on('presence', draw);
  on('members', draw);
  on('conn', draw);
  on('notifications', draw);
  on('server', draw);
  // Whatever arrived while the socket was down.
  on('resumed', () => loadNotifications().catch(() => {}));
  draw();
  loadNotifications().catch(() => {});
  return el;
}

function badge(room) {
  const out = [];
  if (room.mentionCount > 0) out.push(h('span', { class: 'badge mention', 'aria-label': `${room.mentionCount} mentions` }, `@${room.mentionCount}`));
  if (room.unreadCount > 0) out.push(h('span', { class: 'badge', 'aria-label': `${room.unreadCount} unread` }, String(room.unreadCount)));
  return out;
}

function roomLink(room, navigate) {
  const current = state.current === room.id;
  let dot = null;
  if (room.kind === 'DM' && state.server?.presenceEnabled) {
    const other = (state.members.get(room.id) || []).find((u) => u.id !== state.me?.id);
    const status = (other && state.presence.get(other.id)) || 'OFFLINE';
    dot = h('span', { class: `dot ${status.toLowerCase()}`, role: 'img', 'aria-label': status.toLowerCase() });
  }
  return h('li', {}, h('a', {
    href: `/rooms/${encodeURIComponent(room.id)}`, class: `room-link${current ? ' current' : ''}${room.unreadCount > 0 ? ' unread' : ''}`,
    'aria-current': current ? 'page' : null,
    onclick: (e) => { e.preventDefault(); navigate(`/rooms/${room.id}`); },
  }, dot || h('span', { class: 'hash', 'aria-hidden': 'true' }, room.kind === 'DM' ? '@' : '#'), h('bdi', { class: 'room-name' }, roomLabel(room)), ...badge(room)));
}

function content(navigate) {
  const rooms = [...state.rooms.values()];
  // Sidebar order: groups by position (ungrouped channels first), channels by position.
  const channels = rooms.filter((r) => r.kind !== 'DM' && !r.archived)
    .sort((a, b) => (a.position - b.position) || a.name.localeCompare(b.name));
  const dms = rooms.filter((r) => r.kind === 'DM');
  const groups = new Map([['', { name: 'Rooms', list: [] }]]);
  for (const g of [...state.groups].sort((a, b) => a.position - b.position)) groups.set(g.id, { name: g.name, list: [] });
  for (const r of channels) {
    const key = groups.has(r.group?.id) ? r.group.id : '';
    groups.get(key).list.push(r);
  }
  const link = (href, label, extra = null) => h('a', { href, class: `nav-link${location.pathname === href ? ' current' : ''}`,
    'aria-current': location.pathname === href ? 'page' : null,
    onclick: (e) => { e.preventDefault(); navigate(href); } }, label, extra);
  const count = state.notifications.length;
  const notes = count ? h('span', { class: 'badge mention', 'aria-label': `${count}${state.notificationsMore ? ' or more' : ''} notifications` },
    `${count}${state.notificationsMore ? '+' : ''}`) : null;
  const threads = state.hasUnreadThreads ? h('span', { class: 'badge', 'aria-label': 'unread replies' }, '•') : null;
  const logo = state.server?.logoUrl ? h('img', { class: 'server-logo', src: state.server.logoUrl, alt: '' }) : null;
  const conn = state.conn === 'online' ? null
    : h('p', { class: `conn ${state.conn}`, role: 'status' }, state.conn === 'offline' ? 'Offline — reconnecting…' : 'Connecting…');
  return [
    h('div', { class: 'server-row' }, logo, h('bdi', { class: 'server-name' }, state.server?.name || 'Chatto')),
    h('div', { class: 'me-row' }, nameEl(state.me), ' ', statusEl(state.me)),
    conn,
    h('div', { class: 'nav-actions' }, link('/notifications', 'Notifications', notes), link('/threads', 'Threads', threads),
      link('/browse', 'Browse rooms'), can('room.create') ? link('/browse?create=1', 'New room') : null),
    ...[...groups.values()].filter((g) => g.list.length).map((g) => h('section', { class: 'group' },
      h('h2', {}, h('bdi', {}, g.name)), h('ul', {}, g.list.map((r) => roomLink(r, navigate))))),
    h('section', { class: 'group' }, h('h2', {}, 'Direct messages'),
      dms.length ? h('ul', {}, dms.map((r) => roomLink(r, navigate))) : h('p', { class: 'muted small' }, 'None yet. Open a member list to start one.')),
    h('div', { class: 'nav-foot' }, link('/me', 'Me'), isAdmin() ? link('/admin', 'Server') : null),
  ];
}

export function isAdmin() {
  return ['admin.view-users', 'admin.view-system', 'role.manage', 'role.assign', 'user.manage-permissions', 'server.manage']
    .some((p) => can(p));
}
