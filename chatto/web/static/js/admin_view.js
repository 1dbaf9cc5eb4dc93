// Running the server: users (metadata only), roles, permissions with
// explanations, rooms, server settings. Each tab shows only what the
// viewer's permissions allow; content is never shown here.
import { explain } from './auth_view.js';
import { field, h, toast } from './dom.js';
import { GROUPS, SERVER } from './queries.js';
import { can, emit, gql, refreshRooms, state, upload } from './store.js';

const PERMISSIONS = ['server.manage', 'room.create', 'room.join', 'room.list', 'room.manage', 'room.ban-member',
  'message.post', 'message.post-in-thread', 'message.attach', 'message.manage', 'message.react', 'message.echo',
  'role.manage', 'role.assign', 'admin.view-users', 'admin.view-system', 'admin.view-audit', 'user.delete-any',
  'user.delete-self', 'user.manage-permissions', 'invite.manage', 'message.pin', 'message.mention-room'];

const TABS = [
  ['Users', () => can('admin.view-users'), usersTab],
  ['Roles', () => can('role.manage') || can('role.assign'), rolesTab],
  ['Permissions', () => can('user.manage-permissions'), permissionsTab],
  ['Rooms', () => can('admin.view-system'), roomsTab],
  ['Invites', () => can('invite.manage'), invitesTab],
  ['Groups', () => can('server.manage'), groupsTab],
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
  const logo = () => (state.server.logoUrl ? h('img', { class: 'server-logo lg', src: state.server.logoUrl, alt: 'Server logo' }) : h('span', { class: 'muted' }, 'No logo.'));
  const logoBox = h('div', { class: 'row' }, logo());
  el.append(h('section', { class: 'card' }, h('h2', {}, 'This server'),
    h('p', {}, h('strong', {}, s.name), ` — version ${s.version}, registration ${s.registration.toLowerCase().replace('_', '-')}`),
    h('p', { class: 'muted' }, s.description || ''), logoBox));
  if (can('server.manage')) {
    const name = h('input', { name: 'serverName', value: s.name, required: true, maxlength: '64' });
    const desc = h('input', { name: 'serverDescription', value: s.description || '' });
    el.append(actionForm('Server settings', [field('Name', name), field('Description', desc)], 'Save', async () => {
      const d = await gql(`mutation($n: String!, $d: String) { updateServerSettings(name: $n, description: $d) { ${SERVER} } }`,
        { n: name.value.trim(), d: desc.value.trim() });
      state.server = d.updateServerSettings;
      emit('server');
      return 'Saved. Everyone sees the new name now.';
    }));
    const file = h('input', { type: 'file', name: 'logo', accept: 'image/png,image/jpeg,image/gif,image/webp' });
    const setLogo = (info) => { state.server = info; logoBox.replaceChildren(logo()); emit('server'); };
    el.append(actionForm('Logo', [field('Logo (PNG, JPEG, GIF or WebP, at most 1 MiB)', file)], 'Upload logo', async () => {
      if (!file.files[0]) throw new Error('Choose an image first.');
      setLogo((await upload(`mutation($file: Upload!) { setServerLogo(file: $file) { ${SERVER} } }`, {}, 'file', file.files[0])).setServerLogo);
      return 'Logo set.';
    }), h('button', { type: 'button', class: 'btn', onclick: async () => {
      try { setLogo((await gql(`mutation { removeServerLogo { ${SERVER} } }`)).removeServerLogo); } catch (x) { toast(explain(x)); }
    } }, 'Remove the logo'));
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

const INVITE = 'id room { id name } createdBy { login } createdAt expiresAt maxUses uses usable';

async function invitesTab() {
  const d = await gql(`{ invites { ${INVITE} } rooms { id name } }`);
  const el = h('div', {});
  const days = h('input', { type: 'number', name: 'inviteDays', min: '1', max: '365', value: '7', required: true });
  const uses = h('input', { type: 'number', name: 'inviteUses', min: '1', max: '1000', value: '1', required: true });
  const room = h('select', { name: 'inviteRoom' }, h('option', { value: '' }, '(none)'), d.rooms.map((r) => h('option', { value: r.id }, `#${r.name}`)));
  const made = h('div', {});
  const list = h('div', {});
  const draw = (invites) => list.replaceChildren(invites.length ? table(['Room', 'Created by', 'Expires', 'Uses', 'State', ''], invites.map((i) => [
    i.room ? h('bdi', {}, `#${i.room.name}`) : '—', i.createdBy ? h('bdi', {}, i.createdBy.login) : '—',
    new Date(i.expiresAt).toLocaleString(), `${i.uses} / ${i.maxUses}`, i.usable ? 'usable' : 'spent or expired',
    i.usable ? h('button', { type: 'button', class: 'btn danger', 'aria-label': `Revoke the invite created ${new Date(i.createdAt).toLocaleString()}`, onclick: async () => {
      try { await gql('mutation($id: ID!) { revokeInvite(id: $id) }', { id: i.id }); draw((await gql(`{ invites { ${INVITE} } }`)).invites); } catch (x) { toast(explain(x)); }
    } }, 'Revoke') : '']))
    : h('p', { class: 'muted' }, 'No invite links yet.'));
  el.append(actionForm('Create an invite link', [field('Valid for (days)', days), field('Sign-ups', uses), field('Joins the room', room)], 'Create link', async () => {
    const c = (await gql(`mutation($e: Int, $m: Int, $r: ID) { createInvite(expiresInSeconds: $e, maxUses: $m, roomId: $r) { code url invite { ${INVITE} } } }`,
      { e: Math.round(Number(days.value) * 86400), m: Number(uses.value), r: room.value || null })).createInvite;
    const out = h('input', { name: 'inviteUrl', value: c.url, readonly: true });
    made.replaceChildren(h('div', { class: 'card' }, field('The link (shown only now: copy it)', out),
      h('button', { type: 'button', class: 'btn', onclick: () => { out.select(); navigator.clipboard?.writeText(c.url).catch(() => {}); } }, 'Copy')));
    out.select();
    draw((await gql(`{ invites { ${INVITE} } }`)).invites);
    return 'Invite link created.';
  }), made, h('h2', {}, 'Invite links'), list);
  draw(d.invites);
  return el;
}

/** The channels of each group (and the ungrouped ones) in sidebar order, with up/down. */
function roomOrder(d, reload) {
  const sections = [{ id: null, name: 'Ungrouped' }, ...d.roomGroups].map((g) => {
    const rooms = d.rooms.filter((r) => (r.group?.id || null) === g.id).sort((a, b) => (a.position - b.position) || a.name.localeCompare(b.name));
    if (!rooms.length) return null;
    const move = async (i, by) => {
      const ids = rooms.map((r) => r.id);
      [ids[i], ids[i + by]] = [ids[i + by], ids[i]];
      try { await gql('mutation($g: ID, $ids: [ID!]!) { reorderRooms(groupId: $g, roomIds: $ids) { id } }', { g: g.id, ids }); await reload(); refreshRooms(); } catch (x) { toast(explain(x)); }
    };
    return h('section', {}, h('h3', {}, h('bdi', {}, g.name)), h('ol', { class: 'order' }, rooms.map((r, i) => h('li', {}, h('bdi', {}, `#${r.name}`), ' ',
      i > 0 ? h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Move #${r.name} up`, onclick: () => move(i, -1) }, '↑') : null,
      i < rooms.length - 1 ? h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Move #${r.name} down`, onclick: () => move(i, 1) }, '↓') : null))));
  });
  return h('section', { class: 'card', 'aria-label': 'Room order' }, h('h2', {}, 'Room order in the sidebar'), sections);
}

async function groupsTab() {
  const el = h('div', {});
  const reload = async () => {
    const d = await gql(`{ roomGroups { ${GROUPS} } rooms { id name position group { id } } }`);
    state.groups = d.roomGroups;
    const ids = d.roomGroups.map((g) => g.id);
    const move = async (i, by) => {
      const next = [...ids];
      [next[i], next[i + by]] = [next[i + by], next[i]];
      try { await gql(`mutation($ids: [ID!]!) { reorderRoomGroups(ids: $ids) { id } }`, { ids: next }); await reload(); refreshRooms(); } catch (x) { toast(explain(x)); }
    };
    el.replaceChildren(d.roomGroups.length ? table(['Group', 'Order', ''], d.roomGroups.map((g, i) => {
      const name = h('input', { name: `group-${g.id}`, value: g.name, 'aria-label': `Name of the group ${g.name}`, maxlength: '64' });
      return [name, h('span', { class: 'row' },
        i > 0 ? h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Move ${g.name} up`, onclick: () => move(i, -1) }, '↑') : null,
        i < ids.length - 1 ? h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Move ${g.name} down`, onclick: () => move(i, 1) }, '↓') : null),
      h('span', { class: 'row' },
        h('button', { type: 'button', class: 'btn', onclick: async () => {
          try { await gql('mutation($g: ID!, $n: String!) { renameRoomGroup(groupId: $g, name: $n) { id } }', { g: g.id, n: name.value.trim() }); toast('Renamed.'); refreshRooms(); } catch (x) { toast(explain(x)); }
        } }, 'Rename'),
        h('button', { type: 'button', class: 'btn danger', onclick: async () => {
          if (!confirm(`Delete the group ${g.name}? Its rooms become ungrouped.`)) return;
          try { await gql('mutation($g: ID!) { deleteRoomGroup(groupId: $g) }', { g: g.id }); await reload(); refreshRooms(); } catch (x) { toast(explain(x)); }
        } }, 'Delete'))];
    })) : h('p', { class: 'muted' }, 'No room groups yet.'), create, roomOrder(d, reload));
  };
  const newName = h('input', { name: 'groupName', required: true, maxlength: '64' });
  const create = actionForm('Create a group', [field('Name', newName)], 'Create', async () => {
    await gql('mutation($n: String!) { createRoomGroup(name: $n) { id } }', { n: newName.value.trim() });
    newName.value = '';
    await reload();
    refreshRooms();
    return 'Group created.';
  });
  await reload();
  return el;
}
