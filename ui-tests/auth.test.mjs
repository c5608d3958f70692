// Scenario 1: signing in (printed URL, pasted key), the session cookie, being kept out, signing out.

import assert from 'node:assert/strict';
import { setup, uiTest, pathOf, shot, eventually } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('auth', env, name, fn);

T('1a sign in through the printed URL: lands on /ui/segments, token leaves the address bar, HttpOnly cookie', async ({ page, context, server }) => {
  const res = await page.goto(server.loginUrl);
  assert.equal(pathOf(page), '/ui/segments', `after the login URL the browser should be on /ui/segments, is on ${page.url()}`);
  assert.ok(!page.url().includes('token'), `the token should leave the address bar, URL is ${page.url()}`);
  assert.ok(!page.url().includes(server.token), 'the token should not be in the URL');
  await page.getByRole('heading', { name: 'Segments', exact: true }).waitFor();

  // The login answer is a redirect (303) that keeps the token out of referrers.
  const login = res.request().redirectedFrom();
  assert.ok(login, 'GET /ui/login?token=... should answer with a redirect');
  const loginRes = await login.response();
  assert.equal(loginRes.status(), 303, 'GET /ui/login?token=... should answer 303');
  assert.equal((await loginRes.allHeaders())['referrer-policy'], 'no-referrer', 'the login answer should carry Referrer-Policy: no-referrer');

  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'sift_session');
  assert.ok(session, `a cookie named sift_session should be set; cookies: ${cookies.map((c) => c.name).join(', ') || 'none'}`);
  assert.equal(session.httpOnly, true, 'sift_session should be HttpOnly');
  assert.equal(session.sameSite, 'Strict', 'sift_session should be SameSite=Strict');
  assert.equal(session.path, '/', 'sift_session should have Path=/');
  assert.ok(!(await page.evaluate(() => document.cookie)).includes('sift_session'), 'scripts should not see sift_session');

  // The header of a signed-in page.
  const nav = page.locator('nav[aria-label="Main"]');
  for (const name of ['Segments', 'All contacts', 'Fields']) {
    await nav.getByRole('link', { name, exact: true }).waitFor();
  }
  await page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();

  // The JSON API takes the cookie; a change by cookie needs the Sift-UI header.
  const fromPage = await page.evaluate(async () => {
    const list = await fetch('/v1/segments');
    const body = JSON.stringify({ properties: { first_name: 'Csrf' } });
    const bare = await fetch('/v1/contacts/csrf-test', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body });
    const marked = await fetch('/v1/contacts/csrf-test-ok', { method: 'PUT', headers: { 'Content-Type': 'application/json', 'Sift-UI': '1' }, body });
    return { list: list.status, bare: bare.status, marked: marked.status };
  });
  assert.equal(fromPage.list, 200, 'GET /v1/segments with the session cookie should answer 200');
  assert.ok(fromPage.bare >= 400 && fromPage.bare < 500, `a PUT by cookie without "Sift-UI: 1" should be refused, got ${fromPage.bare}`);
  assert.ok(fromPage.marked >= 200 && fromPage.marked < 300, `a PUT by cookie with "Sift-UI: 1" should succeed, got ${fromPage.marked}`);
  const refused = await env.call.raw('GET', '/v1/contacts/csrf-test');
  assert.equal(refused.status, 404, 'the refused PUT should not have created its contact');
});

T('1b without a session: /ui/segments redirects to /ui/login, data answers 401 or a redirect', async ({ page, context, server }) => {
  await page.goto('/ui/segments');
  assert.equal(pathOf(page), '/ui/login', `an unauthenticated visit to /ui/segments should end on /ui/login, is on ${page.url()}`);
  await shot(page, 'login form');

  for (const p of ['/ui/segments', '/ui/segments/new', '/ui/contacts', '/ui/fields']) {
    const res = await context.request.get(p, { maxRedirects: 0 });
    assert.ok([302, 303, 307].includes(res.status()), `GET ${p} without a session should redirect, got ${res.status()}`);
    assert.match(res.headers().location ?? '', /\/ui\/login/, `GET ${p} without a session should redirect to /ui/login`);
  }
  for (const p of ['/v1/segments', '/v1/contacts', '/ui/live/sizes']) {
    const res = await context.request.get(p, { maxRedirects: 0, timeout: 5_000 });
    assert.ok(res.status() === 401 || [302, 303, 307].includes(res.status()), `GET ${p} without a session should answer 401 or a redirect, got ${res.status()}`);
    if (res.status() !== 401) assert.match(res.headers().location ?? '', /\/ui\/login/);
    assert.ok(!(await res.text()).includes('"items"'), `GET ${p} without a session should not answer data`);
  }
  await page.goto(`/ui/login?token=not-the-token`);
  assert.notEqual(pathOf(page), '/ui/segments', 'a wrong token should not sign in');
  assert.equal((await context.cookies()).find((c) => c.name === 'sift_session'), undefined, 'a wrong token should not make a session');
  assert.ok(server.token, 'the printed URL carries a token');
});

T('1c paste-key form signs in; a wrong key does not', async ({ page, context, server }) => {
  await page.goto('/ui/login');
  await page.getByLabel('Workspace key', { exact: true }).fill('sk_wrong_key_0000');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForLoadState();
  await shot(page, 'wrong key');
  assert.equal(pathOf(page), '/ui/login', `a wrong key should keep the browser on /ui/login, is on ${page.url()}`);
  assert.equal((await context.cookies()).find((c) => c.name === 'sift_session'), undefined, 'a wrong key should not make a session');

  await page.getByLabel('Workspace key', { exact: true }).fill(server.key);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/ui/segments');
  await page.getByRole('heading', { name: 'Segments', exact: true }).waitFor();
  const session = (await context.cookies()).find((c) => c.name === 'sift_session');
  assert.ok(session?.httpOnly, 'the key sign-in should set an HttpOnly sift_session cookie');
  assert.ok(!page.url().includes(server.key), 'the key should not appear in the URL');
});

T('1d "Sign out" ends the session; the printed URL signs in again', async ({ page, context, signIn, server }) => {
  await signIn();
  const old = (await context.cookies()).find((c) => c.name === 'sift_session');
  assert.ok(old, 'signed in: sift_session is set');
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await eventually(async () => assert.equal(pathOf(page), '/ui/login', `after "Sign out" the browser should be on /ui/login, is on ${page.url()}`));
  await shot(page, 'signed out');
  await page.goto('/ui/segments');
  assert.equal(pathOf(page), '/ui/login', 'after signing out /ui/segments should redirect to /ui/login');
  // The server forgets the session: the old cookie, replayed by hand, no longer works.
  const replay = await fetch(new URL('/v1/segments', server.base), { headers: { Cookie: `sift_session=${old.value}` } });
  assert.equal(replay.status, 401, 'after "Sign out" the API should refuse the old session cookie');
  const replayPage = await fetch(new URL('/ui/segments', server.base), { headers: { Cookie: `sift_session=${old.value}` }, redirect: 'manual' });
  assert.ok([302, 303, 307].includes(replayPage.status), `after "Sign out" /ui/segments with the old cookie should redirect, got ${replayPage.status}`);

  // The printed URL may be used any number of times while the server runs.
  await signIn();
  await page.getByRole('heading', { name: 'Segments', exact: true }).waitFor();
});
