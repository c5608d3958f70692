// Scenarios 2–7: create the spec's first example in the builder, live preview, search,
// edit with entering/leaving, see contacts and open one, explain why a contact is out.
//
// The tests share one segment, created in 2 through the builder; when 2 fails, the
// later ones create the same segment through the API so that they still test their part.

import assert from 'node:assert/strict';
import {
  setup, uiTest, shot, eventually, digits, expectDigits, pathOf,
  makeContacts, loadContacts, isTrue, listContains, dateGte, contactHeading,
  fillRow, builderRows, setRowValue, saveSegment, moreMenu, kindRadio, contactRowIds, chooseOption,
} from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('segments', env, name, fn);

// Two contacts on the date's edge: in (born on the day) and out (the day before).
const contacts = makeContacts(0x5eed2024, 320, {
  extra: [
    { id: 'edge-1965', properties: { newsletter: true, interests: ['shoes'], birth_date: '1965-01-01', email: 'edge65@example.com' } },
    { id: 'edge-1964', properties: { newsletter: true, interests: ['shoes', 'bags'], birth_date: '1964-12-31', email: 'edge64@example.com' } },
  ],
});

/** docs/conditions.md's first example: newsletter = true and interests contains "shoes" and birth_date >= CUTOFF. */
const inShoeSegment = (c, cutoff) => isTrue(c, 'newsletter') && listContains(c, 'interests', 'shoes') && dateGte(c, 'birth_date', cutoff);
const members = (pred) => new Set(contacts.filter(pred).map((c) => c.id));
const shoeMembers = (cutoff) => members((c) => inShoeSegment(c, cutoff));

const NAME = 'Shoe lovers since 1965';
const state = { id: null };

let loaded = null;
const data = () => (loaded ??= loadContacts(env.call, contacts));

/** The segment of scenario 2; created through the API if the builder did not make it. */
async function shoeSegment(t) {
  await data();
  if (!state.id) {
    const seg = await env.call('POST', '/v1/segments', {
      name: NAME,
      kind: 'dynamic',
      condition: 'newsletter = true and interests contains "shoes" and birth_date >= 1965-01-01',
    });
    state.id = seg.id;
    t.diagnostic('scenario 2 did not create the segment; created it through the API');
  }
  // The cutoff it has now (scenario 5 may have changed it).
  const seg = await env.call('GET', `/v1/segments/${encodeURIComponent(state.id)}`);
  const m = seg.condition.match(/birth_date >= (\d{4}-\d{2}-\d{2})/);
  assert.ok(m, `the segment's condition should keep a birth_date >= DATE part: ${seg.condition}`);
  return { id: state.id, cutoff: m[1] };
}

T('2 create the spec\'s first example in the builder; its size shows on its page and in the list', async ({ page, signIn }) => {
  await data();
  const expected = shoeMembers('1965-01-01').size;
  assert.ok(expected > 5, `test data: the segment should have several members (has ${expected})`);

  await signIn();
  await page.getByRole('link', { name: 'Create new segment', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/ui/segments/new');
  const form = page.locator('form#segment-form');
  await form.waitFor();
  await kindRadio(page, 'Dynamic').check();
  await form.getByLabel('Name', { exact: true }).fill(NAME);
  await form.getByLabel('Description', { exact: true }).fill('Subscribers interested in shoes, born 1965 or later');

  await fillRow(page, 0, { field: 'newsletter', op: 'eq', value: true });
  await fillRow(page, 1, { field: 'interests', op: 'contains', value: 'shoes' });
  await fillRow(page, 2, { field: 'birth_date', op: 'gte_date', value: '1965-01-01' });
  assert.equal(await builderRows(page).count(), 3, 'the builder should hold the three rows');
  await expectDigits(page.locator('#preview [data-preview-size]'), expected, 'preview size of the three rows');
  await shot(page, 'builder filled');

  const id = await saveSegment(page);
  state.id = id;
  await page.getByRole('heading', { name: NAME, exact: true }).waitFor();
  await expectDigits(page.locator('#segment-size'), expected, '#segment-size on the segment page');
  await eventually(async () => assert.match(await page.locator('#saved').textContent(), new RegExp(`\\b${expected} entered, 0 exited\\b`)), {
    message: '#saved after creating',
  });
  const definition = (await page.locator('#definition').textContent()).trim();
  assert.match(definition, /shoes/, `#definition should say the condition in words, says ${JSON.stringify(definition)}`);
  await shot(page, 'segment page');

  await page.locator('nav[aria-label="Main"]').getByRole('link', { name: 'Segments', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/ui/segments');
  const row = page.locator(`#segments tr[data-segment-id="${id}"]`);
  await expectDigits(row.locator('.size'), expected, '.size in the segments list');
  assert.equal((await row.locator('.name a').textContent()).trim(), NAME, 'the list shows the name');
  assert.match(await row.locator('.type').textContent(), /dynamic/i, 'the list shows the type');
});

T('3 live preview changes while adding a row, and back when removing it', async ({ page, signIn, call }) => {
  await data();
  const one = members((c) => isTrue(c, 'newsletter'));
  const two = members((c) => isTrue(c, 'newsletter') && listContains(c, 'interests', 'shoes'));
  assert.notEqual(one.size, two.size, 'test data: the second row should change the size');
  const before = (await call('GET', '/v1/segments')).items.length;

  await signIn();
  await page.goto('/ui/segments/new');
  await fillRow(page, 0, { field: 'newsletter', op: 'eq', value: true });
  const size = page.locator('#preview [data-preview-size]');
  await expectDigits(size, one.size, 'preview size with one row (newsletter is true)');
  await shot(page, 'one row');

  await fillRow(page, 1, { field: 'interests', op: 'contains', value: 'shoes' });
  await expectDigits(size, two.size, 'preview size with two rows (… and interests contains shoes)');
  // The sample lists members only.
  await eventually(async () => {
    const sample = await page.locator('#preview-sample li').allTextContents();
    assert.ok(sample.length > 0, '#preview-sample should list some members');
    for (const text of sample) {
      const ids = text.match(/\b(c\d{3}|edge-\d{4})\b/g) ?? [];
      assert.ok(ids.some((x) => two.has(x)), `#preview-sample item ${JSON.stringify(text)} should name a member`);
    }
  }, { message: '#preview-sample' });
  await shot(page, 'two rows');

  await builderRows(page).nth(1).getByRole('button', { name: 'Remove', exact: true }).click();
  await expectDigits(size, one.size, 'preview size after removing the second row');

  await page.getByRole('button', { name: 'Cancel', exact: true }).or(page.getByRole('link', { name: 'Cancel', exact: true })).first().click();
  await eventually(async () => assert.notEqual(pathOf(page), '/ui/segments/new', '"Cancel" should leave the form'));
  assert.equal((await call('GET', '/v1/segments')).items.length, before, 'previewing and cancelling should not create a segment');
});

T('4 search finds it: typing part of the name filters the list', async ({ t, page, signIn, call }) => {
  const { id } = await shoeSegment(t);
  const bag = await call('POST', '/v1/segments', { name: 'Bag lovers', kind: 'dynamic', condition: 'interests contains "bags"' });
  await call('POST', '/v1/segments', { name: 'Newsletter readers', kind: 'dynamic', condition: 'newsletter = true' });
  await call('POST', '/v1/segments', { name: 'Spain', kind: 'dynamic', condition: 'country = "ES"' });
  const all = (await call('GET', '/v1/segments')).items.map((s) => s.id);

  await signIn();
  const visible = () =>
    page.locator('#segments tr[data-segment-id]').evaluateAll((rows) => rows.filter((r) => r.checkVisibility()).map((r) => r.dataset.segmentId).sort());
  await eventually(async () => assert.deepEqual(await visible(), [...all].sort(), 'all segments listed before searching'));

  const search = page.getByLabel('Search segments', { exact: true });
  await search.pressSequentially('lovers', { delay: 40 });
  await eventually(async () => assert.deepEqual(await visible(), [id, bag.id].sort(), 'typing "lovers" should leave the two "… lovers" segments'), {
    message: 'search "lovers"',
  });
  await shot(page, 'lovers');

  await search.fill('');
  await search.pressSequentially('shoe lov', { delay: 40 });
  await eventually(async () => assert.deepEqual(await visible(), [id], `typing "shoe lov" should leave only "${NAME}"`), { message: 'search "shoe lov"' });
  assert.equal((await page.locator(`#segments tr[data-segment-id="${id}"] .name a`).textContent()).trim(), NAME);
});

T('4b sort the list by size, both ways', async ({ t, page, signIn, call }) => {
  const { id, cutoff } = await shoeSegment(t);
  // Every segment's size, computed here from its condition.
  const sizeOf = {
    [NAME]: shoeMembers(cutoff).size,
    'Bag lovers': members((c) => listContains(c, 'interests', 'bags')).size,
    'Newsletter readers': members((c) => isTrue(c, 'newsletter')).size,
    Spain: members((c) => c.properties.country === 'ES').size,
  };
  const items = (await call('GET', '/v1/segments')).items;
  for (const name of Object.keys(sizeOf)) {
    if (!items.some((s) => s.name === name)) {
      const condition = { 'Bag lovers': 'interests contains "bags"', 'Newsletter readers': 'newsletter = true', Spain: 'country = "ES"' }[name];
      await call('POST', '/v1/segments', { name, kind: 'dynamic', condition });
    }
  }
  assert.ok(id);

  await signIn();
  const header = page.locator('#segments th').filter({ has: page.getByRole('button', { name: /^Size\b/ }) });
  const rows = async () =>
    page.locator('#segments tr[data-segment-id]').evaluateAll((trs) =>
      trs.filter((r) => r.checkVisibility()).map((r) => ({ name: r.querySelector('.name a')?.textContent.trim(), size: r.querySelector('.size')?.textContent.trim() })),
    );
  const seen = new Set();
  for (let click = 0; click < 2; click++) {
    await header.getByRole('button').click();
    await eventually(async () => {
      const dir = await header.getAttribute('aria-sort');
      assert.ok(dir === 'ascending' || dir === 'descending', `aria-sort on the Size header should say the direction, is ${dir}`);
      assert.ok(!seen.has(dir), 'a second click should reverse the order');
      const got = await rows();
      assert.deepEqual(
        got.map((r) => [r.name, Number(r.size)]).sort(),
        Object.entries(sizeOf).sort(),
        'the list shows every segment with its size',
      );
      const sizes = got.map((r) => Number(r.size));
      const sorted = [...sizes].sort((a, b) => (dir === 'ascending' ? a - b : b - a));
      assert.deepEqual(sizes, sorted, `rows should be in ${dir} order of size`);
      seen.add(dir);
    }, { message: `sorting by size (click ${click + 1})` });
    await shot(page, `sorted ${[...seen].pop()}`);
  }
});

T('5 edit it: preview shows entering/leaving, save shows "N entered, M exited"', async ({ t, page, signIn }) => {
  const { id, cutoff } = await shoeSegment(t);
  const newCutoff = '1980-01-01';
  const was = shoeMembers(cutoff);
  const will = shoeMembers(newCutoff);
  const entering = [...will].filter((x) => !was.has(x));
  const leaving = [...was].filter((x) => !will.has(x));
  assert.ok(leaving.length > 0, 'test data: the edit should make some contacts leave');

  await signIn();
  await page.goto(`/ui/segments/${encodeURIComponent(id)}`);
  await moreMenu(page, 'Edit');
  await page.waitForURL((u) => u.pathname === `/ui/segments/${id}/edit`);
  await page.locator(`form#segment-form[data-segment-id="${id}"]`).waitFor();

  // The row holding the date of birth.
  const rows = builderRows(page);
  await eventually(async () => assert.equal(await rows.count(), 3, 'the edit form should show the three rows'));
  let dateRow = null;
  for (let i = 0; i < 3; i++) {
    const field = rows.nth(i).getByLabel('Field', { exact: true });
    const chosen = await field.evaluate((el) => `${el.value} ${el.selectedOptions[0]?.label ?? ''}`);
    if (/birth/i.test(chosen)) dateRow = rows.nth(i);
  }
  assert.ok(dateRow, 'one row should have the date of birth field selected');
  const value = dateRow.getByLabel('Value', { exact: true }).first();
  assert.equal(await value.inputValue(), cutoff, 'the date row shows the saved date');
  await setRowValue(dateRow, newCutoff);

  await expectDigits(page.locator('#preview [data-preview-size]'), will.size, 'preview size after the edit');
  await expectDigits(page.locator('#preview [data-preview-entering]'), entering.length, '[data-preview-entering]');
  await expectDigits(page.locator('#preview [data-preview-leaving]'), leaving.length, '[data-preview-leaving]');
  await shot(page, 'edit preview');

  await saveSegment(page);
  assert.equal(pathOf(page), `/ui/segments/${id}`, 'save goes to the segment page');
  await eventually(async () => assert.match(await page.locator('#saved').textContent(), new RegExp(`\\b${entering.length} entered, ${leaving.length} exited\\b`)), {
    message: '#saved after the edit',
  });
  await expectDigits(page.locator('#segment-size'), will.size, '#segment-size after the edit');
  // The recent changes show the exits, newest first, with their cause.
  await eventually(async () => {
    const first = (await page.locator('#changes li[data-seq]').first().textContent()).replace(/\s+/g, ' ');
    assert.match(first, /exited/, `the newest change should be an exit: ${first}`);
    assert.ok(leaving.some((x) => first.includes(x)), `the newest change should name a contact that left: ${first}`);
    assert.match(first, /\(segment_edit\)|segment edit/i, `the newest change should say its cause: ${first}`);
  }, { message: '#changes after the edit' });
});

T('6 see contacts and open one', async ({ t, page, signIn }) => {
  const { id, cutoff } = await shoeSegment(t);
  const expected = shoeMembers(cutoff);

  await signIn();
  await page.goto(`/ui/segments/${encodeURIComponent(id)}`);
  await moreMenu(page, 'See contacts');
  await page.waitForURL((u) => u.pathname === `/ui/segments/${id}/contacts`);
  const ids = await contactRowIds(page);
  assert.ok(ids.length > 0, 'table#contacts should list members');
  assert.equal(new Set(ids).size, ids.length, 'no contact listed twice');
  for (const x of ids) assert.ok(expected.has(x), `${x} is listed but is not a member`);
  const more = await page.getByRole('link', { name: 'Next page', exact: true }).count();
  if (!more) assert.equal(ids.length, expected.size, 'without a "Next page" link the table lists every member');
  await shot(page, 'contacts');

  const pick = ids[Math.min(2, ids.length - 1)];
  await page.locator(`table#contacts tr[data-contact-id="${pick}"] td, table#contacts tr[data-contact-id="${pick}"] th`).first().getByRole('link').click();
  await page.waitForURL((u) => u.pathname === `/ui/contacts/${encodeURIComponent(pick)}`);
  const picked = contacts.find((c) => c.id === pick);
  await page.getByRole('heading', { level: 1, name: contactHeading(pick, picked.properties), exact: true }).waitFor();
  for (const section of ['Properties', 'System data', 'Segments', 'Recent events']) {
    await page.getByRole('heading', { name: section, exact: true }).waitFor();
  }
  // The "Segments" section (not the explain form's select) names the segment the contact is in.
  const segmentsText = await page.getByRole('heading', { name: 'Segments', exact: true }).evaluate((h) => {
    const box = (h.closest('section') ?? h.parentElement).cloneNode(true);
    box.querySelectorAll('select, form').forEach((e) => e.remove());
    return box.textContent;
  });
  assert.ok(segmentsText.includes(NAME), `the contact page's "Segments" section should name "${NAME}": ${segmentsText.replace(/\s+/g, ' ').slice(0, 300)}`);
});

T('7 explain says why a contact is out', async ({ t, page, signIn }) => {
  const { id, cutoff } = await shoeSegment(t);
  const who = 'edge-1964'; // newsletter and shoes, but born 1964-12-31
  assert.ok(!shoeMembers(cutoff).has(who), 'test data: the contact is not a member');

  await signIn();
  await page.goto(`/ui/contacts/${who}`);
  // edge-1964 has an email and no name: its page is headed by the email.
  await page.getByRole('heading', { level: 1, name: 'edge64@example.com', exact: true }).waitFor();
  await chooseOption(page.getByLabel('Segment', { exact: true }), [{ label: NAME }, { value: id }], 'the "Segment" select');
  await page.getByRole('button', { name: 'Explain', exact: true }).click();
  const explain = page.locator('#explain');
  await explain.waitFor();
  await eventually(async () => assert.equal(await explain.getAttribute('data-member'), 'false', '#explain[data-member] for a non-member'));

  // Leaves of the tree: one false (the date), two true.
  const leaves = await explain.locator('li[data-result]').evaluateAll((lis) =>
    lis.filter((li) => !li.querySelector('li[data-result]')).map((li) => ({ result: li.dataset.result, text: li.textContent.replace(/\s+/g, ' ').trim() })),
  );
  await shot(page, 'explain');
  const failing = leaves.filter((l) => l.result === 'false');
  assert.equal(failing.length, 1, `one condition should fail: ${JSON.stringify(leaves)}`);
  assert.match(failing[0].text, /birth_date|date of birth/i, `the failing item should name the date of birth: ${failing[0].text}`);
  assert.match(failing[0].text, new RegExp(cutoff), `the failing item should show the condition's date: ${failing[0].text}`);
  assert.match(failing[0].text, /1964-12-31/, `the failing item should show the contact's value: ${failing[0].text}`);
  const passing = leaves.filter((l) => l.result === 'true').map((l) => l.text);
  assert.equal(passing.length, 2, `the two other conditions hold: ${JSON.stringify(leaves)}`);
  assert.ok(passing.some((x) => /newsletter/i.test(x)) && passing.some((x) => /shoes/.test(x)), `the holding items name newsletter and shoes: ${JSON.stringify(passing)}`);
});
