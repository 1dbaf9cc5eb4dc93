// Me: profile, avatar, email verification, password, notifications,
// sessions, and deleting the account (with its confirmation step).
import { explain } from './auth_view.js';
import { field, h, nameEl, statusEl } from './dom.js';
import { avatar } from './message.js';
import { LEVELS, serverLevel, setServerLevel } from './notices.js';
import { askPermission, notificationState } from './notify.js';
import * as store from './store.js';
import { authCall } from './api.js';

const USER = 'id login displayName avatarUrl emails status { text emoji }';

function section(title, ...body) { return h('section', { class: 'card', 'aria-label': title }, h('h2', {}, title), ...body); }

/** A form whose errors and confirmations are shown inside it. */
function form(label, fields, submit, onSubmit, cls = 'btn primary') {
  const error = h('p', { class: 'error', role: 'alert' });
  const info = h('p', { class: 'info', role: 'status' });
  return h('form', { 'aria-label': label, onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = '';
    info.textContent = '';
    try { info.textContent = (await onSubmit()) || ''; } catch (err) { error.textContent = explain(err); }
  } }, ...fields, error, info, h('button', { type: 'submit', class: cls }, submit));
}

export function meView(navigate) {
  const me = store.state.me;
  const page = h('div', { class: 'page' }, h('h1', {}, 'Me'));
  const pic = h('div', { class: 'row' }, avatar(me, 'lg'), nameEl(me), h('span', { class: 'muted' }, `@${me.login}`), statusEl(me));
  const mine = (u) => { Object.assign(me, u); store.remember(u); pic.replaceChildren(avatar(me, 'lg'), nameEl(me), h('span', { class: 'muted' }, `@${me.login}`), statusEl(me)); store.emit('rooms'); };

  const name = h('input', { name: 'displayName', value: me.displayName, maxlength: '64', required: true });
  const file = h('input', { type: 'file', name: 'avatar', accept: 'image/png,image/jpeg,image/gif,image/webp' });
  const progress = h('progress', { max: '1', value: '0', hidden: true, 'aria-label': 'Avatar upload' });
  const profile = section('Profile', pic,
    form('Display name', [field('Display name', name)], 'Save name', async () => {
      const d = await store.gql(`mutation($n: String!) { updateProfile(displayName: $n) { ${USER} } }`, { n: name.value });
      Object.assign(me, d.updateProfile);
      store.emit('rooms');
      return 'Saved.';
    }),
    form('Avatar', [field('Avatar (PNG, JPEG, GIF or WebP, at most 1 MiB)', file), progress], 'Upload avatar', async () => {
      if (!file.files[0]) throw new Error('Choose an image first.');
      progress.hidden = false;
      const d = await store.upload(`mutation($file: Upload!) { setAvatar(file: $file) { ${USER} } }`, {}, 'file', file.files[0],
        (p) => { progress.value = p; });
      Object.assign(me, d.setAvatar);
      pic.firstChild.replaceWith(avatar(me, 'lg'));
      return 'Avatar updated.';
    }, 'btn'),
    h('button', { type: 'button', class: 'link', onclick: async () => {
      mine((await store.gql(`mutation { removeAvatar { ${USER} } }`)).removeAvatar);
    } }, 'Remove avatar'));

  const emoji = h('input', { name: 'statusEmoji', value: me.status?.emoji || '', maxlength: '32', placeholder: '🌴 or :palm_tree:' });
  const text = h('input', { name: 'statusText', value: me.status?.text || '', maxlength: '128', placeholder: 'On holiday until Monday' });
  const status = section('Status',
    form('Set your status', [h('div', { class: 'row' }, field('Emoji', emoji), field('Status', text))], 'Set status', async () => {
      mine((await store.gql(`mutation($t: String, $e: String) { setStatus(text: $t, emoji: $e) { ${USER} } }`,
        { t: text.value.trim(), e: emoji.value.trim() })).setStatus);
      return 'Status set: everyone sees it next to your name.';
    }),
    h('button', { type: 'button', class: 'link', onclick: async () => {
      mine((await store.gql(`mutation { clearStatus { ${USER} } }`)).clearStatus);
      emoji.value = ''; text.value = '';
    } }, 'Clear status'));

  const email = h('input', { type: 'email', name: 'email', required: true });
  const code = h('input', { name: 'code', inputmode: 'numeric', pattern: '[0-9]{6}', maxlength: '6', required: true });
  const emails = h('ul', {}, (me.emails || []).map((e) => h('li', {}, e, ' ', h('span', { class: 'muted' }, '(verified)'))));
  const emailSec = section('Email', emails,
    form('Add an email address', [field('Email address', email)], 'Send a code', async () => {
      const d = await authCall('/auth/verify-email/request-code', { email: email.value.trim() });
      return d.message || 'If the address can be used, we sent a code to it.';
    }, 'btn'),
    form('Confirm the code', [field('Code from the mail', code)], 'Verify', async () => {
      const d = await authCall('/auth/verify-email/confirm-code', { email: email.value.trim(), code: code.value.trim() });
      me.emails = d.emails;
      emails.replaceChildren(...d.emails.map((e) => h('li', {}, e, ' ', h('span', { class: 'muted' }, '(verified)'))));
      return 'Address verified.';
    }, 'btn'));

  const current = h('input', { type: 'password', name: 'currentPassword', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', name: 'newPassword', autocomplete: 'new-password', minlength: '8', required: true });
  const password = section('Password',
    h('p', { class: 'muted' }, 'Changing it signs out every other session and app; this one stays signed in.'),
    form('Change password', [field('Current password', current), field('New password', next)], 'Change password', async () => {
      await store.changePassword(current.value, next.value);
      current.value = ''; next.value = '';
      return 'Password changed. Other sessions are signed out.';
    }));

  const notifState = h('span', { class: 'muted' }, ` (now: ${notificationState()})`);
  const notif = section('Notifications',
    h('p', {}, 'Get a browser notification for direct messages and mentions while Chatto is in the background.'),
    h('button', { type: 'button', class: 'btn', onclick: async () => { notifState.textContent = ` (now: ${await askPermission()})`; } },
      'Enable browser notifications'), notifState, levelForm());

  const sessions = section('Sessions',
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'btn', onclick: () => store.signOut(false) }, 'Sign out'),
      h('button', { type: 'button', class: 'btn', onclick: () => store.signOut(true) }, 'Sign out everywhere')),
    h('p', { class: 'muted small' }, '"Everywhere" ends every session, app token and open connection of your account, this one included.'));

  page.append(profile, status, emailSec, password, notif, sessions, deletion(me));
  return page;
}

function levelForm() {
  const level = h('select', { name: 'serverLevel' }, LEVELS.map(([v, label]) => h('option', { value: v }, label)));
  serverLevel().then((l) => { level.value = l; }).catch(() => {});
  return form('Notification level', [h('p', { class: 'muted small' }, 'For every room without its own setting (the Notify button in a room). Direct messages notify you unless you mute them.'),
    field('Notify me of', level)], 'Save level', async () => { await setServerLevel(level.value); return 'Saved.'; }, 'btn');
}

function deletion(me) {
  const step = h('div', {});
  const start = h('button', { type: 'button', class: 'btn danger', onclick: async () => {
    try {
      const d = await store.gql('mutation { requestAccountDeletion { token expiresInSeconds } }');
      confirmStep(d.requestAccountDeletion);
    } catch (e) { step.replaceChildren(h('p', { class: 'error', role: 'alert' }, explain(e))); }
  } }, 'Delete my account…');
  const confirmStep = ({ token, expiresInSeconds }) => {
    const typed = h('input', { name: 'confirmLogin', autocomplete: 'off', required: true });
    start.hidden = true;
    step.replaceChildren(form('Confirm account deletion', [
      h('p', {}, `This is final. Type your login (${me.login}) to confirm within ${Math.round(expiresInSeconds / 60)} minutes.`),
      field('Your login', typed)], 'Delete my account now', async () => {
      if (typed.value.trim().toLowerCase() !== me.login.toLowerCase()) throw new Error('That is not your login.');
      await store.gql('mutation($t: String!) { deleteMyAccount(token: $t) }', { t: token });
      store.ended('Your account is deleted.');
      return '';
    }, 'btn danger'));
    typed.focus();
  };
  return section('Delete account',
    h('p', {}, 'Deleting your account destroys, at once and for good:'),
    h('ul', { class: 'destroys' },
      h('li', {}, 'the text of every message you wrote (they stay in place as retracted, shown as by "Deleted User");'),
      h('li', {}, 'your uploads and avatar: their keys are shredded, so they cannot be read again;'),
      h('li', {}, 'your profile, email addresses and login;'),
      h('li', {}, 'every session and app token (you are signed out everywhere).')),
    h('p', {}, 'There is no undo and no grace period.'), start, step);
}
