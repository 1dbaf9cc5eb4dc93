// Boot and routing: signed-out pages, or the sidebar beside the current view.
import { h, toast } from './dom.js';
import { forgotView, inviteView, resetView, signInView, signUpView } from './auth_view.js';
import { browseView } from './browse.js';
import { startNotifications } from './notify.js';
import { roomView } from './room_view.js';
import { sidebar } from './sidebar.js';
import * as store from './store.js';

const app = document.getElementById('app');
let shell = null;
let current = null;

const PUBLIC = { '/signup': signUpView, '/invite': inviteView, '/forgot': forgotView, '/reset-password': resetView, '/login': signInView };
const LAZY = {
  '/me': ['./me_view.js', 'meView'], '/admin': ['./admin_view.js', 'adminView'],
  '/notifications': ['./notifications_view.js', 'notificationsView'], '/threads': ['./threads_view.js', 'threadsView'],
};

export function navigate(path, replace = false) {
  if (replace) history.replaceState({}, '', path);
  else if (path !== location.pathname + location.search) history.pushState({}, '', path);
  route();
}

async function route() {
  const path = location.pathname;
  if (!store.state.me) {
    shell = null;
    const view = PUBLIC[path] || signInView;
    app.replaceChildren(view(navigate));
    app.querySelector('input')?.focus();
    return;
  }
  if (PUBLIC[path] && path !== '/reset-password') { navigate('/', true); return; }
  if (!shell) {
    const content = h('div', { class: 'content', id: 'content' });
    const skip = h('a', { href: '#content', class: 'skip', onclick: (e) => {
      e.preventDefault();
      (content.querySelector('.composer-input') || content.querySelector('h1, input, button'))?.focus();
    } }, 'Skip to the content');
    shell = { content, el: h('div', { class: 'layout' }, skip, sidebar(navigate), content) };
    app.replaceChildren(shell.el);
  }
  if (current?.destroy) current.destroy();
  current = await viewFor(path);
  shell.el.classList.toggle('in-view', path !== '/');
  shell.content.replaceChildren(current);
  store.emit('route');
}

async function viewFor(path) {
  const m = path.match(/^\/rooms\/([^/]+)$/);
  if (m) return roomView(decodeURIComponent(m[1]), navigate);
  if (path === '/browse') return browseView(navigate);
  if (path === '/reset-password') return resetView(navigate);
  if (LAZY[path]) {
    const [mod, name] = LAZY[path];
    return (await import(mod))[name](navigate);
  }
  store.state.current = null;
  const first = [...store.state.rooms.values()].find((r) => r.kind !== 'DM' && !r.archived);
  if (first && window.matchMedia('(min-width: 700px)').matches) { history.replaceState({}, '', `/rooms/${first.id}`); return roomView(first.id, navigate); }
  return h('div', { class: 'empty' }, h('h1', {}, `Welcome to ${store.state.server?.name || 'Chatto'}`),
    h('p', {}, first ? 'Pick a room on the left.' : 'No rooms yet. '),
    h('a', { href: '/browse', onclick: (e) => { e.preventDefault(); navigate('/browse'); } }, 'Browse or create rooms'));
}

window.addEventListener('popstate', route);
// A second invite link pasted into the same tab only changes the fragment.
window.addEventListener('hashchange', () => { if (location.pathname === '/invite') route(); });
store.on('auth', (d) => {
  if (!d.signedIn) { shell = null; if (current?.destroy) current.destroy(); current = null; navigate('/login', true); }
});
// Away after five minutes in the background; online again when seen.
let awayTimer = 0;
document.addEventListener('visibilitychange', () => {
  clearTimeout(awayTimer);
  if (!store.state.me) return;
  if (document.hidden) {
    awayTimer = setTimeout(() => store.setPresence('AWAY'), 5 * 60 * 1000);
  } else {
    store.setPresence('ONLINE');
    if (store.state.current) store.markRead(store.state.current);
  }
});

async function boot() {
  try {
    await store.loadPublicInfo();
    await store.resume();
  } catch (e) {
    toast(`Cannot reach the server: ${e.message}`);
  }
  startNotifications();
  route();
}
// For tests and debugging from DevTools (no secrets here: the CSRF token stays in api.js).
window.chatto = { store, navigate };
boot();
