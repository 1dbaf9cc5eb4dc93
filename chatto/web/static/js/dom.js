// DOM helpers. User data reaches the page only as text nodes and attribute
// values: there is no path here to innerHTML.

/** h('button', {class: 'x', onclick: fn, 'aria-label': 'Send'}, 'text', node) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') || key === 'style' || key === 'srcdoc') {
      // Handlers only as functions; never inline handler or style strings.
      if (typeof value === 'function' && key.startsWith('on')) el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' || key === 'checked' || key === 'disabled') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

// Bidi controls and zero-width characters in a name could reorder or hide
// the text around it; names are isolated (<bdi>) and shown without them.
const INVISIBLE = /[\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]/g;

export function cleanName(name) {
  const cleaned = String(name ?? '').replace(INVISIBLE, '').trim();
  return cleaned || '(no name)';
}

export function nameEl(user, extraClass = '') {
  if (!user) return h('bdi', { class: `name deleted ${extraClass}` }, 'Deleted User');
  return h('bdi', { class: `name ${extraClass}`, title: `@${cleanName(user.login)}` },
    cleanName(user.displayName || user.login));
}

/** A user's custom status (emoji and text) beside their name; null if none. */
export function statusEl(user) {
  const st = user?.status;
  if (!st || (!st.text && !st.emoji)) return null;
  const label = [st.emoji, cleanName(st.text) === '(no name)' ? '' : cleanName(st.text)].filter(Boolean).join(' ');
  return h('bdi', { class: 'status muted', title: label, 'aria-label': `status: ${label}` }, label);
}

let toastTimer = 0;
export function toast(message) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 5000);
}

export function fmtTime(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function fmtDay(iso) {
  return new Date(iso).toLocaleDateString([], { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
}

export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A labelled form field. */
export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}
