// A fake Graph API for the browser tests of the Export to Facebook page, like the
// one the API tests use (crates/sift-server/tests/api/facebook_fake.rs): it records
// every request and answers as Facebook does.
//
// - `POST /{version}/{audience}/users` accepts a batch (checking its `access_token`
//   against `tokens` when any are set) and answers `num_received`;
// - `GET /{version}/act_{account}/customaudiences` lists the account's audiences a
//   page at a time (`limit`, `after` cursors, `paging.next` while there are more);
// - `POST /{version}/act_{account}/customaudiences` creates one, which the list shows
//   from then on;
// both take the token from `Authorization: Bearer` and refuse any not in `tokens`
// (code 190). `script` holds answers [status, body] given, first in first out, before
// any of that.

import http from 'node:http';

export const EXPIRED = { message: 'Error validating access token: Session has expired on Monday.', type: 'OAuthException', code: 190 };

export async function startFakeGraph({ account = '1234567890', tokens = [], audiences = [] } = {}) {
  const state = { account, tokens: new Set(tokens), audiences: audiences.map((a) => ({ ...a })), received: [], script: [] };
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://fake');
      let body = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      state.received.push({ method: req.method, path: url.pathname, search: url.search, authorization: req.headers.authorization ?? null, body });
      const send = (status, answer) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(answer));
      };
      if (state.script.length) return send(...state.script.shift());
      if (url.pathname.endsWith('/customaudiences')) {
        const token = (req.headers.authorization || '').replace(/^Bearer /, '');
        if (!state.tokens.has(token)) return send(400, { error: EXPIRED });
        if (!url.pathname.endsWith(`/act_${state.account}/customaudiences`)) {
          return send(400, { error: { message: 'Unsupported get request. Object does not exist', type: 'GraphMethodException', code: 100 } });
        }
        if (req.method === 'POST') {
          const id = String(23860000000000 + state.audiences.length + 1);
          state.audiences.push({
            id, name: body.name, description: body.description, subtype: body.subtype,
            customer_file_source: body.customer_file_source,
            approximate_count_lower_bound: -1, approximate_count_upper_bound: -1,
          });
          return send(200, { id });
        }
        const limit = Number(url.searchParams.get('limit') || 25);
        const start = Number((url.searchParams.get('after') || 'QVFI0').replace('QVFI', ''));
        const end = Math.min(start + limit, state.audiences.length);
        const paging = { cursors: { before: `QVFI${start}`, after: `QVFI${end}` } };
        if (end < state.audiences.length) paging.next = `https://graph.example/next?after=QVFI${end}`;
        return send(200, { data: state.audiences.slice(start, end), paging });
      }
      if (url.pathname.endsWith('/users')) {
        if (state.tokens.size && !state.tokens.has(body && body.access_token)) return send(400, { error: EXPIRED });
        const audience = url.pathname.split('/').at(-2);
        return send(200, { audience_id: audience, session_id: 1, num_received: body.payload.data.length, num_invalid_entries: 0 });
      }
      return send(404, { error: { message: 'Unknown path', type: 'GraphMethodException', code: 803 } });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    state,
    /** The batches the fake accepted or refused, in order. */
    batches: () => state.received.filter((r) => r.path.endsWith('/users')),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
