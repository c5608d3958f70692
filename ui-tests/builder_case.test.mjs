// Scenarios 18–19: a builder row that ignores case ("Ignore case"), saved, reopened
// and shown in the text view; and the preview's warning on a reversed "between",
// which still saves.
//
// Expected members are computed here from the contacts this file loads, never asked
// of the server's preview.

import assert from 'node:assert/strict';
import {
  setup, uiTest, shot, eventually, expectDigits, pathOf, rng,
  fillRow, ensureRow, builderRows, saveSegment, chooseOption, kindRadio, FIELD, UI_TIMEOUT,
} from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('builder_case', env, name, fn);

// A tier spelled every which way, some missing; orders a number.
const SPELLINGS = ['Gold', 'GOLD', 'gold', 'gOLD', 'silver', 'Silver', 'golden'];
const contacts = (() => {
  const r = rng(0xca5e);
  const out = [];
  for (let i = 0; i < 120; i++) {
    const properties = {};
    if (r.chance(0.85)) properties.tier = r.pick(SPELLINGS);
    if (r.chance(0.9)) properties.orders = r.int(0, 20);
    out.push({ id: `k${String(i).padStart(3, '0')}`, properties });
  }
  return out;
})();

const idsWhere = (pred) => contacts.filter(pred).map((c) => c.id).sort();
// docs/conditions.md: ignoring case compares the Unicode lowercase of both sides.
const goldAnyCase = idsWhere((c) => typeof c.properties.tier === 'string' && c.properties.tier.toLowerCase() === 'gold');
const goldExact = idsWhere((c) => c.properties.tier === 'gold');

let loaded = null;
const data = () => (loaded ??= env.call('POST', '/v1/contacts:batch', { contacts }));

async function memberIds(call, id) {
  const out = [];
  let cursor = null;
  do {
    const page = await call('GET', `/v1/segments/${encodeURIComponent(id)}/contacts?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.items.map((c) => c.id));
    cursor = page.next_cursor;
  } while (cursor);
  return out.sort();
}

T('18 "Ignore case" on a row: the preview counts every spelling, the saved segment keeps it, editing shows it checked', async ({ page, signIn, call }) => {
  await data();
  assert.ok(goldAnyCase.length > goldExact.length && goldExact.length > 0, 'test data: several spellings of gold');

  await signIn();
  await page.goto('/ui/segments/new');
  const form = page.locator('form#segment-form');
  await form.waitFor();
  await kindRadio(page, 'Dynamic').check();
  await form.getByLabel('Name', { exact: true }).fill('Gold, any case');

  const row = await fillRow(page, 0, { field: 'tier', op: 'eq', value: 'gold' });
  const size = page.locator('#preview [data-preview-size]');
  await expectDigits(size, goldExact.length, 'preview of tier = "gold" (case as typed)');

  const caseBox = row.getByRole('checkbox', { name: 'Ignore case', exact: true });
  await caseBox.waitFor({ state: 'visible', timeout: UI_TIMEOUT });
  assert.equal(await caseBox.isChecked(), false, '"Ignore case" starts unchecked');
  await caseBox.check();
  await expectDigits(size, goldAnyCase.length, 'preview of tier = "gold" ignoring case');
  await shot(page, 'ignore case checked');

  // Only the string operators offer it.
  const op = row.getByLabel('Operator', { exact: true });
  await chooseOption(op, [{ value: 'is_set' }], 'Operator "is set"');
  await eventually(async () => assert.equal(await caseBox.isVisible(), false, '"Ignore case" is hidden for "is set"'));
  await chooseOption(op, [{ value: 'eq' }], 'Operator "equal to"');
  await row.getByLabel('Value', { exact: true }).first().fill('gold');
  await eventually(async () => assert.equal(await caseBox.isVisible(), true, '"Ignore case" is back for "equal to"'));
  assert.equal(await caseBox.isChecked(), true, 'the box keeps its state across operator changes');
  await expectDigits(size, goldAnyCase.length, 'preview again ignoring case');

  // Undo and redo step through the box like any other change of the row.
  await caseBox.uncheck();
  await expectDigits(size, goldExact.length, 'preview with the box unchecked');
  await page.getByRole('button', { name: 'Undo', exact: true }).click();
  await eventually(async () => assert.equal(await row.getByRole('checkbox', { name: 'Ignore case', exact: true }).isChecked(), true, 'Undo checks it again'));
  await expectDigits(size, goldAnyCase.length, 'preview after Undo');
  await page.getByRole('button', { name: 'Redo', exact: true }).click();
  await eventually(async () => assert.equal(await row.getByRole('checkbox', { name: 'Ignore case', exact: true }).isChecked(), false, 'Redo unchecks it'));
  await page.getByRole('button', { name: 'Undo', exact: true }).click();
  await eventually(async () => assert.equal(await row.getByRole('checkbox', { name: 'Ignore case', exact: true }).isChecked(), true));
  await expectDigits(size, goldAnyCase.length, 'preview ignoring case once more');

  const id = await saveSegment(page);
  const saved = await call('GET', `/v1/segments/${encodeURIComponent(id)}`);
  assert.equal(saved.condition, 'tier = "gold" ignoring case');
  // The builder's rows are an `all`, here of one row.
  assert.deepEqual(saved.condition_tree, { all: [{ field: 'tier', op: 'eq', value: 'gold', ignore_case: true }] });
  assert.deepEqual(await memberIds(call, id), goldAnyCase, 'the members are every spelling of gold');
  await expectDigits(page.locator('#segment-size'), goldAnyCase.length, '#segment-size');
  await eventually(async () => assert.match(await page.locator('#definition').textContent(), /ignoring case/), {
    message: '#definition says the row ignores case',
  });
  await shot(page, 'segment page');

  // Editing shows the box checked, and the text view says it in words of the language.
  await page.goto(`/ui/segments/${encodeURIComponent(id)}/edit`);
  await eventually(async () => assert.equal(await builderRows(page).count(), 1, 'one row'));
  const editBox = builderRows(page).nth(0).getByRole('checkbox', { name: 'Ignore case', exact: true });
  await eventually(async () => assert.equal(await editBox.isChecked(), true, '"Ignore case" is checked when editing'));
  await expectDigits(size, goldAnyCase.length, 'preview on the edit page');
  await shot(page, 'edit shows it checked');
  await page.getByRole('button', { name: 'Text', exact: true }).click();
  await eventually(async () => assert.equal(
    (await page.getByLabel('Condition text', { exact: true }).inputValue()).trim(),
    'tier = "gold" ignoring case',
  ), { message: 'the text view' });

  // Unchecking and saving goes back to the exact spelling.
  await page.getByRole('button', { name: 'Builder', exact: true }).click();
  await builderRows(page).nth(0).getByRole('checkbox', { name: 'Ignore case', exact: true }).uncheck();
  await expectDigits(size, goldExact.length, 'preview after unchecking');
  await saveSegment(page);
  assert.equal(pathOf(page), `/ui/segments/${id}`);
  assert.deepEqual(await memberIds(call, id), goldExact, 'after unchecking, only "gold" as spelled');
});

T('19 a reversed "between" shows a warning in the preview, and the segment still saves', async ({ page, signIn, call }) => {
  await data();
  await signIn();
  await page.goto('/ui/segments/new');
  const form = page.locator('form#segment-form');
  await form.waitFor();
  await kindRadio(page, 'Dynamic').check();
  await form.getByLabel('Name', { exact: true }).fill('Reversed orders');

  const row = await ensureRow(page, 0);
  await chooseOption(row.getByLabel('Field', { exact: true }), FIELD.orders, 'Field "orders"');
  await chooseOption(row.getByLabel('Operator', { exact: true }), [{ label: 'between' }, { value: 'between' }], 'Operator "between"');
  await row.getByLabel('Value', { exact: true }).first().fill('10');
  await row.getByLabel('Upper bound', { exact: true }).fill('5');
  await expectDigits(page.locator('#preview [data-preview-size]'), 0, 'nobody has 10 ≤ orders ≤ 5');
  const warnings = page.locator('#preview .preview-warnings');
  await eventually(async () => {
    assert.equal(await warnings.getAttribute('role'), 'status');
    const items = await warnings.locator('p.preview-warning').allTextContents();
    assert.deepEqual(items, ['Warning: orders between 10 and 5 is never true: its first bound is above its second (write between 5 and 10)']);
    assert.equal(await warnings.locator('p.preview-warning').first().getAttribute('data-warning-path'), '/all/0');
  }, { message: 'the warning in the preview' });
  assert.ok(await warnings.isVisible(), 'the warning is visible');
  await shot(page, 'reversed between warns');

  // Put right, the warning goes away and the size follows.
  const expected = contacts.filter((c) => typeof c.properties.orders === 'number' && c.properties.orders >= 5 && c.properties.orders <= 10).length;
  await row.getByLabel('Value', { exact: true }).first().fill('5');
  await row.getByLabel('Upper bound', { exact: true }).fill('10');
  await expectDigits(page.locator('#preview [data-preview-size]'), expected, 'orders between 5 and 10');
  await eventually(async () => assert.equal(await warnings.count(), 0, 'no warning once the bounds are in order'));

  // Back to the reversed bounds: a warning, not an error; Save works.
  await row.getByLabel('Value', { exact: true }).first().fill('10');
  await row.getByLabel('Upper bound', { exact: true }).fill('5');
  await eventually(async () => assert.equal(await warnings.count(), 1, 'the warning is back'));
  const id = await saveSegment(page);
  const saved = await call('GET', `/v1/segments/${encodeURIComponent(id)}`);
  assert.equal(saved.condition, 'orders between 10 and 5');
  assert.equal(saved.size, 0);
});
