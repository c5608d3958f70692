// Issue 17 items 4 and 5 in the browser: a segment's size over time as a chart on its page
// (points, hover values, ranges) and its history page (who changed what, a word diff, restore).
// Expected values come from the test's own contacts and conditions, not from the server.

import assert from 'node:assert/strict';
import { setup, uiTest, shot, expectDigits, makeContacts, loadContacts, eq, has, moreMenu, eventually } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('history', env, name, fn);

const contacts = makeContacts(0x4157, 120, { prefix: 'h' });
let loaded = null;
const data = () => (loaded ??= loadContacts(env.call, contacts));
const count = (pred) => contacts.filter(pred).length;
const ES = (c) => eq(c, 'country', 'ES');
const ESorFR = (c) => eq(c, 'country', 'ES') || eq(c, 'country', 'FR');
const FR = (c) => eq(c, 'country', 'FR');
const n = (x) => x.toLocaleString('en-US');

T('17.5 the segment page charts its size over time; hover shows the values; ranges redraw it', async ({ page, signIn, call }) => {
  await data();
  const seg = await call('POST', '/v1/segments', { name: 'Iberia', kind: 'dynamic', condition: 'country = "ES"' });
  // Widen, then narrow: every step's entries and exits land in the current hour and day.
  await call('PATCH', `/v1/segments/${seg.id}`, { condition: 'country in ["ES", "FR"]' });
  await call('PATCH', `/v1/segments/${seg.id}`, { condition: 'country = "FR"' });
  const entered = count(ES) + count(FR) + 0; // created with ES; widening adds FR; narrowing adds none
  const exited = count(ES); // narrowing to FR removes every ES contact
  assert.ok(count(ES) > 5 && count(FR) > 5, 'test data: both countries are present');

  await signIn();
  await page.goto(`/ui/segments/${encodeURIComponent(seg.id)}`);
  const chart = page.locator('#size-chart');
  const points = chart.locator('svg rect.hit');
  await eventually(async () => assert.equal(await points.count(), 30), { message: '30 daily points by default' });
  assert.equal(await page.getByRole('button', { name: '30 days' }).getAttribute('aria-pressed'), 'true');
  const last = points.nth(29);
  assert.equal(Number(await last.getAttribute('data-size')), count(FR), 'the last point is the size now');
  assert.equal(Number(await last.getAttribute('data-entered')), entered, 'entries of today');
  assert.equal(Number(await last.getAttribute('data-exited')), exited, 'exits of today');
  assert.equal(Number(await points.nth(0).getAttribute('data-size')), 0, 'the segment did not exist 29 days ago');
  await expectDigits(page.locator('#segment-size'), count(FR), '#segment-size');

  await last.hover();
  const tip = page.locator('#chart-tip');
  await eventually(async () => {
    const text = await tip.textContent();
    assert.match(text, new RegExp(`${n(count(FR))} contacts, ${n(entered)} entered, ${n(exited)} exited`));
  }, { message: 'hovering the last point shows its values' });
  await shot(page, 'size chart 30 days');

  await page.getByRole('button', { name: '24 hours' }).click();
  await eventually(async () => assert.equal(await points.count(), 24), { message: '24 hourly points' });
  assert.equal(Number(await points.nth(23).getAttribute('data-size')), count(FR));
  // Summed over the day, entries minus exits is the size now (the segment is younger than a day).
  const moves = await points.evaluateAll((rects) => rects.reduce((s, r) => s + Number(r.dataset.entered) - Number(r.dataset.exited), 0));
  assert.equal(moves, count(FR));
  // The keyboard reaches the points too.
  await points.nth(23).focus();
  await eventually(async () => assert.match(await tip.textContent(), /UTC: /));
  await shot(page, 'size chart 24 hours');
});

T('17.4 the history page lists each revision with its author and a word diff, and restores one', async ({ page, signIn, call }) => {
  await data();
  const seg = await call('POST', '/v1/segments', { name: 'Spain', kind: 'dynamic', description: 'ES only', condition: 'country = "ES"' });
  await call('PATCH', `/v1/segments/${seg.id}`, { name: 'Spain and France', condition: 'country in ["ES", "FR"]' });
  await signIn();
  await page.goto(`/ui/segments/${encodeURIComponent(seg.id)}`);
  await moreMenu(page, 'History');
  await page.waitForURL((u) => u.pathname === `/ui/segments/${seg.id}/history`);
  const items = page.locator('#revisions > li');
  assert.equal(await items.count(), 2);
  const newest = items.nth(0);
  await newest.getByRole('heading', { name: 'Revision 2' }).waitFor();
  const keyId = env.server.key.slice(0, 11);
  assert.match(await newest.textContent(), new RegExp(`key ${keyId} through the API`));
  assert.match(await newest.textContent(), /Renamed from “Spain” to “Spain and France”/);
  assert.match(await newest.textContent(), new RegExp(`${n(count(FR))} entered · 0 exited`));
  const removed = await newest.locator('.diff del').allTextContents();
  const added = await newest.locator('.diff ins').allTextContents();
  assert.deepEqual(removed, ['=', '"ES"'], 'the diff removes the old comparison');
  assert.deepEqual(added, ['in', '["ES",', '"FR"]'], 'the diff adds the list');
  assert.match(await newest.textContent(), /The current version/);
  assert.equal(await newest.getByRole('button', { name: /Restore/ }).count(), 0, 'the current version has nothing to restore');
  await shot(page, 'history');

  // Restore revision 1: a confirmation, then the segment page says so.
  page.once('dialog', (d) => d.accept());
  await items.nth(1).getByRole('button', { name: 'Restore revision 1' }).click();
  await page.waitForURL((u) => u.pathname === `/ui/segments/${seg.id}`);
  await page.getByText('Revision 1 restored.').waitFor();
  await page.getByRole('heading', { name: 'Spain', exact: true }).waitFor();
  await expectDigits(page.locator('#segment-size'), count(ES), '#segment-size after the restore');
  const revisions = await call('GET', `/v1/segments/${seg.id}/revisions`);
  assert.equal(revisions.items.length, 3);
  assert.equal(revisions.items[0].condition, 'country = "ES"');
  assert.equal(revisions.items[0].by.via, 'ui', 'made through the web UI');
  assert.equal(revisions.items[0].exited, count(FR));
  await shot(page, 'restored');

  // Back on the history page, revision 3 is the current one, made through the web UI.
  await moreMenu(page, 'History');
  await page.getByRole('heading', { name: 'Revision 3' }).waitFor();
  assert.match(await items.nth(0).textContent(), /through the web UI/);
});
