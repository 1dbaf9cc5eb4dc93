// A room's settings (name, topic, group, archive), for room.manage in it;
// and the viewer's own notification level and mute for the room.
import { explain } from './auth_view.js';
import { field, h } from './dom.js';
import { LEVELS, roomPreference, setRoomLevel } from './notices.js';
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

export function roomNotifications(room) {
  const level = h('select', { name: 'roomLevel' }, h('option', { value: '' }, 'As on the whole server'),
    LEVELS.map(([v, label]) => h('option', { value: v }, label)));
  const muted = h('input', { type: 'checkbox', name: 'roomMuted' });
  const info = h('p', { class: 'info', role: 'status' });
  const error = h('p', { class: 'error', role: 'alert' });
  const show = (p) => {
    if (!p) return;
    level.value = p.level || '';
    muted.checked = p.muted;
    info.textContent = `In force: ${p.effectiveLevel.toLowerCase()}${p.muted ? ' (muted)' : ''}.`;
  };
  const save = async () => {
    error.textContent = '';
    try { show(await setRoomLevel(room.id, level.value, muted.checked)); } catch (x) { error.textContent = explain(x); }
  };
  level.addEventListener('change', save);
  muted.addEventListener('change', save);
  roomPreference(room.id).then(show).catch((x) => { error.textContent = explain(x); });
  const el = h('section', { class: 'panel', 'aria-label': 'Notifications for this room' }, h('h2', {}, 'Notifications'),
    field('Notify me of', level),
    h('div', { class: 'field check' }, muted, h('label', { for: (muted.id = `mute-${room.id}`) }, 'Mute this room')),
    h('p', { class: 'muted small' }, 'Muted: nothing notifies you here; mentions still count in the sidebar.'), info, error);
  return { el, kind: 'bell' };
}
