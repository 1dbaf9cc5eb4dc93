// Running the server: users (metadata only), roles, permissions with
// explanations, rooms, server settings. Each tab shows only what the
// viewer's permissions allow; content is never shown here.
import { explain } from './auth_view.js';
import { field, h, toast } from './dom.js';
import { can, gql, has, state } from './store.js';

const PERMISSIONS = ['server.manage', 'room.create', 'room.join', 'room.list', 'room.manage', 'room.ban-member',
  'message.post', 'message.post-in-thread', 'message.attach', 'message.manage', 'message.react', 'message.echo',
  'role.manage', 'role.assign', 'admin.view-users', 'admin.view-system', 'admin.view-audit', 'user.delete-any',
  'user.delete-self', 'user.manage-permissions'];

const TABS = [
  ['Users', () => can('admin.view-users'), usersTab],
  ['Roles', () => can('role.manage') || can('role.assign'), rolesTab],
  ['Permissions', () => can('user.manage-permissions'), permissionsTab],
  ['Rooms', () => can('admin.view-system'), roomsTab],
  ['Server', () => can('admin.view-system') || can('server.manage'), serverTab],
];

export function adminView() {
  const body = h('div', { role: 'tabpanel' });
  const tabs = TABS.filter(([, allowed]) => allowed());
  const bar = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Server administration' });
  const open = (i) => {
    [...bar.children].forEach((b, j) => b.setAttribute('aria-selected', String(i === j)));
    body.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    tabs[i][2]().then((el) => body.replaceChildren(el)).catch((e) => body.replaceChildren(h('p', { class: 'error' }, explain(e))));
  };
  tabs.forEach(([name], i) => bar.append(h('button', { type: 'button', role: 'tab', class: 'btn', onclick: () => open(i) }, name)));
  const page = h('div', { class: 'page' }, h('h1', {}, 'Server'), bar, body);
  if (tabs.length) open(0); else body.append(h('p', {}, 'You have no administration rights on this server.'));
  return page;
}

function table(headers, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

function actionForm(label, fields, submit, run) {
  const out = h('p', { role: 'status', class: 'info' });
  const err = h('p', { role: 'alert', class: 'error' });
  return h('form', { class: 'card', 'aria-label': label, onsubmit: async (e) => {
    e.preventDefault(); out.textContent = ''; err.textContent = '';
    try { out.textContent = (await run()) || 'Done.'; } catch (x) { err.textContent = explain(x); }
  } }, h('h2', {}, label), h('div', { class: 'row' }, fields), h('button', { type: 'submit', class: 'btn primary' }, submit), err, out);
}

async function usersTab() {
  const d = await gql('{ admin { users { id login emails isOwner roles createdAt } } }');
  return h('div', {}, h('p', { class: 'muted' }, 'Account metadata only: administrators never see messages, DMs or files.'),
    table(['Login', 'Emails', 'Roles', 'Created', 'Id'], d.admin.users.map((u) => [
      h('bdi', {}, u.login), u.emails.join(', '), [...new Set([u.isOwner ? 'owner' : '', ...u.roles])].filter(Boolean).join(', '),
      new Date(u.createdAt).toLocaleDateString(), h('code', {}, u.id)])));
}

async function userIdOf(login) {
  const d = await gql('query($l: String!) { userByLogin(login: $l) { id } }', { l: login.trim() });
  if (!d.userByLogin) throw new Error(`No user with the login ${login}.`);
  return d.userByLogin.id;
}

async function rolesTab() {
  const d = await gql('{ roles { id name builtIn memberIds } }');
  const roleSelect = () => h('select', { name: 'role' }, d.roles.map((r) => h('option', { value: r.id }, r.name)));
  const el = h('div', {}, table(['Role', 'Built in', 'Members', 'Id'], d.roles.map((r) => [
    h('bdi', {}, r.name), r.builtIn ? 'yes' : 'no', String(r.memberIds.length), h('code', {}, r.id)])));
  if (can('role.manage')) {
    const name = h('input', { name: 'roleName', required: true });
    el.append(actionForm('Create a role', [field('Name', name)], 'Create', async () => {
      await gql('mutation($n: String!) { createRole(name: $n) { id } }', { n: name.value.trim() });
      return 'Role created (reopen the tab to see it).';
    }));
    const del = roleSelect();
    el.append(actionForm('Delete a role', [field('Role', del)], 'Delete', async () => {
      await gql('mutation($r: ID!) { deleteRole(roleId: $r) }', { r: del.value });
      return 'Role deleted.';
    }));
  }
  if (can('role.assign')) {
    const role = roleSelect();
    const login = h('input', { name: 'login', required: true });
    const mode = h('select', { name: 'mode' }, h('option', { value: 'assign' }, 'assign'), h('option', { value: 'revoke' }, 'revoke'));
    el.append(actionForm('Assign or revoke a role', [field('Role', role), field('User login', login), field('Action', mode)], 'Apply', async () => {
      const u = await userIdOf(login.value);
      const m = mode.value === 'assign' ? 'assignRole' : 'revokeRole';
      await gql(`mutation($r: ID!, $u: ID!) { ${m}(roleId: $r, userId: $u) }`, { r: role.value, u });
      return `Role ${mode.value === 'assign' ? 'assigned' : 'revoked'}.`;
    }));
  }
  return el;
}

async function permissionsTab() {
  const d = await gql('{ roles { id name } roomGroups { id name } rooms { id name } }');
  const perm = () => h('select', { name: 'permission' }, PERMISSIONS.map((p) => h('option', { value: p }, p)));
  const subject = h('select', { name: 'subject' }, d.roles.map((r) => h('option', { value: `role:${r.id}` }, `role: ${r.name}`)),
    h('option', { value: 'user' }, 'a user (login below)'));
  const subjectLogin = h('input', { name: 'subjectLogin' });
  const scope = h('select', { name: 'scope' }, h('option', { value: 'server' }, 'whole server'),
    d.roomGroups.map((g) => h('option', { value: `group:${g.id}` }, `group: ${g.name}`)),
    d.rooms.map((r) => h('option', { value: `room:${r.id}` }, `room: #${r.name}`)));
  const p1 = perm();
  const effect = h('select', { name: 'effect' }, ['ALLOW', 'DENY', 'CLEAR'].map((x) => h('option', { value: x }, x)));
  const set = actionForm('Set a permission', [field('Subject', subject), field('User login', subjectLogin), field('Scope', scope),
    field('Permission', p1), field('Effect', effect)], 'Apply', async () => {
    const subj = subject.value === 'user' ? `user:${await userIdOf(subjectLogin.value)}` : subject.value;
    await gql('mutation($s: String!, $c: String!, $p: String!, $e: PermissionEffect!) { setPermission(subject: $s, scope: $c, permission: $p, effect: $e) }',
      { s: subj, c: scope.value, p: p1.value, e: effect.value });
    return 'Permission set. Deny wins over allow.';
  });
  const login = h('input', { name: 'explainLogin', required: true });
  const p2 = perm();
  const room = h('select', { name: 'room' }, h('option', { value: '' }, '(server)'), d.rooms.map((r) => h('option', { value: r.id }, `#${r.name}`)));
  const explainForm = actionForm('Why is it allowed or denied?', [field('User login', login), field('Permission', p2), field('In room', room)], 'Explain', async () => {
    const userId = await userIdOf(login.value);
    const x = await gql('query($u: ID!, $p: String!, $r: ID) { explainPermission(userId: $u, permission: $p, roomId: $r) { allowed reason } }',
      { u: userId, p: p2.value, r: room.value || null });
    return `${x.explainPermission.allowed ? 'Allowed' : 'Denied'}: ${x.explainPermission.reason}`;
  });
  return h('div', {}, set, explainForm);
}

async function roomsTab() {
  const d = await gql('{ admin { rooms { id name memberCount archived } } }');
  return h('div', {}, h('p', { class: 'muted' }, 'Channels only; DMs are private and not listed.'),
    table(['Room', 'Members', 'State', ''], d.admin.rooms.map((r) => [h('bdi', {}, `#${r.name}`), String(r.memberCount),
      r.archived ? 'archived' : 'active',
      can('room.manage') ? h('button', { type: 'button', class: 'btn', onclick: async (e) => {
        try {
          await gql('mutation($r: ID!, $a: Boolean!) { archiveRoom(roomId: $r, archived: $a) { id } }', { r: r.id, a: !r.archived });
          r.archived = !r.archived;
          e.target.textContent = r.archived ? 'Unarchive' : 'Archive';
        } catch (x) { toast(explain(x)); }
      } }, r.archived ? 'Unarchive' : 'Archive') : ''])));
}

async function serverTab() {
  const el = h('div', {});
  const s = state.server;
  el.append(h('section', { class: 'card' }, h('h2', {}, 'This server'),
    h('p', {}, h('strong', {}, s.name), ` — version ${s.version}`), h('p', { class: 'muted' }, s.description || '')));
  if (has('mutation', 'updateServerSettings') && can('server.manage')) {
    const name = h('input', { name: 'serverName', value: s.name, required: true });
    const desc = h('input', { name: 'serverDescription', value: s.description || '' });
    el.append(actionForm('Server settings', [field('Name', name), field('Description', desc)], 'Save', async () => {
      await gql('mutation($n: String, $d: String) { updateServerSettings(name: $n, description: $d) { name } }', { n: name.value, d: desc.value });
      return 'Saved.';
    }));
  } else {
    el.append(h('p', { class: 'muted' }, 'Settings are edited in chatto.toml on this version.'));
  }
  if (can('admin.view-system')) {
    const d = await gql('{ admin { config nats { connected reconnects streamMessages streamBytes liveActors liveSubscribers } } }');
    const n = d.admin.nats;
    el.append(h('section', { class: 'card' }, h('h2', {}, 'NATS'), table(['Connected', 'Reconnects', 'Events', 'Bytes', 'Actors', 'Live sockets'],
      [[n.connected ? 'yes' : 'no', String(n.reconnects), String(n.streamMessages), String(n.streamBytes), String(n.liveActors), String(n.liveSubscribers)]])),
    h('section', { class: 'card' }, h('h2', {}, 'Configuration (secrets redacted)'), h('pre', { class: 'config' }, d.admin.config)));
  }
  return el;
}
