// Scenario 19: static segments filled by hand. On the segment page, "Add contacts" takes
// pasted ids or emails, or a CSV file (its column chosen), previews what matches and adds
// it on "Apply"; on its contacts page, checked members are removed after a confirmation.
// Expected matches are computed here from the contacts this file loads.

import assert from 'node:assert/strict';
import { setup, uiTest, shot, eventually, expectDigits, makeContacts, loadContacts, contactRowIds } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('static_by_hand', env, name, fn);

const contacts = makeContacts(0x4a4d, 80, { prefix: 'h' });
let loaded = null;
const data = () => (loaded ??= loadContacts(env.call, contacts));
const withEmail = contacts.filter((c) => c.properties.email);
const withoutEmail = contacts.filter((c) => !c.properties.email);
const fmt = (n) => n.toLocaleString('en-US');
const plural = (n, one, many) => `${fmt(n)} ${n === 1 ? one : many}`;

async function members(call, id) {
  const out = [];
  let cursor = null;
  do {
    const page = await call('GET', `/v1/segments/${id}/contacts?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...page.items.map((c) => c.id));
    cursor = page.next_cursor;
  } while (cursor);
  return out.sort();
}

const card = (page) => page.locator('section#add-contacts');
const preview = (page) => page.locator('#add-preview');
const data_ = async (page, name) => Number(await preview(page).getAttribute(`data-${name}`));

T('19a paste ids and emails, preview matched and unknown, apply', async ({ page, signIn, call }) => {
  await data();
  assert.ok(withoutEmail.length >= 1 && withEmail.length >= 6, 'test data: contacts with and without email');
  const seg = await call('POST', '/v1/segments', { name: 'Hand picked', kind: 'static' });
  const already = withEmail[0];
  await call('POST', `/v1/segments/${seg.id}/contacts`, { contact_ids: [already.id] });

  const byId = [withoutEmail[0], withEmail[1], already];
  const byEmail = [withEmail[2], withEmail[3]];
  const unknown = ['nobody@example.com', 'h999x'];
  // Emails in capitals, separators mixed, a repeat and blank lines.
  const pasted = [
    `${byId[0].id}, ${byId[1].id}`,
    '',
    byEmail[0].properties.email.toUpperCase(),
    `${byEmail[1].properties.email}; ${unknown[0]}`,
    unknown[1],
    byId[0].id,
    already.id,
  ].join('\n');
  const matched = new Set([...byId, ...byEmail].map((c) => c.id));
  const fresh = [...matched].filter((id) => id !== already.id);

  await signIn();
  await page.goto(`/ui/segments/${seg.id}`);
  const c = card(page);
  await c.getByRole('heading', { name: 'Add contacts', exact: true }).waitFor();
  await c.getByLabel('Contact ids or emails', { exact: true }).fill(pasted);
  await c.getByRole('button', { name: 'Preview', exact: true }).click();
  await preview(page).waitFor();
  assert.equal(await data_(page, 'values'), byId.length + byEmail.length + unknown.length, 'distinct values read');
  assert.equal(await data_(page, 'contacts'), matched.size);
  assert.equal(await data_(page, 'unknown'), unknown.length);
  assert.equal(await data_(page, 'already'), 1);
  assert.equal(await data_(page, 'new'), fresh.length);
  const listed = await page.locator('#add-unknown li').allTextContents();
  assert.deepEqual(listed, unknown, 'the unknown values, in the order pasted');
  assert.match(await page.locator('#add-summary').textContent(), new RegExp(`${matched.size} contacts found · 1 already in the segment · 2 not found · 1 repeat left out`));
  await shot(page, 'preview');
  assert.deepEqual(await members(call, seg.id), [already.id], 'a preview adds nothing');

  await c.getByRole('button', { name: `Add ${plural(fresh.length, 'contact', 'contacts')}`, exact: true }).click();
  await page.locator('#members-notice').waitFor();
  assert.equal((await page.locator('#members-notice').textContent()).trim(), `${plural(fresh.length, 'contact', 'contacts')} added.`);
  await expectDigits(page.locator('#segment-size'), matched.size, '#segment-size after the hand add');
  assert.deepEqual(await members(call, seg.id), [...matched].sort());
  await shot(page, 'applied');
});

T('19b a CSV file: the email column is found, another can be chosen, then applied', async ({ page, signIn, call }) => {
  await data();
  const seg = await call('POST', '/v1/segments', { name: 'From a file', kind: 'static' });
  const picked = withEmail.slice(10, 14);
  // Names with commas and quotes, as a spreadsheet writes them.
  const lines = ['"Full name",Email'];
  for (const c of picked) lines.push(`"${c.id}, ""the buyer""",${c.properties.email}`);
  lines.push('"Nobody, really",ghost@example.com');
  const csv = lines.join('\r\n') + '\r\n';

  await signIn();
  await page.goto(`/ui/segments/${seg.id}`);
  const c = card(page);
  await c.getByLabel('Or a CSV file', { exact: true }).setInputFiles({ name: 'list.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await preview(page).waitFor();
  const column = c.getByLabel('Column', { exact: true });
  assert.equal(await column.inputValue(), '2', 'the Email column is chosen');
  assert.deepEqual(await column.locator('option').allTextContents(), ['Full name', 'Email']);
  assert.equal(await c.getByLabel('First row is a header', { exact: true }).isChecked(), true);
  await eventually(async () => assert.equal(await data_(page, 'contacts'), picked.length));
  assert.deepEqual(await page.locator('#add-unknown li').allTextContents(), ['ghost@example.com']);
  await shot(page, 'csv preview');

  // The name column matches no one: nothing to add.
  await column.selectOption({ label: 'Full name' });
  await eventually(async () => assert.equal(await data_(page, 'contacts'), 0));
  const names = await page.locator('#add-unknown li').allTextContents();
  assert.deepEqual(names, [...picked.map((p) => `${p.id}, "the buyer"`), 'Nobody, really'], 'quoted cells read whole');
  const nothing = c.getByRole('button', { name: 'Nothing to add', exact: true });
  assert.equal(await nothing.isDisabled(), true);

  await column.selectOption({ label: 'Email' });
  await eventually(async () => assert.equal(await data_(page, 'contacts'), picked.length));
  await c.getByRole('button', { name: `Add ${picked.length} contacts`, exact: true }).click();
  await page.locator('#members-notice').waitFor();
  assert.deepEqual(await members(call, seg.id), picked.map((p) => p.id).sort());

  // A file over the size bound is refused before it is read.
  await page.goto(`/ui/segments/${seg.id}`);
  await card(page).getByLabel('Or a CSV file', { exact: true }).setInputFiles({ name: 'big.csv', mimeType: 'text/csv', buffer: Buffer.alloc(5 * 1024 * 1024 + 1, 'a') });
  await eventually(async () => assert.match(await page.locator('#add-error').textContent(), /up to 5 MB/));
  assert.equal(await preview(page).isHidden(), true);
});

T('19c checked members are removed after a confirmation', async ({ page, signIn, call }) => {
  await data();
  const seg = await call('POST', '/v1/segments', { name: 'Trim me', kind: 'static' });
  const in_ = contacts.slice(20, 26).map((c) => c.id);
  await call('POST', `/v1/segments/${seg.id}/contacts`, { contact_ids: in_ });
  const out = [in_[1], in_[4]];
  const kept = in_.filter((id) => !out.includes(id));

  await signIn();
  await page.goto(`/ui/segments/${seg.id}/contacts`);
  assert.deepEqual((await contactRowIds(page)).sort(), [...in_].sort());
  const remove = page.getByRole('button', { name: 'Remove from segment', exact: true });
  assert.equal(await remove.isDisabled(), true, 'nothing checked yet');
  for (const id of out) await page.getByRole('checkbox', { name: `Select ${id}`, exact: true }).check();
  assert.equal((await page.locator('#selected-count').textContent()).trim(), '2 selected');

  let asked = '';
  page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
  await remove.click();
  await eventually(() => assert.equal(asked, 'Remove 2 contacts from “Trim me”? They stay in Sift; only their membership ends.'));
  assert.deepEqual(await members(call, seg.id), [...in_].sort(), 'dismissed: nothing removed');

  page.once('dialog', (d) => d.accept());
  await remove.click();
  await page.locator('#members-notice').waitFor();
  assert.equal((await page.locator('#members-notice').textContent()).trim(), '2 contacts removed.');
  assert.deepEqual((await contactRowIds(page)).sort(), [...kept].sort());
  assert.deepEqual(await members(call, seg.id), [...kept].sort());
  await shot(page, 'removed');

  // "Select every contact on this page" checks them all.
  await page.getByRole('checkbox', { name: 'Select every contact on this page', exact: true }).check();
  assert.equal((await page.locator('#selected-count').textContent()).trim(), `${kept.length} selected`);
});

T('19d a dynamic segment has no hand add and no remove boxes', async ({ page, signIn, call }) => {
  await data();
  const seg = await call('POST', '/v1/segments', { name: 'Spain by rule', kind: 'dynamic', condition: 'country = "ES"' });
  await signIn();
  await page.goto(`/ui/segments/${seg.id}`);
  await page.getByRole('heading', { name: 'Spain by rule', exact: true }).waitFor();
  assert.equal(await page.locator('section#add-contacts').count(), 0);
  await page.goto(`/ui/segments/${seg.id}/contacts`);
  await page.locator('table#contacts').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Remove from segment' }).count(), 0);
  assert.equal(await page.locator('table#contacts input[type="checkbox"]').count(), 0);
});
