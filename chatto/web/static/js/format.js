// Message text to DOM nodes: a tiny, safe markdown subset (code blocks,
// quotes, inline code, bold, italic) and http(s) autolinks. Everything is
// created as elements and text nodes; no markup from the message is parsed.
import { h } from './dom.js';

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\s][^*\n]*\*)|((?<![\w])_[^_\s][^_\n]*_(?![\w]))|(https?:\/\/[^\s<>"'`]+)/g;
// Bidi embeddings, overrides and isolates can make text read backwards
// ("\u202Egnp.exe" shows as "exe.png"); they are dropped from what is shown.
const BIDI = /[\u202A-\u202E\u2066-\u2069]/g;
export const stripBidi = (text) => String(text ?? '').replace(BIDI, '');

export function safeUrl(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (e) {
    return null;
  }
}

function link(raw) {
  let url = raw;
  let tail = '';
  // Sentence punctuation after a link is not part of it.
  while (/[.,;:!?)\]]$/.test(url)) { tail = url.slice(-1) + tail; url = url.slice(0, -1); }
  const href = safeUrl(url);
  const a = href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow' }, url) : url;
  return tail ? [a, tail] : [a];
}

export function inline(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const [tok] = m;
    if (m[1]) out.push(h('code', {}, tok.slice(1, -1)));
    else if (m[2]) out.push(h('strong', {}, ...inline(tok.slice(2, -2))));
    else if (m[3] || m[4]) out.push(h('em', {}, ...inline(tok.slice(1, -1))));
    else out.push(...link(tok));
    last = m.index + tok.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function paragraphs(text) {
  const out = [];
  let quote = null;
  let para = [];
  const flush = () => {
    if (para.length) out.push(h('p', { dir: 'auto' }, ...para.flatMap((l, i) => (i ? [h('br'), ...inline(l)] : inline(l)))));
    para = [];
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('>')) {
      flush();
      if (!quote) { quote = []; out.push(h('blockquote', { dir: 'auto' }, quote)); }
      quote.push(line.replace(/^> ?/, ''));
    } else {
      if (quote) {
        const bq = out[out.length - 1];
        bq.textContent = '';
        quote.forEach((l, i) => { if (i) bq.append(h('br')); bq.append(...inline(l).map(toNode)); });
        quote = null;
      }
      para.push(line);
    }
  }
  if (quote) {
    const bq = out[out.length - 1];
    bq.textContent = '';
    quote.forEach((l, i) => { if (i) bq.append(h('br')); bq.append(...inline(l).map(toNode)); });
  }
  flush();
  return out;
}

const toNode = (x) => (x instanceof Node ? x : document.createTextNode(String(x)));

/** The body of a message as a fragment. */
export function formatBody(text) {
  const frag = document.createDocumentFragment();
  const parts = stripBidi(text).split(/```/);
  parts.forEach((part, i) => {
    if (i % 2 === 1 && i < parts.length - 1) {
      const code = part.replace(/^[a-z0-9+-]*\n/i, '');
      frag.append(h('pre', {}, h('code', {}, code.replace(/\n$/, ''))));
    } else {
      const chunk = i % 2 === 1 ? '```' + part : part;
      const trimmed = chunk.replace(/^\n+|\n+$/g, '');
      if (trimmed) frag.append(...paragraphs(trimmed));
    }
  });
  return frag;
}
