// Browse and join channels; create one (with room.create).
import { field, h, toast } from './dom.js';
import { memberRow } from './members.js';
import { browseRooms, can, createRoom, findUser, joinRoom, searchMembers, startDM, state } from './store.js';

export function browseView(navigate) {
  const list = h('ul', { class: 'browse-list' }, h('li', { class: 'muted' }, 'Loading…'));
  const el = h('div', { class: 'page' }, h('h1', {}, 'Rooms'));
  if (can('room.create')) el.append(createForm(navigate));
  el.append(dmForm(navigate), people(navigate), h('h2', {}, 'All rooms'), list);
  browseRooms().then(({ rooms }) => {
    if (!rooms.length) { list.replaceChildren(h('li', { class: 'muted' }, 'No rooms yet.')); return; }
    list.replaceChildren(...rooms.map((r) => h('li', { class: 'browse-item' },
      h('div', {}, h('strong', {}, h('bdi', {}, `#${r.name}`)), ' ', h('span', { class: 'muted' }, `${r.memberCount} members`),
        r.topic ? h('p', { class: 'muted' }, r.topic) : null),
      r.isMember || state.rooms.has(r.id)
        ? h('button', { type: 'button', class: 'btn', onclick: () => navigate(`/rooms/${r.id}`) }, 'Open')
        : h('button', { type: 'button', class: 'btn primary', 'aria-label': `Join ${r.name}`, onclick: async () => {
          try { await joinRoom(r.id); navigate(`/rooms/${r.id}`); } catch (e) { toast(e.message); }
        } }, 'Join'))));
  }).catch((e) => list.replaceChildren(h('li', { class: 'error' }, e.message)));
  return el;
}

function createForm(navigate) {
  const name = h('input', { name: 'name', required: true, maxlength: '80' });
  const topic = h('input', { name: 'topic', maxlength: '250' });
  const group = h('select', { name: 'group' }, h('option', { value: '' }, '(no group)'),
    state.groups.map((g) => h('option', { value: g.id }, g.name)));
  const error = h('p', { class: 'error', role: 'alert' });
  const open = new URLSearchParams(location.search).has('create');
  const form = h('form', { class: 'card', 'aria-label': 'Create a room', onsubmit: async (e) => {
    e.preventDefault();
    try { const r = await createRoom(name.value.trim(), topic.value.trim(), group.value); navigate(`/rooms/${r.id}`); } catch (err) { error.textContent = err.message; }
  } }, h('h2', {}, 'Create a room'), field('Name', name), field('Topic (optional)', topic), field('Group', group), error,
  h('button', { type: 'submit', class: 'btn primary' }, 'Create room'));
  if (open) setTimeout(() => name.focus(), 0);
  return form;
}

function dmForm(navigate) {
  const login = h('input', { name: 'dmLogin', required: true, autocomplete: 'off' });
  const error = h('p', { class: 'error', role: 'alert' });
  return h('form', { class: 'card', 'aria-label': 'Start a direct message', onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = '';
    try {
      const u = await findUser(login.value.trim().replace(/^@/, ''));
      if (!u) { error.textContent = 'No one has that login.'; return; }
      const r = await startDM([u.id]);
      navigate(`/rooms/${r.id}`);
    } catch (err) { error.textContent = err.message; }
  } }, h('h2', {}, 'Start a direct message'), field('Their login', login), error,
  h('button', { type: 'submit', class: 'btn' }, 'Message'));
}

/** The server's directory (Query.members): search by name or login, message anyone. */
function people(navigate) {
  const search = h('input', { type: 'search', name: 'peopleSearch', autocomplete: 'off', placeholder: 'Name or login' });
  const list = h('ul', { class: 'members' });
  const more = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => page(true) }, 'Show more');
  let cursor = null;
  let seq = 0;
  const page = async (append) => {
    const mine = ++seq;
    try {
      const p = await searchMembers(null, search.value.trim(), append ? cursor : null);
      if (mine !== seq) return;
      const rows = p.users.map((u) => memberRow(u, navigate));
      if (append) list.append(...rows); else list.replaceChildren(...(rows.length ? rows : [h('li', { class: 'muted' }, 'Nobody matches.')]));
      cursor = p.endCursor;
      more.hidden = !p.hasMore;
    } catch (e) { toast(e.message); }
  };
  let timer = 0;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => page(false), 200); });
  page(false);
  return h('section', { class: 'card', 'aria-label': 'People' }, h('h2', {}, 'People on this server'), field('Search people', search), list, more);
}
