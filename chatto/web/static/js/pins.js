// Pinned messages: the pin action (message.pin in the room), the pins panel,
// and the "Pinned" marker; MESSAGE_PINNED/UNPINNED refresh them live.
import { h, nameEl, toast } from './dom.js';
import { MESSAGE } from './queries.js';
import { emit, gql, on, roomCan, state } from './store.js';

export async function loadPins(roomId) {
  const d = await gql(`query($r: ID!) { room(id: $r) { id pinnedMessages { ${MESSAGE} } } }`, { r: roomId });
  const list = d.room?.pinnedMessages || [];
  state.pinned.set(roomId, new Set(list.map((m) => m.id)));
  emit('pins', { roomId });
  return list;
}

export const isPinned = (roomId, id) => state.pinned.get(roomId)?.has(id) ?? false;
export const canPin = (roomId) => roomCan(roomId, 'message.pin');

export async function togglePin(roomId, msg) {
  const name = isPinned(roomId, msg.id) ? 'unpinMessage' : 'pinMessage';
  await gql(`mutation($r: ID!, $e: ID!) { ${name}(roomId: $r, eventId: $e) }`, { r: roomId, e: msg.id });
  await loadPins(roomId);
}

export function pinsPanel(roomId, jump) {
  const list = h('ul', { class: 'members' });
  const el = h('section', { class: 'panel', 'aria-label': 'Pinned messages' }, h('h2', {}, 'Pinned messages'), list);
  const draw = async () => {
    try {
      const pins = await loadPins(roomId);
      list.replaceChildren(...(pins.length ? pins.map((m) => h('li', {},
        h('button', { type: 'button', class: 'link', onclick: () => jump(m) }, nameEl(m.author), ': ',
          m.retracted ? 'retracted' : (m.body || '').slice(0, 120)))) : [h('li', { class: 'muted' }, 'Nothing pinned.')]));
    } catch (e) { toast(e.message); }
  };
  const off = on('pins-live', (d) => { if (d.roomId === roomId) draw(); });
  draw();
  return { el, kind: 'pins', destroy: off };
}
