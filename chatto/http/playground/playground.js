// Starts GraphiQL on Chatto's endpoint (was an inline module script).
//
// Globals from the vendored UMD builds loaded before this file (vendor/VERSIONS):
// React, ReactDOM and GraphiQL (GraphiQL.createFetcher is @graphiql/toolkit's
// createGraphiQLFetcher). Queries and mutations go to /api/graphql over HTTP
// with the browser's session cookie (same origin only); subscriptions use a
// WebSocket (graphql-transport-ws) to the same path, which the server
// authenticates from the upgrade request's cookie. A cookie session's
// mutations need its X-CSRF-Token header and a token-based client sends
// "Authorization: Bearer ..."; both go in GraphiQL's Headers tab (not
// persisted unless the user turns that on in GraphiQL's settings).
(function () {
  "use strict";

  var endpoint = "/api/graphql";
  var wsScheme = window.location.protocol === "https:" ? "wss:" : "ws:";

  function sameOriginFetch(input, init) {
    return window.fetch(input, Object.assign({}, init, { credentials: "same-origin" }));
  }

  var fetcher = window.GraphiQL.createFetcher({
    url: endpoint,
    subscriptionUrl: wsScheme + "//" + window.location.host + endpoint,
    fetch: sameOriginFetch,
  });

  var root = window.ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    window.React.createElement(window.GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
    }),
  );
})();
