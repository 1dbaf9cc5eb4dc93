// Getting in: sign in, sign up (email, emailed code, account), forgot and
// reset password. Every refusal is shown in words next to the form.
import { field, h } from './dom.js';
import * as store from './store.js';

export function explain(err) {
  if (err.code === 'RATE_LIMITED') {
    const wait = Number(err.retryAfter);
    const when = wait > 0 ? `in ${wait >= 90 ? `${Math.ceil(wait / 60)} minutes` : `${Math.ceil(wait)} seconds`}` : 'later';
    return `Too many attempts. Try again ${when}.`;
  }
  if (err.code === 'NETWORK') return err.message;
  if (err.code === 'UNAUTHENTICATED') return err.message === 'authentication required' ? 'Please sign in.' : err.message;
  return err.message ? err.message.charAt(0).toUpperCase() + err.message.slice(1) : 'Something went wrong.';
}

function form(title, fields, submitLabel, onSubmit, footer = []) {
  const error = h('p', { class: 'error', role: 'alert' });
  const info = h('p', { class: 'info', role: 'status' });
  const button = h('button', { type: 'submit', class: 'btn primary' }, submitLabel);
  const el = h('form', { class: 'card auth', 'aria-label': title, onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = '';
    button.disabled = true;
    try { await onSubmit({ info, error }); } catch (err) { error.textContent = explain(err); } finally { button.disabled = false; }
  } }, h('h1', {}, title), ...fields, error, info, button, h('div', { class: 'auth-links' }, ...footer));
  return el;
}

const input = (name, type = 'text', extra = {}) => h('input', { name, type, required: true, ...extra });
const link = (href, label, navigate) => h('a', { href, onclick: (e) => { e.preventDefault(); navigate(href); } }, label);

export function signInView(navigate) {
  const login = input('login', 'text', { autocomplete: 'username' });
  const password = input('password', 'password', { autocomplete: 'current-password' });
  const notice = store.state.notice ? h('p', { class: 'info', role: 'status' }, store.state.notice) : null;
  store.state.notice = '';
  return h('main', { class: 'center' }, notice, form('Sign in to Chatto', [field('Login or email', login), field('Password', password)], 'Sign in',
    async () => { await store.signIn(login.value.trim(), password.value); navigate('/', true); },
    [registration() === 'open' ? link('/signup', 'Create an account', navigate) : null,
      link('/forgot', 'Forgot your password?', navigate)]));
}

const registration = () => store.state.publicInfo?.registration || 'open';

/** /invite#<code>: the code is checked, then the sign-up steps carry it. */
export function inviteView(navigate) {
  const code = decodeURIComponent(location.hash.slice(1));
  // The code leaves the address bar and history: it is a secret until used.
  if (location.hash) history.replaceState({}, '', '/invite');
  const main = h('main', { class: 'center' }, h('p', { class: 'muted' }, 'Checking your invite…'));
  const bad = (why) => main.replaceChildren(h('div', { class: 'card auth' }, h('h1', {}, 'This invite cannot be used'),
    h('p', { class: 'error', role: 'alert' }, why), h('p', {}, 'Ask whoever invited you for a new link.'), link('/login', 'Sign in', navigate)));
  if (!code) { bad('The link has no invite code. Copy the whole link, including the part after #.'); return main; }
  store.checkInvite(code).then(() => main.replaceChildren(signUpView(navigate, code)), (e) => {
    bad(e.code === 'RATE_LIMITED' || e.code === 'NETWORK' ? explain(e) : 'The invite link is invalid, expired or used up.');
  });
  return main;
}

export function signUpView(navigate, invite = null) {
  const main = h('main', { class: 'center' });
  if (registration() === 'closed') {
    main.append(h('div', { class: 'card auth' }, h('h1', {}, 'Sign-up is closed'),
      h('p', {}, 'This server does not take new accounts at the moment.'), link('/login', 'Sign in', navigate)));
    return main;
  }
  const note = invite ? h('p', { class: 'info' }, 'You were invited: welcome!')
    : registration() === 'invite-only' ? h('p', { class: 'info' }, 'This server takes new accounts through invite links: open the link you were given.') : null;
  const stepEmail = () => {
    const email = input('email', 'email', { autocomplete: 'email' });
    main.replaceChildren(form('Create your account', [note, h('p', { class: 'muted' }, 'Step 1 of 3: we mail you a six-digit code.'), field('Email', email)], 'Send the code',
      async () => { await store.requestCode(email.value.trim(), invite); stepCode(email.value.trim()); },
      [link('/login', 'I already have an account', navigate)]));
    email.focus();
  };
  const stepCode = (email) => {
    const code = input('code', 'text', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6' });
    main.replaceChildren(form('Check your mail', [
      h('p', { class: 'muted' }, 'Step 2 of 3: if the address can be used, a code is on its way to ', h('strong', {}, email), '. It is valid for 15 minutes.'),
      field('Code', code)], 'Verify',
    async () => { const token = await store.verifyCode(email, code.value.trim(), invite); stepAccount(token); },
    [h('button', { type: 'button', class: 'link', onclick: stepEmail }, 'Use another address or send a new code')]));
    code.focus();
  };
  const stepAccount = (token) => {
    const login = input('login', 'text', { autocomplete: 'username', maxlength: '64' });
    const password = input('password', 'password', { autocomplete: 'new-password', minlength: '8' });
    main.replaceChildren(form('Choose your login', [h('p', { class: 'muted' }, 'Step 3 of 3.'), field('Login', login), field('Password', password)], 'Create account',
      async () => { await store.completeSignUp(token, login.value.trim(), password.value); navigate('/', true); }));
    login.focus();
  };
  stepEmail();
  return main;
}

export function forgotView(navigate) {
  const email = input('email', 'email', { autocomplete: 'email' });
  return h('main', { class: 'center' }, form('Forgot your password?', [field('Email', email)], 'Send a reset link',
    async ({ info }) => {
      const doc = await store.forgotPassword(email.value.trim());
      info.textContent = doc.message || 'If the address can be used, we sent a mail to it.';
    }, [link('/login', 'Back to sign in', navigate)]));
}

export function resetView(navigate) {
  const token = new URLSearchParams(location.search).get('token') || '';
  const password = input('password', 'password', { autocomplete: 'new-password', minlength: '8' });
  return h('main', { class: 'center' }, form('Choose a new password', [field('New password', password)], 'Set password',
    async ({ info }) => {
      await store.resetPassword(token, password.value);
      info.textContent = 'Your password is changed and every older session has ended. You can sign in now.';
    }, [link('/login', 'Sign in', navigate)]));
}
