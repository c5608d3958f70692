// Scenario 15: anonymous visitors tracked by events, then identified through the API:
// the open segment page splits its size into known and anonymous and follows each merge
// live; the list shows the split; the known contact's page shows the visitor's events.

import assert from 'node:assert/strict';
import { setup, uiTest, shot, eventually, expectDigits } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('identify', env, name, fn);

T('15 identify: anonymous and known counts split on the segment page and the list, live through merges', async ({ page, signIn, call }) => {
  // 12 anonymous visitors and 4 of 8 known customers viewed products.
  const visitors = Array.from({ length: 12 }, (_, i) => `anon_${i}`);
  const known = Array.from({ length: 8 }, (_, i) => `k${i}`);
  await call('POST', '/v1/contacts:batch', { contacts: known.map((id) => ({ id, properties: { email: `${id}@example.com` } })) });
  const events = [
    ...visitors.map((id, i) => ({ id: `ev-${id}`, contact_id: id, type: 'product_view', anonymous: true, properties: { sku: `S${i}` } })),
    ...known.slice(0, 4).map((id) => ({ id: `ev-${id}`, contact_id: id, type: 'product_view', properties: { sku: 'K' } })),
  ];
  await call('POST', '/v1/events', { events });
  const seg = await call('POST', '/v1/segments', { name: 'Product viewers', kind: 'dynamic', condition: 'performed product_view' });

  // The independent model: who viewed products, and who is still anonymous.
  const viewers = new Set([...visitors, ...known.slice(0, 4)]);
  const anonymous = new Set(visitors);
  const expectSplit = async (what) => {
    const total = viewers.size;
    const anon = [...viewers].filter((id) => anonymous.has(id)).length;
    await expectDigits(page.locator('#segment-size'), total, `#segment-size ${what}`);
    await expectDigits(page.locator('#segment-size-known'), total - anon, `#segment-size-known ${what}`);
    await expectDigits(page.locator('#segment-size-anonymous'), anon, `#segment-size-anonymous ${what}`);
  };
  const merge = (from, into) => {
    if (viewers.delete(from)) viewers.add(into);
    anonymous.delete(from);
    anonymous.delete(into);
  };

  await signIn();
  await page.goto(`/ui/segments/${encodeURIComponent(seg.id)}`);
  await page.getByRole('heading', { name: 'Product viewers', exact: true }).waitFor();
  await expectSplit('when the page opens (16 viewers: 4 known, 12 anonymous)');
  await page.evaluate(() => {
    window.__marker = 'still here';
  });
  await page.waitForTimeout(1000); // let the page subscribe to live updates
  await shot(page, 'before-merge');

  // A visitor signs up as a known customer who had not viewed anything: the customer enters
  // and the visitor leaves, both by merge; the size stays, the split moves.
  const first = await call('POST', '/v1/identify', { anonymous_id: 'anon_0', contact_id: 'k5' });
  assert.equal(first.contact.id, 'k5');
  assert.equal(first.contact.anonymous, false);
  merge('anon_0', 'k5');
  await expectSplit('after anon_0 was identified as k5 (live)');
  await eventually(async () => {
    const items = (await page.locator('#changes li[data-seq]').allTextContents()).map((t) => t.replace(/\s+/g, ' '));
    assert.ok(items.some((t) => t.includes('k5') && /entered/.test(t) && /merge/i.test(t)), `#changes should hold "k5 entered (merge)": ${items.slice(0, 4).join(' | ')}`);
    assert.ok(items.some((t) => t.includes('anon_0') && /exited/.test(t) && /merge/i.test(t)), `#changes should hold "anon_0 exited (merge)": ${items.slice(0, 4).join(' | ')}`);
  }, { message: '#changes after the merge' });
  await shot(page, 'after-merge');

  // A visitor who turns out to be a customer already in the segment: one member fewer.
  await call('POST', '/v1/identify', { anonymous_id: 'anon_1', contact_id: 'k0' });
  merge('anon_1', 'k0');
  await expectSplit('after anon_1 was identified as k0, already a member (live)');
  // Identify is idempotent: nothing moves.
  const again = await call('POST', '/v1/identify', { anonymous_id: 'anon_1', contact_id: 'k0' });
  assert.equal(again.merged, false, 'identifying the same pair twice merges nothing');
  assert.equal(await page.evaluate(() => window.__marker), 'still here', 'the page should not have reloaded');

  // The list shows the same split.
  await page.goto('/ui/segments');
  const row = page.locator(`#segments tr[data-segment-id="${seg.id}"]`);
  const anon = [...viewers].filter((id) => anonymous.has(id)).length;
  await expectDigits(row.locator('.size'), viewers.size, 'the list\'s .size');
  await expectDigits(row.locator('.size-known'), viewers.size - anon, 'the list\'s .size-known');
  await expectDigits(row.locator('.size-anonymous'), anon, 'the list\'s .size-anonymous');

  // The customer's page holds the visitor's event, and later events sent to the cookie id land there too.
  await call('POST', '/v1/events', { contact_id: 'anon_0', type: 'page_visit', properties: { path: '/after-signup' } });
  await page.goto('/ui/contacts/k5');
  // k5 has an email and no name: its page is headed by the email.
  await page.getByRole('heading', { level: 1, name: 'k5@example.com', exact: true }).waitFor();
  const recent = page.locator('section', { has: page.getByRole('heading', { name: 'Recent events' }) });
  await eventually(async () => {
    const text = (await recent.textContent()).replace(/\s+/g, ' ');
    assert.match(text, /product_view/, `k5's recent events should hold the visitor's product_view: ${text}`);
    assert.match(text, /page_visit/, `k5's recent events should hold the event sent to anon_0 after the merge: ${text}`);
  }, { message: 'the merged contact\'s recent events' });
  await shot(page, 'merged-contact');
});
