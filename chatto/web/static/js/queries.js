// GraphQL documents of the web client (one place, so API changes land here).

export const USER = 'id login displayName avatarUrl status { text emoji }';
export const MESSAGE = `id roomId authorId author { ${USER} } body createdAt editedAt retracted
  inReplyTo threadRootId echo replyCount cursor
  reactions { shortcode emoji count userIds mine }
  attachments { id name contentType size url }
  mentions mentionsRoom viewerFollowsThread threadUnreadCount`;
export const ROOM = `id name topic kind archived readOnly memberCount isMember unreadCount mentionCount
  position unreadFollowedThreads group { id name position }`;
export const SERVER = 'name description version registration logoUrl presenceEnabled';
export const GROUPS = 'id name position';
export const NOTIFICATION = `id kind roomId actorId threadRootId createdAt seq
  message { id roomId body threadRootId author { ${USER} } }`;

export const BOOT = `query Boot {
  viewer { ${USER} isOwner emails createdAt }
  server { ${SERVER} }
  myRooms { ${ROOM} }
  roomGroups { ${GROUPS} }
  viewerPermissions
  hasUnreadFollowedThreads
}`;

export const LIVE = `subscription Live { myEvents {
  type roomId eventId seq userId reaction added typing presence threadRootId unreadCount mentionCount
  message { ${MESSAGE} } notification { ${NOTIFICATION} } notificationIds
} }`;

export const EVENTS = `query Events($roomId: ID!, $before: String, $after: String, $limit: Int, $thread: ID) {
  room(id: $roomId) { id events(before: $before, after: $after, limit: $limit, threadRootId: $thread) {
    events { ${MESSAGE} } hasOlder hasNewer startCursor endCursor } }
}`;

export const ONE_EVENT = `query One($roomId: ID!, $id: ID!) { room(id: $roomId) { id event(id: $id) { ${MESSAGE} } } }`;

export const MEMBERS = `query Members($roomId: ID!, $search: String, $after: String) {
  room(id: $roomId) { id members(search: $search, first: 50, after: $after) { users { ${USER} } endCursor hasMore } } }`;
export const DIRECTORY = `query Dir($search: String, $after: String) {
  members(search: $search, first: 50, after: $after) { users { ${USER} } endCursor hasMore } }`;

export const ROOM_ONE = `query Room($id: ID!) { room(id: $id) { ${ROOM} } }`;
export const ROOMS = `query Rooms { rooms { ${ROOM} } roomGroups { ${GROUPS} } }`;
export const PRESENCE = `query Presence($ids: [ID!]!) { presence(userIds: $ids) { userId status } }`;
export const USER_BY_LOGIN = `query U($login: String!) { userByLogin(login: $login) { ${USER} } }`;

export const POST = `mutation Post($roomId: ID!, $body: String!, $thread: ID, $reply: ID, $att: [ID!], $cid: String) {
  postMessage(roomId: $roomId, body: $body, threadRootEventId: $thread, inReplyTo: $reply,
    attachmentIds: $att, clientMessageId: $cid) { ${MESSAGE} } }`;
export const EDIT = `mutation Edit($roomId: ID!, $id: ID!, $body: String!) {
  editMessage(roomId: $roomId, eventId: $id, body: $body) { ${MESSAGE} } }`;
export const RETRACT = `mutation Retract($roomId: ID!, $id: ID!) { retractMessage(roomId: $roomId, eventId: $id) }`;
export const REACT = `mutation React($roomId: ID!, $id: ID!, $code: String!, $add: Boolean) {
  react(roomId: $roomId, eventId: $id, shortcode: $code, add: $add) { ${MESSAGE} } }`;
export const UPLOAD = `mutation Up($roomId: ID!, $file: Upload!) {
  uploadAttachment(roomId: $roomId, file: $file) { id name contentType size url } }`;
export const TYPING = `mutation T($roomId: ID!, $typing: Boolean!) { setTyping(roomId: $roomId, typing: $typing) }`;
export const MARK_READ = `mutation M($roomId: ID!, $id: ID!) { markRead(roomId: $roomId, eventId: $id) }`;
export const JOIN = `mutation J($roomId: ID!) { joinRoom(roomId: $roomId) { ${ROOM} } }`;
export const LEAVE = `mutation L($roomId: ID!) { leaveRoom(roomId: $roomId) }`;
export const CREATE_ROOM = `mutation C($name: String!, $topic: String, $groupId: ID) {
  createRoom(name: $name, topic: $topic, groupId: $groupId) { ${ROOM} } }`;
export const START_DM = `mutation D($ids: [ID!]!) { startDM(participantIds: $ids) { ${ROOM} } }`;
