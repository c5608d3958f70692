// Scenario 8: a contact update through the API shows up in the open segment page without reload.

import assert from 'node:assert/strict';
import { setup, uiTest, shot, eventually, expectDigits, makeContacts, loadContacts, isTrue, eq } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('live', env, name, fn);

const contacts = makeContacts(0xa11ce, 250, { prefix: 'l' });
const inSegment = (c) => eq(c, 'country', 'ES') && isTrue(c, 'newsletter');

T('8 an API update shows in the open segment page: size and recent changes, without reload', async ({ page, signIn, call }) => {
  await loadContacts(call, contacts);
  const seg = await call('POST', '/v1/segments', { name: 'Spanish subscribers', kind: 'dynamic', condition: 'country = "ES" and newsletter = true' });
  const size = contacts.filter(inSegment).length;
  const mover = contacts.find((c) => eq(c, 'country', 'FR'));
  assert.ok(size > 0 && mover, 'test data: a non-empty segment and a contact from France');

  await signIn();
  await page.goto(`/ui/segments/${encodeURIComponent(seg.id)}`);
  await page.getByRole('heading', { name: 'Spanish subscribers', exact: true }).waitFor();
  await expectDigits(page.locator('#segment-size'), size, '#segment-size when the page opens');
  let navigations = 0;
  page.on('framenavigated', (f) => f === page.mainFrame() && navigations++);
  await page.evaluate(() => {
    window.__marker = 'still here';
  });
  const url = page.url();
  await page.waitForTimeout(1000); // let the page subscribe to live updates
  await shot(page, 'before');

  await call('PUT', `/v1/contacts/${mover.id}`, { properties: { country: 'ES', newsletter: true } });
  await expectDigits(page.locator('#segment-size'), size + 1, '#segment-size after the contact entered (live)');
  await eventually(async () => {
    const first = (await page.locator('#changes li[data-seq]').first().textContent()).replace(/\s+/g, ' ');
    assert.ok(first.includes(mover.id) && /entered/.test(first), `the newest item of #changes should say "${mover.id} entered": ${first}`);
    assert.match(first, /contact_update|contact update/i, `the item should say the cause: ${first}`);
  }, { message: '#changes after the contact entered' });
  await shot(page, 'entered');

  await call('PUT', `/v1/contacts/${mover.id}`, { properties: { newsletter: false } });
  await expectDigits(page.locator('#segment-size'), size, '#segment-size after the contact exited (live)');
  await eventually(async () => {
    const first = (await page.locator('#changes li[data-seq]').first().textContent()).replace(/\s+/g, ' ');
    assert.ok(first.includes(mover.id) && /exited/.test(first), `the newest item of #changes should say "${mover.id} exited": ${first}`);
  }, { message: '#changes after the contact exited' });

  assert.equal(await page.evaluate(() => window.__marker), 'still here', 'the page should not have reloaded');
  assert.equal(navigations, 0, 'the page should not have navigated');
  assert.equal(page.url(), url);
});

T('8b the segments list updates sizes live too', async ({ page, signIn, call }) => {
  const seg = (await call('GET', '/v1/segments')).items.find((s) => s.name === 'Spanish subscribers')
    ?? (await call('POST', '/v1/segments', { name: 'Spanish subscribers', kind: 'dynamic', condition: 'country = "ES" and newsletter = true' }));
  // Whatever test 8 left, the contact that moved is out again: the size is the generated one.
  const mover = contacts.find((c) => eq(c, 'country', 'FR'));
  await call('PUT', `/v1/contacts/${mover.id}`, { properties: { newsletter: false } });
  const now = contacts.filter(inSegment).length;
  await signIn();
  const cell = page.locator(`#segments tr[data-segment-id="${seg.id}"] .size`);
  await expectDigits(cell, now, '.size when the list opens');
  await page.evaluate(() => {
    window.__marker = 'still here';
  });
  await page.waitForTimeout(1000);
  await call('PUT', '/v1/contacts/live-newcomer', { properties: { country: 'ES', newsletter: true } });
  await expectDigits(cell, now + 1, '.size after a contact entered (live)');
  assert.equal(await page.evaluate(() => window.__marker), 'still here', 'the list should not have reloaded');
});
