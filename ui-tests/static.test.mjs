// Scenario 10: static segments: made in the form, filled through the API, shown with their members.
// Also the empty state of a workspace without segments.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startFakeGraph } from './fake-graph.mjs';
import { setup, uiTest, shot, expectDigits, makeContacts, loadContacts, rng, saveSegment, moreMenu, kindRadio, contactRowIds } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('static', env, name, fn);

const contacts = makeContacts(0x57a71c, 150, { prefix: 's' });
let loaded = null;
const data = () => (loaded ??= loadContacts(env.call, contacts));

T('10a empty state, then a static segment made in the form starts empty', async ({ page, signIn, call }) => {
  await data();
  await signIn();
  const empty = page.locator('#empty-state');
  await empty.waitFor();
  await shot(page, 'empty state');
  await empty.getByRole('link', { name: 'Create your first segment', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/ui/segments/new');

  await kindRadio(page, 'Static').check();
  const form = page.locator('form#segment-form');
  await form.getByLabel('Name', { exact: true }).fill('VIP gifted');
  await form.getByLabel('Description', { exact: true }).fill('Picked by hand');
  await shot(page, 'static form');
  const id = await saveSegment(page);
  await page.getByRole('heading', { name: 'VIP gifted', exact: true }).waitFor();
  await expectDigits(page.locator('#segment-size'), 0, '#segment-size of a new static segment');
  const seg = await call('GET', `/v1/segments/${encodeURIComponent(id)}`);
  assert.equal(seg.kind, 'static', 'the form made a static segment');
  assert.equal(seg.description, 'Picked by hand');
});

T('10 a static segment gets members through the API; its page shows the size and See contacts lists them', async ({ page, signIn, call }) => {
  await data();
  const seg = await call('POST', '/v1/segments', { name: 'Gift recipients', kind: 'static' });
  const r = rng(10);
  const picked = [...new Set(Array.from({ length: 12 }, () => r.pick(contacts).id))].slice(0, 7);
  assert.equal(picked.length, 7, 'test data: seven distinct contacts');
  const first = picked.slice(0, 5);
  const later = picked.slice(5);
  await call('POST', `/v1/segments/${encodeURIComponent(seg.id)}/contacts`, { contact_ids: first });

  await signIn();
  await page.goto(`/ui/segments/${encodeURIComponent(seg.id)}`);
  await page.getByRole('heading', { name: 'Gift recipients', exact: true }).waitFor();
  await expectDigits(page.locator('#segment-size'), first.length, '#segment-size after adding members');
  await page.waitForTimeout(1000); // let the page subscribe to live updates
  // More members while the page is open: the size follows live.
  await call('POST', `/v1/segments/${encodeURIComponent(seg.id)}/contacts`, { contact_ids: later });
  await expectDigits(page.locator('#segment-size'), picked.length, '#segment-size after adding more members (live)');
  await shot(page, 'static segment');

  await moreMenu(page, 'See contacts');
  await page.waitForURL((u) => u.pathname === `/ui/segments/${seg.id}/contacts`);
  const ids = await contactRowIds(page);
  assert.deepEqual([...ids].sort(), [...picked].sort(), 'See contacts lists exactly the members added');
});

T('12 Export CSV downloads the members; Export to Facebook uploads hashed members to a fake Graph API', async ({ page, signIn, call }) => {
  await data();
  const seg = await call('POST', '/v1/segments', { name: 'Export me', kind: 'static' });
  const members = contacts.slice(0, 4).map((c) => c.id);
  await call('POST', `/v1/segments/${encodeURIComponent(seg.id)}/contacts`, { contact_ids: members });

  await signIn();
  await page.goto(`/ui/segments/${encodeURIComponent(seg.id)}`);
  await page.getByRole('heading', { name: 'Export me', exact: true }).waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), moreMenu(page, 'Export CSV')]);
  const file = await download.path();
  const text = (await import('node:fs')).readFileSync(file, 'utf8');
  const lines = text.trim().split(/\r?\n/);
  assert.ok(text.startsWith(lines[0] + '\r\n'), 'RFC 4180 records end with CRLF');
  assert.ok(lines[0].startsWith('id,'), `the CSV starts with a header row: ${lines[0]}`);
  assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]).sort(), [...members].sort(), 'one row per member');
  const emailColumn = lines[0].split(',').indexOf('email');
  assert.ok(emailColumn > 0, 'the email column is exported by default');
  for (const line of lines.slice(1)) {
    const id = line.split(',')[0];
    const email = contacts.find((c) => c.id === id).properties.email ?? '';
    assert.equal(line.split(',')[emailColumn], email, `the email of ${id}`);
  }

  // A fake Graph API that records each request and answers as Facebook does, with
  // one audience in the ad account.
  const graph = await startFakeGraph({ tokens: ['EAAB-ui-test-token'], audiences: [{ id: '555', name: 'Spring sale' }] });
  const graphUrl = graph.url;
  try {
    await moreMenu(page, 'Export to Facebook');
    await page.waitForURL((u) => u.pathname === `/ui/segments/${seg.id}/facebook`);
    await page.getByRole('heading', { name: 'Export to Facebook', exact: true }).waitFor();
    const account = page.locator('form#facebook-connection-form');
    await account.getByLabel('Ad account id', { exact: true }).fill('act_1234567890');
    await account.getByLabel('Access token', { exact: true }).fill('EAAB-ui-test-token');
    await page.getByText('Advanced', { exact: true }).click();
    await account.getByLabel('Graph URL', { exact: true }).fill(graphUrl);
    await account.getByLabel('Graph API version', { exact: true }).fill('v21.0');
    await account.getByRole('button', { name: 'Save connection', exact: true }).click();
    const form = page.locator('form#facebook-form');
    await form.locator('#facebook-audience option[value="555"]').waitFor({ state: 'attached' });
    await form.getByLabel('Audience', { exact: true }).selectOption('555');
    for (const key of ['Phone', 'First name', 'Last name', 'Country', 'Date of birth']) {
      await form.getByRole('checkbox', { name: key, exact: true }).uncheck();
    }
    await shot(page, 'facebook form');
    await form.getByRole('button', { name: 'Start export', exact: true }).click();
    const status = page.locator('#facebook-status');
    await page.locator('#facebook-status[data-state="done"]').waitFor();
    assert.equal(await account.getByLabel('Access token', { exact: true }).inputValue(), '', 'the token field is cleared');
    const received = graph.batches();

    const sha = (s) => createHash('sha256').update(s, 'utf8').digest('hex');
    const sendable = members.map((id) => contacts.find((c) => c.id === id))
      .filter((c) => c.properties.email && c.properties.newsletter !== false);
    const counts = status.locator('#facebook-counts');
    assert.equal(await counts.getAttribute('data-sent'), String(sendable.length), 'sent counts the members with an email and consent');
    assert.equal(await counts.getAttribute('data-skipped'), String(members.length - sendable.length), 'the others are skipped');
    assert.equal(received.length, 1, 'one batch');
    assert.equal(received[0].method, 'POST');
    assert.equal(received[0].path, '/v21.0/555/users');
    assert.equal(received[0].body.access_token, 'EAAB-ui-test-token');
    assert.deepEqual(received[0].body.payload.schema, ['EMAIL', 'EXTERN_ID']);
    const rows = received[0].body.payload.data.map((r) => r.join(' ')).sort();
    const expected = sendable.map((c) => `${sha(c.properties.email.trim().toLowerCase())} ${c.id}`).sort();
    assert.deepEqual(rows, expected, 'the fake received the SHA-256 of each normalized email and the contact id');
    await status.locator('#facebook-batches tbody tr').first().waitFor();
    const listed = page.locator(`#facebook-jobs tr[data-export-id][data-state="done"]`);
    await listed.waitFor();
    assert.equal(await listed.count(), 1, 'the job just run is listed, without a reload');
    assert.equal(await listed.locator('.sent').textContent(), String(sendable.length));
    await shot(page, 'facebook done');

    const html = await page.content();
    assert.ok(!html.includes('EAAB-ui-test-token'), 'the page never shows the token');
    await page.reload();
    await page.locator(`#facebook-jobs tr[data-state="done"]`).waitFor();
    assert.ok(!(await page.content()).includes('EAAB-ui-test-token'), 'nor does the list of exports');
  } finally {
    await graph.close();
  }
});
