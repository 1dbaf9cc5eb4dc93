// One message as DOM: author, time, body, markers, attachments, reactions,
// thread replies and its actions. Actions go to the `act` callback.
import { cleanName, fmtSize, fmtTime, h, nameEl, statusEl } from './dom.js';
import { formatBody, stripBidi } from './format.js';
import { canPin, isPinned } from './pins.js';
import { roomCan, state, user } from './store.js';

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '✅'];

function authorOf(msg) {
  if (state.deletedUsers?.has(msg.authorId)) return null;
  return msg.author ? user(msg.authorId, msg.author) : null;
}

export function avatar(u, size = 'md') {
  if (u?.avatarUrl) return h('img', { class: `avatar ${size}`, src: u.avatarUrl, alt: '' });
  const initial = u ? cleanName(u.displayName || u.login).slice(0, 1).toUpperCase() : '?';
  return h('span', { class: `avatar ${size} initial`, 'aria-hidden': 'true' }, initial);
}

function attachmentEl(att) {
  const name = stripBidi(att.name) || 'attachment (name erased)';
  if (att.contentType.startsWith('image/') && att.contentType !== 'image/svg+xml') {
    return h('a', { class: 'att image', href: att.url, target: '_blank', rel: 'noopener' },
      h('img', { src: att.url, alt: name }));
  }
  return h('a', { class: 'att file', href: att.url, download: name },
    h('span', { class: 'att-name' }, name), ' ', h('span', { class: 'muted' }, `(${fmtSize(att.size)})`));
}

function reactionsEl(msg, act) {
  if (!msg.reactions?.length) return null;
  return h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' },
    msg.reactions.map((r) => h('button', {
      type: 'button', class: 'reaction', 'aria-pressed': r.mine ? 'true' : 'false',
      title: `:${r.shortcode}:`, 'aria-label': `${r.emoji || r.shortcode} ${r.count}, ${r.mine ? 'remove' : 'add'} reaction`,
      onclick: () => act('react', msg, { code: r.emoji || r.shortcode, add: !r.mine }),
    }, `${r.emoji || `:${r.shortcode}:`} ${r.count}`)));
}

function actionsEl(msg, { inThread }, act) {
  const mine = msg.authorId === state.me?.id;
  const dm = state.rooms.get(msg.roomId)?.kind === 'DM';
  const moderate = !mine && !dm && !msg.retracted && roomCan(msg.roomId, 'message.manage');
  const pinned = isPinned(msg.roomId, msg.id);
  const btn = (label, action, extra = {}) => h('button', { type: 'button', class: 'icon-btn', 'aria-label': label, title: label,
    onclick: () => act(action, msg, extra) }, ACTION_ICONS[action]);
  return h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Message actions' },
    btn('Add reaction', 'picker'),
    msg.retracted ? null : btn('Reply', 'reply'),
    inThread ? null : btn('Reply in thread', 'thread'),
    mine && !msg.retracted ? btn('Edit message', 'edit') : null,
    (mine && !msg.retracted) || moderate ? btn('Retract message', 'retract') : null,
    canPin(msg.roomId) && !msg.retracted ? btn(pinned ? 'Unpin message' : 'Pin message', 'pin') : null,
    !mine && authorOf(msg) ? btn('Message the author directly', 'dm') : null);
}
const ACTION_ICONS = { reply: '❝', picker: '☺', thread: '↩', edit: '✎', retract: '🗑', dm: '✉', pin: '📌' };

export function pickerEl(msg, act) {
  return h('div', { class: 'picker', role: 'group', 'aria-label': 'Choose a reaction' },
    QUICK_REACTIONS.map((e) => h('button', { type: 'button', class: 'reaction', 'aria-label': `React with ${e}`,
      onclick: () => act('react', msg, { code: e, add: true }) }, e)));
}

function replyRef(msg, act) {
  const tl = state.timelines.get(msg.roomId);
  const target = tl?.byId.get(msg.inReplyTo);
  const who = target ? (authorOf(target) ? cleanName(authorOf(target).displayName) : 'Deleted User') : null;
  const snippet = target ? (target.retracted ? 'a retracted message' : (target.body || '').slice(0, 80)) : 'an earlier message';
  return h('button', { type: 'button', class: 'reply-ref link muted', onclick: () => act('goto', { id: msg.inReplyTo }) },
    '↪ ', who ? h('bdi', {}, who) : null, who ? ': ' : '', snippet);
}

export function renderMessage(msg, { prev = null, inThread = false, act }) {
  const author = authorOf(msg);
  const cont = prev && prev.authorId === msg.authorId && !prev.retracted &&
    new Date(msg.createdAt) - new Date(prev.createdAt) < 5 * 60 * 1000;
  const body = msg.retracted
    ? h('p', { class: 'retracted' }, 'This message was retracted.')
    : h('div', { class: 'body' }, formatBody(msg.body || ''));
  const mention = !msg.retracted && msg.authorId !== state.me?.id && (msg.mentionsRoom || (msg.mentions || []).includes(state.me?.id));
  const el = h('article', {
    class: `msg${cont && !mention ? ' cont' : ''}${msg.authorId === state.me?.id ? ' mine' : ''}${mention ? ' mention' : ''}`,
    dataset: { id: msg.id }, tabindex: '-1', 'aria-label': `${author ? cleanName(author.displayName) : 'Deleted User'} at ${fmtTime(msg.createdAt)}`,
  },
  cont && !mention ? h('span', { class: 'gutter' }) : avatar(author),
  h('div', { class: 'main' },
    msg.inReplyTo ? replyRef(msg, act) : null,
    cont && !msg.inReplyTo && !mention ? null : h('header', {}, nameEl(author, 'author'), ' ', statusEl(author), ' ',
      mention ? h('span', { class: 'mention-tag' }, msg.mentionsRoom ? '@room' : 'mentions you') : null, ' ',
      h('time', { datetime: msg.createdAt, title: new Date(msg.createdAt).toLocaleString() }, fmtTime(msg.createdAt))),
    body,
    isPinned(msg.roomId, msg.id) ? h('span', { class: 'pinned muted' }, 'Pinned') : null,
    msg.editedAt && !msg.retracted ? h('span', { class: 'edited muted', title: new Date(msg.editedAt).toLocaleString() }, '(edited)') : null,
    msg.attachments?.length ? h('div', { class: 'atts' }, msg.attachments.map(attachmentEl)) : null,
    reactionsEl(msg, act),
    !inThread && msg.replyCount > 0 ? h('button', { type: 'button', class: 'link replies', onclick: () => act('thread', msg) },
      `${msg.replyCount} ${msg.replyCount === 1 ? 'reply' : 'replies'}`,
      msg.threadUnreadCount > 0 ? h('span', { class: 'badge', 'aria-label': `${msg.threadUnreadCount} unread` }, String(msg.threadUnreadCount)) : null) : null),
  actionsEl(msg, { inThread }, act));
  return el;
}
