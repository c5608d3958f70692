// Scenario 9: invalid input shows the error where it is: in the builder row, or in the text view
// with its line and column. Nothing is saved.

import assert from 'node:assert/strict';
import {
  setup, uiTest, shot, eventually, pathOf, makeContacts, loadContacts,
  fillRow, ensureRow, builderRows, chooseOption, setRowValue, FIELD,
} from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('errors', env, name, fn);

// `orders` is a number field, inferred from the data.
const contacts = makeContacts(0xe770, 120, { prefix: 'e' });
let loaded = null;
const data = () => (loaded ??= loadContacts(env.call, contacts));

const segmentNames = async (call) => (await call('GET', '/v1/segments')).items.map((s) => s.name);

T('9a a number field given a text value: the error shows in that row', async ({ t, page, signIn, call }) => {
  await data();
  const fields = (await call('GET', '/v1/fields')).items;
  assert.equal(fields.find((f) => f.name === 'orders')?.type, 'number', 'test data: orders is a number field');

  await signIn();
  await page.goto('/ui/segments/new');
  await page.locator('form#segment-form').getByLabel('Name', { exact: true }).fill('Broken row');
  await fillRow(page, 0, { field: 'newsletter', op: 'eq', value: true });
  const row = await fillRow(page, 1, { field: 'orders', op: 'gt' });
  const value = row.getByLabel('Value', { exact: true }).first();
  const type = await value.evaluate((el) => el.type);
  let expectMessage;
  if (type === 'number') {
    // The browser itself keeps text out of a number input; an empty value is the invalid row left.
    t.diagnostic('the Value input of a number field is <input type=number>: testing an empty value instead of text');
    await value.fill('');
    expectMessage = /value|number|empty|required/i;
  } else {
    await value.fill('lots');
    expectMessage = /number/i;
  }
  await page.getByRole('button', { name: 'Save', exact: true }).click();

  const error = row.locator('.row-error');
  await eventually(async () => assert.ok(await error.first().isVisible(), 'a .row-error should show inside the invalid row'), { message: 'row error' });
  assert.equal(await error.first().getAttribute('role'), 'alert', '.row-error has role="alert"');
  const text = (await error.first().textContent()).trim();
  assert.match(text, expectMessage, `the row error should say what is wrong: ${JSON.stringify(text)}`);
  assert.equal(await builderRows(page).nth(0).locator('.row-error:visible').count(), 0, 'the valid row shows no error');
  await shot(page, 'row error');

  assert.equal(pathOf(page), '/ui/segments/new', 'an invalid condition keeps the form open');
  assert.ok(!(await segmentNames(call)).includes('Broken row'), 'nothing is saved');
});

T('9b the text view: the builder rows appear as text; an error shows with its line and column', async ({ page, signIn, call }) => {
  await data();
  await signIn();
  await page.goto('/ui/segments/new');
  await page.locator('form#segment-form').getByLabel('Name', { exact: true }).fill('Broken text');
  await fillRow(page, 0, { field: 'newsletter', op: 'eq', value: true });
  await page.getByRole('button', { name: 'Text', exact: true }).click();
  const text = page.getByLabel('Condition text', { exact: true });
  await text.waitFor({ state: 'visible' });
  await eventually(async () => assert.match(await text.inputValue(), /newsletter = true/, 'the text view shows the builder\'s condition'));

  // Line 2, column 14: the quoted "lots" where orders (a number) needs a number.
  await text.fill('newsletter = true\nand orders > "lots"');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  const error = page.locator('#text-error');
  await eventually(async () => assert.ok(await error.isVisible(), '#text-error should show'), { message: 'text error' });
  const message = (await error.textContent()).replace(/\s+/g, ' ').trim();
  assert.match(message, /\b2:14\b|line 2\b.*column 14\b/i, `#text-error should give line 2, column 14: ${JSON.stringify(message)}`);
  assert.match(message, /number/i, `#text-error should say a number is expected: ${JSON.stringify(message)}`);
  await shot(page, 'text error');

  assert.equal(pathOf(page), '/ui/segments/new', 'an invalid condition keeps the form open');
  assert.ok(!(await segmentNames(call)).includes('Broken text'), 'nothing is saved');
});

T('9c a row naming a segment deleted meanwhile: the server\'s error shows in that row', async ({ page, signIn, call }) => {
  await data();
  const doomed = await call('POST', '/v1/segments', { name: 'Soon gone', kind: 'dynamic', condition: 'country = "FR"' });
  await signIn();
  await page.goto('/ui/segments/new');
  await page.locator('form#segment-form').getByLabel('Name', { exact: true }).fill('Broken reference');
  await fillRow(page, 0, { field: 'newsletter', op: 'eq', value: true });
  const row = await ensureRow(page, 1);
  await chooseOption(row.getByLabel('Field', { exact: true }), FIELD.in_segment, 'row 2 "Field"');
  await setRowValue(row, 'Soon gone');
  // The segment goes away while the form is open; the form's list of segments still has it.
  await call('DELETE', `/v1/segments/${encodeURIComponent(doomed.id)}`);
  await page.getByRole('button', { name: 'Save', exact: true }).click();

  const error = row.locator('.row-error');
  await eventually(async () => assert.ok(await error.first().isVisible(), 'a .row-error should show inside the row naming the deleted segment'), {
    message: 'row error from the server',
  });
  const text = (await error.first().textContent()).trim();
  assert.match(text, /segment/i, `the row error should say the segment is unknown: ${JSON.stringify(text)}`);
  assert.equal(await builderRows(page).nth(0).locator('.row-error:visible').count(), 0, 'the valid row shows no error');
  await shot(page, 'server row error');
  assert.equal(pathOf(page), '/ui/segments/new', 'an invalid condition keeps the form open');
  assert.ok(!(await segmentNames(call)).includes('Broken reference'), 'nothing is saved');
});
