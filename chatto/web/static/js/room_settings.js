// A room's settings (name, topic, group, archive), for room.manage in it.
import { explain } from './auth_view.js';
import { field, h } from './dom.js';
import { gql, state, updateRoom } from './store.js';

export function roomSettings(room, navigate) {
  const name = h('input', { name: 'roomName', value: room.name, required: true, maxlength: '80' });
  const topic = h('input', { name: 'roomTopic', value: room.topic || '', maxlength: '250' });
  const group = h('select', { name: 'roomGroup' }, h('option', { value: '' }, '(no group)'),
    state.groups.map((g) => h('option', { value: g.id, selected: room.group?.id === g.id }, g.name)));
  const error = h('p', { class: 'error', role: 'alert' });
  const info = h('p', { class: 'info', role: 'status' });
  const el = h('section', { class: 'panel', 'aria-label': 'Room settings' }, h('h2', {}, 'Room settings'),
    h('form', { onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = ''; info.textContent = '';
      try { await updateRoom(room.id, name.value.trim(), topic.value.trim(), group.value); info.textContent = 'Saved.'; } catch (x) { error.textContent = explain(x); }
    } }, field('Name', name), field('Topic', topic), field('Group', group), error, info,
    h('button', { type: 'submit', class: 'btn primary' }, 'Save')),
    h('h2', {}, 'Archive'),
    h('p', { class: 'muted' }, 'An archived room is read-only and leaves the sidebar; its history stays.'),
    h('button', { type: 'button', class: 'btn danger', onclick: async () => {
      try {
        await gql('mutation($r: ID!) { archiveRoom(roomId: $r, archived: true) { id } }', { r: room.id });
        navigate('/');
      } catch (x) { error.textContent = explain(x); }
    } }, 'Archive this room'));
  return { el, kind: 'settings' };
}
