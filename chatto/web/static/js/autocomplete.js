// @-mention completion in the composer: typing "@pa" lists the room's
// members whose login or name matches (server-side search), Up/Down move,
// Enter or Tab inserts "@login ", Escape closes. A combobox per ARIA.
import { cleanName, h } from './dom.js';
import { searchMembers, state } from './store.js';

let seq = 0;

export class MentionComplete {
  constructor(input, roomId) {
    Object.assign(this, { input, roomId, items: [], active: 0, query: null, timer: 0 });
    this.id = `mc-${Math.random().toString(36).slice(2, 9)}`;
    this.list = h('ul', { class: 'mention-list', role: 'listbox', id: this.id, 'aria-label': 'People to mention', hidden: true });
    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-controls', this.id);
    input.setAttribute('aria-expanded', 'false');
  }

  get open() { return !this.list.hidden; }

  /** After each input: is the caret right after an @word? */
  update() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const m = before.match(/(?:^|\s)@([\p{L}\p{N}_.-]{0,32})$/u);
    if (!m) { this.close(); return; }
    this.query = m[1];
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fetch(m[1]), 120);
  }

  async fetch(text) {
    const mine = ++seq;
    let users = [];
    try { users = (await searchMembers(this.roomId, text)).users; } catch (e) { users = []; }
    if (mine !== seq) return;
    this.items = users.filter((u) => u.id !== state.me?.id).slice(0, 8);
    this.active = 0;
    this.draw();
  }

  draw() {
    if (!this.items.length) { this.close(); return; }
    this.list.replaceChildren(...this.items.map((u, i) => h('li', {
      role: 'option', id: `${this.id}-${i}`, 'aria-selected': String(i === this.active), class: i === this.active ? 'active' : '',
      onmousedown: (e) => { e.preventDefault(); this.pick(i); },
    }, h('bdi', {}, cleanName(u.displayName || u.login)), ' ', h('span', { class: 'muted' }, `@${u.login}`))));
    this.list.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
    this.input.setAttribute('aria-activedescendant', `${this.id}-${this.active}`);
  }

  close() {
    clearTimeout(this.timer);
    seq += 1;
    this.items = [];
    this.list.hidden = true;
    this.input.setAttribute('aria-expanded', 'false');
    this.input.removeAttribute('aria-activedescendant');
  }

  pick(i) {
    const u = this.items[i];
    if (!u) return;
    const caret = this.input.selectionStart;
    const start = caret - this.query.length - 1;
    const text = `@${u.login} `;
    this.input.setRangeText(text, start, caret, 'end');
    this.close();
    this.input.focus();
  }

  /** Keys while the list is open; true when the key was used here. */
  onKey(e) {
    if (!this.open) return false;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : this.items.length - 1)) % this.items.length;
      this.draw();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      this.pick(this.active);
    } else if (e.key === 'Escape') {
      this.close();
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }
}
