// idgate's GraphiQL bootstrap, a file of its own so that the page's Content-Security-Policy
// allows no inline script. It runs after the React, ReactDOM and GraphiQL UMD bundles.
(function () {
  'use strict';

  var script = document.currentScript;
  var endpoint = (script && script.dataset.endpoint) || '/graphql';

  // GraphiQL's dialogs and menus lock scrolling by adding a <style> element, which they stamp
  // with this global's value. The page's CSP admits styles carrying the nonce of this response.
  if (script && script.nonce) {
    window.__webpack_nonce__ = script.nonce;
  }

  // Same-origin POST with the GraphQL-over-HTTP media type first. Headers typed into
  // GraphiQL's header editor (an Authorization header, say) override ours; they are not
  // persisted unless the user asks.
  function fetcher(params, options) {
    var headers = Object.assign(
      { 'Content-Type': 'application/json', Accept: 'application/graphql-response+json, application/json' },
      (options && options.headers) || {}
    );
    return fetch(endpoint, {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(params),
      credentials: 'same-origin',
    }).then(function (response) {
      return response.json();
    });
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, { fetcher: fetcher }));
})();
