// Scenario 10: static segments: made in the form, filled through the API, shown with their members.
// Also the empty state of a workspace without segments.

import assert from 'node:assert/strict';
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

T('12 Export CSV downloads the members; Export to Facebook says it is not configured', async ({ page, signIn, call }) => {
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

  await moreMenu(page, 'Export to Facebook');
  await page.waitForURL((u) => u.pathname === `/ui/segments/${seg.id}/facebook`);
  await page.locator('#facebook-status').getByText('not configured').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Export', exact: true }).isDisabled(), true, 'nothing can be sent yet');
  await shot(page, 'facebook not configured');
});
