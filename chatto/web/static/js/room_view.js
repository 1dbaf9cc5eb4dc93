// A room: header, timeline, typing line, composer; the thread or member
// panel beside it. Message actions from the timelines are handled here.
import { cleanName, h, toast } from './dom.js';
import { Composer } from './composer.js';
import { membersPanel } from './members.js';
import { pickerEl, renderMessage } from './message.js';
import { loadPins, pinsPanel, togglePin } from './pins.js';
import { setFollow } from './notices.js';
import { roomNotifications, roomSettings } from './room_settings.js';
import {
  closeThread, emit, gql, leaveRoom, on, roomCan, openRoom, openThread, react, retract, roomLabel, startDM, state, user,
} from './store.js';
import { TimelineView } from './timeline.js';
import { ONE_EVENT } from './queries.js';

export function roomView(roomId, navigate) {
  const room = state.rooms.get(roomId);
  if (!room) return h('div', { class: 'empty' }, h('p', {}, 'You are not in this room. '), h('a', { href: '/browse' }, 'Browse rooms'));
  const composer = new Composer({ roomId, label: `Message ${room.kind === 'DM' ? roomLabel(room) : `#${room.name}`}` });
  const act = makeActions(roomId, composer, navigate);
  const timeline = new TimelineView({ roomId, label: `Messages in ${roomLabel(room)}`, act });
  const typingLine = h('div', { class: 'typing muted', 'aria-live': 'polite' });
  const side = h('aside', { class: 'side', hidden: true });
  let sideView = null;
  const setSide = (view) => {
    if (sideView?.destroy) sideView.destroy();
    sideView = view;
    side.replaceChildren(...(view ? [view.el || view] : []));
    side.hidden = !view;
  };
  const title = h('h1', {}, h('bdi', {}, room.kind === 'DM' ? roomLabel(room) : `#${room.name}`));
  const topicEl = h('p', { class: 'topic muted' }, room.topic || '');
  const membersBtn = h('button', { type: 'button', class: 'btn', 'aria-label': 'Show members', onclick: () => setSide(sideView?.kind === 'members' ? null : Object.assign(membersPanel(roomId, navigate), { kind: 'members' })) }, `Members (${room.memberCount})`);
  const toggle = (kind, make) => setSide(sideView?.kind === kind ? null : make());
  const pinsBtn = h('button', { type: 'button', class: 'btn', onclick: () => toggle('pins', () => pinsPanel(roomId, (m) => act('goto', m))) }, 'Pinned');
  const bellBtn = h('button', { type: 'button', class: 'btn', 'aria-label': 'Notification settings for this room',
    onclick: () => toggle('bell', () => roomNotifications(room)) }, 'Notify');
  const settingsBtn = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => toggle('settings', () => roomSettings(room, navigate)) }, 'Settings');
  const header = h('header', { class: 'room-head' },
    h('button', { type: 'button', class: 'icon-btn back', 'aria-label': 'Back to rooms', onclick: () => navigate('/') }, '←'),
    h('div', { class: 'room-title' }, title, topicEl),
    pinsBtn,
    bellBtn,
    settingsBtn,
    membersBtn,
    room.kind === 'DM' ? null : h('button', { type: 'button', class: 'btn', onclick: async () => {
      if (!confirm(`Leave #${room.name}?`)) return;
      try { await leaveRoom(roomId); navigate('/'); } catch (e) { toast(e.message); }
    } }, 'Leave'));
  const main = h('section', { class: 'room-main', 'aria-label': roomLabel(room) }, header, timeline.wrap, typingLine, composer.el);
  const el = h('div', { class: 'room' }, main, side);

  const drawTyping = (d) => {
    if (d.roomId !== roomId) return;
    const now = Date.now();
    const names = [...(state.typing.get(roomId) || new Map())].filter(([, t]) => t > now)
      .map(([id]) => cleanName(user(id)?.displayName || 'Someone'));
    typingLine.textContent = names.length ? `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} typing…` : '';
  };
  const offs = [
    on('typing', drawTyping),
    on('thread', (d) => {
      if (!d.rootId) { setSide(null); return; }
      if (sideView?.rootId === d.rootId) return;
      setSide(threadPanel(roomId, d.rootId, navigate));
    }),
    on('members', (d) => { if (d.roomId === roomId && room.kind === 'DM') title.firstChild.textContent = roomLabel(room); }),
    on('room-perms', (d) => { if (d.roomId === roomId) { settingsBtn.hidden = !roomCan(roomId, 'room.manage') || room.kind === 'DM'; timeline.redraw(); } }),
    on('pins', (d) => { if (d.roomId === roomId) timeline.redraw(); }),
    on('pins-live', (d) => { if (d.roomId === roomId) loadPins(roomId).catch(() => {}); }),
    on('rooms', () => {
      const now = state.rooms.get(roomId) || room;
      membersBtn.textContent = `Members (${now.memberCount})`;
      topicEl.textContent = now.topic || '';
      if (now.kind !== 'DM') title.firstChild.textContent = `#${now.name}`;
    }),
  ];
  el.destroy = () => { if (state.current === roomId) { state.current = null; emit('room', {}); } offs.forEach((f) => f()); timeline.destroy(); if (sideView?.destroy) sideView.destroy(); };
  openRoom(roomId).catch((e) => toast(e.message));
  loadPins(roomId).catch(() => {});
  setTimeout(() => composer.focus(), 0);
  return el;
}

function makeActions(roomId, composer, navigate) {
  return async (action, msg, extra = {}) => {
    try {
      if (action === 'react') await react(roomId, msg.id, extra.code, extra.add);
      else if (action === 'picker') togglePicker(msg, makeActions(roomId, composer, navigate));
      else if (action === 'thread') await openThread(roomId, msg.threadRootId || msg.id);
      else if (action === 'edit') composer.startEdit(msg);
      else if (action === 'reply') composer.startReply(msg);
      else if (action === 'goto') document.querySelector(`.msg[data-id="${CSS.escape(msg.id)}"]`)?.focus();
      else if (action === 'pin') await togglePin(roomId, msg);
      else if (action === 'retract') {
        if (confirm('Retract this message? Its text is erased for everyone, for good.')) await retract(roomId, msg.id);
      } else if (action === 'dm') {
        const r = await startDM([msg.authorId]);
        navigate(`/rooms/${r.id}`);
      }
    } catch (e) {
      toast(e.message);
    }
  };
}

function togglePicker(msg, act) {
  const article = document.querySelector(`.msg[data-id="${CSS.escape(msg.id)}"]`);
  if (!article) return;
  const open = article.querySelector('.picker');
  if (open) { open.remove(); return; }
  const picker = pickerEl(msg, (a, m, x) => { picker.remove(); act(a, m, x); });
  article.querySelector('.main').append(picker);
  picker.querySelector('button').focus();
}

function threadPanel(roomId, rootId, navigate) {
  const composer = new Composer({ roomId, threadId: rootId, label: 'Reply in thread' });
  const act = makeActions(roomId, composer, navigate);
  const tl = new TimelineView({ roomId, threadId: rootId, label: 'Thread replies', act });
  const root = state.timelines.get(roomId)?.byId.get(rootId);
  const follow = h('button', { type: 'button', class: 'btn', 'aria-pressed': String(!!root?.viewerFollowsThread),
    onclick: async () => {
      try { await setFollow(roomId, rootId, follow.getAttribute('aria-pressed') !== 'true'); } catch (e) { toast(e.message); }
    } });
  const drawFollow = (follows) => {
    follow.setAttribute('aria-pressed', String(follows));
    follow.textContent = follows ? 'Following' : 'Follow';
    follow.title = follows ? 'Replies notify you; click to stop following' : 'Get notified of replies';
  };
  drawFollow(!!root?.viewerFollowsThread);
  const off = on('follow', (d) => { if (d.rootId === rootId) drawFollow(d.follows); });
  const rootBox = h('div', { class: 'thread-root' }, root ? renderMessage(root, { inThread: true, act }) : null);
  // Opened from a notification or the Threads page: the root may be older than the loaded timeline.
  if (!root) {
    gql(ONE_EVENT, { roomId, id: rootId }).then((d) => {
      const msg = d.room?.event;
      if (!msg) return;
      rootBox.replaceChildren(renderMessage(msg, { inThread: true, act }));
      drawFollow(msg.viewerFollowsThread);
    }).catch(() => {});
  }
  const el = h('section', { class: 'panel thread', 'aria-label': 'Thread' },
    h('header', { class: 'panel-head' }, h('h2', {}, 'Thread'), follow,
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close thread', onclick: () => closeThread() }, '✕')),
    rootBox, tl.wrap, composer.el);
  setTimeout(() => composer.focus(), 0);
  return { el, kind: 'thread', rootId, destroy: () => { off(); tl.destroy(); } };
}
