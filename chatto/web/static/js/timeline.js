// A windowed timeline (main room or thread): only a slice of the loaded
// messages is in the DOM (at most MAX_NODES), slid on scroll; reaching the
// oldest loaded message pages back with the history cursor.
import { dayKey, fmtDay, h } from './dom.js';
import { renderMessage } from './message.js';
import { loadOlder, markRead, on, state, timelineOf } from './store.js';

const INITIAL = 60;
const STEP = 40;
const MAX_NODES = 160;
const EDGE = 400;

export class TimelineView {
  constructor({ roomId, threadId = null, label, act }) {
    Object.assign(this, { roomId, threadId, act, lo: 0, hi: 0, tail: true });
    this.status = h('div', { class: 'tl-status muted', 'aria-live': 'off' });
    this.list = h('div', { class: 'items' });
    this.newBelow = h('button', { type: 'button', class: 'new-below', hidden: true,
      onclick: () => this.jumpToEnd() }, 'New messages ↓');
    this.el = h('div', { class: 'timeline', role: 'log', 'aria-live': 'polite', 'aria-label': label, tabindex: '0' },
      this.status, this.list);
    this.wrap = h('div', { class: 'timeline-wrap' }, this.el, this.newBelow);
    this.el.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.el.addEventListener('keydown', (e) => this.onKey(e));
    const mine = (d) => d.roomId === roomId && (d.threadId || null) === threadId;
    this.offs = [
      on('timeline', (d) => { if (mine(d) || d.redraw) (d.reset ? this.reset() : this.redraw()); }),
      on('append', (d) => { if (mine(d)) this.onAppend(); }),
      on('older', (d) => { if (mine(d)) { this.lo += d.count; this.hi += d.count; this.showEarlier(); } }),
      on('message', (d) => { if (mine(d)) this.rerender(d.id); }),
    ];
    this.reset();
  }

  destroy() { this.offs.forEach((off) => off()); }
  get events() { return timelineOf(this.roomId, this.threadId).events; }

  item(i) {
    const ev = this.events[i];
    const prev = i > 0 ? this.events[i - 1] : null;
    const node = h('div', { class: 'item', dataset: { id: ev.id } });
    if (!prev || dayKey(prev.createdAt) !== dayKey(ev.createdAt)) {
      node.append(h('div', { class: 'day', role: 'separator' }, h('span', {}, fmtDay(ev.createdAt))));
    }
    const sameDay = prev && dayKey(prev.createdAt) === dayKey(ev.createdAt);
    node.append(renderMessage(ev, { prev: sameDay ? prev : null, inThread: !!this.threadId, act: this.act }));
    return node;
  }

  reset() {
    const n = this.events.length;
    this.hi = n;
    this.tail = true;
    this.lo = Math.max(0, n - INITIAL);
    this.list.replaceChildren(...this.range(this.lo, this.hi));
    this.updateStatus();
    this.scrollToEnd();
    // Time to first rendered timeline (scripts/measure_web.py reads it).
    if (n && !performance.getEntriesByName('chatto:first-timeline').length) {
      requestAnimationFrame(() => performance.mark('chatto:first-timeline'));
    }
  }

  redraw() {
    const top = this.el.scrollTop;
    this.list.replaceChildren(...this.range(this.lo, this.hi));
    this.el.scrollTop = top;
  }

  range(a, b) { const out = []; for (let i = a; i < b; i += 1) out.push(this.item(i)); return out; }

  updateStatus() {
    const tl = timelineOf(this.roomId, this.threadId);
    let text = '';
    if (this.lo === 0 && tl.loaded && !tl.hasOlder) text = this.threadId ? 'Start of the thread' : 'This is the start of the room.';
    else if (this.lo === 0 && tl.busy) text = 'Loading older messages…';
    this.status.textContent = text;
  }

  atEnd() { return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 60; }
  scrollToEnd() { requestAnimationFrame(() => { this.el.scrollTop = this.el.scrollHeight; }); }

  jumpToEnd() {
    this.newBelow.hidden = true;
    this.reset();
    markRead(this.roomId);
  }

  onAppend() {
    const n = this.events.length;
    if (!this.tail) { this.newBelow.hidden = false; return; }
    const follow = this.atEnd() || this.events[n - 1].authorId === state.me?.id;
    this.list.append(...this.range(this.hi, n));
    this.hi = n;
    if (follow) {
      this.trimTop();
      this.scrollToEnd();
    } else {
      this.newBelow.hidden = false;
    }
  }

  onScroll() {
    if (this.el.scrollTop < EDGE) {
      if (this.lo > 0) this.showEarlier();
      else {
        const tl = timelineOf(this.roomId, this.threadId);
        if (tl.hasOlder && !tl.busy) {
          loadOlder(this.roomId, this.threadId).then(() => this.updateStatus()).catch(() => {});
          this.updateStatus();
        }
      }
    } else if (this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < EDGE && this.hi < this.events.length) {
      this.showLater();
    }
    if (this.atEnd()) {
      this.newBelow.hidden = true;
      if (!this.threadId && this.hi === this.events.length) markRead(this.roomId);
    }
  }

  showEarlier() {
    if (this.lo === 0) return this.updateStatus();
    const from = Math.max(0, this.lo - STEP);
    const before = this.el.scrollHeight;
    const top = this.el.scrollTop;
    // The old first item may lose its day separator or header now it has a neighbour.
    const oldFirst = this.list.firstElementChild;
    const nodes = this.range(from, this.lo);
    if (oldFirst) oldFirst.replaceWith(this.item(this.lo));
    this.list.prepend(...nodes);
    this.lo = from;
    this.el.scrollTop = top + (this.el.scrollHeight - before);
    while (this.hi - this.lo > MAX_NODES) { this.list.lastElementChild.remove(); this.hi -= 1; this.tail = false; }
    this.updateStatus();
    return undefined;
  }

  showLater() {
    const to = Math.min(this.events.length, this.hi + STEP);
    this.list.append(...this.range(this.hi, to));
    this.hi = to;
    this.tail = to === this.events.length;
    this.trimTop();
  }

  trimTop() {
    let removed = 0;
    while (this.hi - this.lo > MAX_NODES) {
      const first = this.list.firstElementChild;
      removed += first.offsetHeight;
      first.remove();
      this.lo += 1;
    }
    if (removed) this.el.scrollTop -= removed;
  }

  rerender(id) {
    const node = this.list.querySelector(`.item[data-id="${CSS.escape(id)}"]`);
    if (!node) return;
    const i = this.events.findIndex((m) => m.id === id);
    if (i >= 0) node.replaceWith(this.item(i));
  }

  onKey(e) {
    if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
    const msgs = [...this.list.querySelectorAll('.msg')];
    const cur = msgs.indexOf(document.activeElement);
    const next = e.key === 'ArrowUp' ? (cur < 0 ? msgs.length - 1 : cur - 1) : cur + 1;
    if (msgs[next]) { e.preventDefault(); msgs[next].focus(); }
  }
}
