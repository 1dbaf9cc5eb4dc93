// The composer: multi-line text, Enter sends, Shift+Enter breaks the line,
// Up (in an empty box) edits your last message, Escape cancels an edit;
// attachments upload at once, with progress, and go out with the message.
import { MentionComplete } from './autocomplete.js';
import { cleanName, fmtSize, h, toast } from './dom.js';
import { edit, send, state, timelineOf, typing, uploadFile } from './store.js';

export class Composer {
  constructor({ roomId, threadId = null, label = 'Message' }) {
    Object.assign(this, { roomId, threadId, editing: null, replyTo: null, uploads: [] });
    this.input = h('textarea', { class: 'composer-input', rows: '1', 'aria-label': label, placeholder: label,
      maxlength: '10000', onkeydown: (e) => this.onKey(e), oninput: () => this.onInput() });
    this.file = h('input', { type: 'file', multiple: true, class: 'visually-hidden', tabindex: '-1',
      'aria-hidden': 'true', onchange: () => this.onFiles() });
    this.mode = h('div', { class: 'composer-mode', 'aria-live': 'polite' });
    this.tray = h('ul', { class: 'uploads', 'aria-label': 'Attachments to send' });
    const attach = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Attach files', title: 'Attach files',
      onclick: () => this.file.click() }, '📎');
    const sendBtn = h('button', { type: 'submit', class: 'send', 'aria-label': 'Send' }, 'Send');
    this.complete = new MentionComplete(this.input, roomId);
    this.el = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.complete.list, this.mode, this.tray, h('div', { class: 'composer-row' }, attach, this.input, sendBtn), this.file);
  }

  focus() { this.input.focus(); }

  onInput() {
    // The box grows with its text by CSS (field-sizing), not by inline styles.
    if (!this.editing) typing(this.roomId, this.input.value.length > 0);
    this.complete.update();
  }

  onKey(e) {
    if (this.complete.onKey(e)) return;
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    } else if (e.key === 'ArrowUp' && !this.input.value && !this.editing) {
      const events = timelineOf(this.roomId, this.threadId).events;
      const last = [...events].reverse().find((m) => m.authorId === state.me?.id && !m.retracted);
      if (last) { e.preventDefault(); this.startEdit(last); }
    } else if (e.key === 'Escape' && this.editing) {
      e.preventDefault();
      this.cancelEdit();
    } else if (e.key === 'Escape' && this.replyTo) {
      e.preventDefault();
      this.cancelReply();
    }
  }

  startReply(msg) {
    this.replyTo = msg;
    const who = msg.author ? cleanName(msg.author.displayName) : 'Deleted User';
    this.mode.replaceChildren(`Replying to ${who} — Escape cancels `,
      h('button', { type: 'button', class: 'link', onclick: () => this.cancelReply() }, 'Cancel'));
    this.focus();
  }

  cancelReply() {
    this.replyTo = null;
    this.mode.replaceChildren();
  }

  startEdit(msg) {
    this.editing = msg;
    this.input.value = msg.body || '';
    this.mode.replaceChildren('Editing your message — Enter saves, Escape cancels ',
      h('button', { type: 'button', class: 'link', onclick: () => this.cancelEdit() }, 'Cancel'));
    this.onInput();
    this.focus();
  }

  cancelEdit() {
    this.editing = null;
    this.input.value = '';
    this.mode.replaceChildren();
    this.onInput();
  }

  async onFiles() {
    for (const file of this.file.files) {
      const item = { file, id: null, done: false };
      const bar = h('progress', { max: '1', value: '0', 'aria-label': `Uploading ${file.name}` });
      item.el = h('li', {}, h('span', {}, file.name), ' ', h('span', { class: 'muted' }, fmtSize(file.size)), ' ', bar,
        h('button', { type: 'button', class: 'link', 'aria-label': `Remove ${file.name}`,
          onclick: () => { this.uploads = this.uploads.filter((u) => u !== item); item.el.remove(); } }, '✕'));
      this.tray.append(item.el);
      this.uploads.push(item);
      uploadFile(this.roomId, file, (p) => { bar.value = p; })
        .then((att) => { item.id = att.id; item.done = true; bar.value = 1; item.el.classList.add('done'); })
        .catch((err) => { toast(`Upload failed: ${err.message}`); this.uploads = this.uploads.filter((u) => u !== item); item.el.remove(); });
    }
    this.file.value = '';
  }

  async submit() {
    const body = this.input.value.replace(/\s+$/, '');
    if (this.editing) {
      const msg = this.editing;
      if (body && body !== msg.body) {
        try { await edit(this.roomId, msg.id, body); } catch (err) { toast(err.message); return; }
      }
      this.cancelEdit();
      return;
    }
    if (this.uploads.some((u) => !u.done)) { toast('Wait for the uploads to finish.'); return; }
    const attachments = this.uploads.map((u) => u.id);
    if (!body && !attachments.length) return;
    this.input.value = '';
    this.onInput();
    this.complete.close();
    typing(this.roomId, false);
    try {
      await send(this.roomId, body || ' ', { thread: this.threadId, attachments, reply: this.replyTo?.id });
      this.cancelReply();
      this.uploads = [];
      this.tray.replaceChildren();
    } catch (err) {
      this.input.value = body;
      toast(`Not sent: ${err.message}`);
    }
  }
}
