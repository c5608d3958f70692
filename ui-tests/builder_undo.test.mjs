// Issue 17: editing is safe. Undo and redo in the builder (buttons and keys, at least 20
// steps, rows and groups), "Remove group" asks when its rows are filled, leaving with
// unsaved changes asks first, and deleting a used segment lists its usages instead of asking
// to confirm something that can't be done.

import assert from 'node:assert/strict';
import {
  setup, uiTest, shot, eventually, expectDigits, makeContacts, loadContacts, eq, isTrue,
  chooseOption, setRowValue, FIELD, OP, kindRadio, pathOf,
} from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('builder_undo', env, name, fn);

const contacts = makeContacts(0x0dd0, 180);
let loaded = null;
const data = () => (loaded ??= loadContacts(env.call, contacts));
const members = (pred) => contacts.filter(pred).length;

async function fill(row, { field, op, value }) {
  await chooseOption(row.getByLabel('Field', { exact: true }), FIELD[field] ?? [{ value: field }], `"Field" (${field})`);
  await chooseOption(row.getByLabel('Operator', { exact: true }), OP[op] ?? [{ value: op }], `"Operator" (${op})`);
  if (value !== undefined) await setRowValue(row, value);
}

const rows = (page) => page.locator('#builder .condition-row');
const fieldsOf = (page) => rows(page).evaluateAll((els) => els.map((el) => el.querySelector('.field-select').value));

async function newForm(page, signIn) {
  await data();
  await signIn();
  await page.goto('/ui/segments/new');
  await page.locator('form#segment-form').waitFor();
  await kindRadio(page, 'Dynamic').check();
}

T('U1 undo and redo: buttons, keys, more than 20 steps, rows and groups', async ({ page, signIn }) => {
  await newForm(page, signIn);
  const undo = page.getByRole('button', { name: 'Undo', exact: true });
  const redo = page.getByRole('button', { name: 'Redo', exact: true });
  assert.equal(await undo.isDisabled(), true, 'nothing to undo at first');

  await page.getByRole('button', { name: 'Add condition', exact: true }).last().click();
  await fill(rows(page).nth(0), { field: 'country', op: 'eq', value: 'ES' });
  const size = page.locator('#preview [data-preview-size]');
  await expectDigits(size, members((c) => eq(c, 'country', 'ES')), 'country = ES');
  await page.getByRole('button', { name: 'Add OR group', exact: true }).click();
  await fill(page.locator('#builder .condition-group .condition-row').nth(0), { field: 'newsletter', op: 'eq', value: true });
  await expectDigits(size, members((c) => eq(c, 'country', 'ES') && isTrue(c, 'newsletter')), 'with the OR group');
  await shot(page, 'before undo');

  // Undo the newsletter field, then the group itself.
  await undo.click(); // the value ("true" is the default: the operator step)
  await eventually(async () => assert.equal(await page.locator('#builder .condition-group').count(), 1));
  while ((await page.locator('#builder .condition-group').count()) > 0) await undo.click();
  assert.deepEqual(await fieldsOf(page), ['country'], 'the group is gone, the country row stays');
  await expectDigits(size, members((c) => eq(c, 'country', 'ES')), 'after undoing the group');
  await redo.click();
  await eventually(async () => assert.equal(await page.locator('#builder .condition-group').count(), 1, 'redo brings the group back'));

  // Keys: Ctrl+Z and Ctrl+Shift+Z with the focus on a select (not a text box).
  await rows(page).nth(0).getByLabel('Field', { exact: true }).focus();
  await page.keyboard.press('Control+z');
  await eventually(async () => assert.equal(await page.locator('#builder .condition-group').count(), 0, 'Ctrl+Z undoes'));
  await rows(page).nth(0).getByLabel('Field', { exact: true }).focus();
  await page.keyboard.press('Control+Shift+z');
  await eventually(async () => assert.equal(await page.locator('#builder .condition-group').count(), 1, 'Ctrl+Shift+Z redoes'));
  await rows(page).nth(0).getByLabel('Field', { exact: true }).focus();
  await page.keyboard.press('Control+z');
  await rows(page).nth(0).getByLabel('Field', { exact: true }).focus();
  await page.keyboard.press('Control+y');
  await eventually(async () => assert.equal(await page.locator('#builder .condition-group').count(), 1, 'Ctrl+Y redoes'));
  // In a text box, Ctrl+Z is the box's own.
  const value = rows(page).nth(0).getByLabel('Value', { exact: true });
  await value.fill('ESX');
  await value.press('Control+z');
  assert.equal(await page.locator('#builder .condition-group').count(), 1, 'Ctrl+Z in a text box leaves the rows alone');
  await value.fill('ES');

  // 24 more steps: 24 rows added; undoing 24 times leaves the rows of before.
  const before = await fieldsOf(page);
  for (let i = 0; i < 24; i++) await page.getByRole('button', { name: 'Add condition', exact: true }).last().click();
  assert.equal(await rows(page).count(), before.length + 24);
  for (let i = 0; i < 24; i++) await undo.click();
  assert.deepEqual(await fieldsOf(page), before, '24 steps undone');
  assert.equal(await rows(page).nth(0).getByLabel('Value', { exact: true }).inputValue(), 'ES', 'values come back with their rows');
  await shot(page, 'after 24 undos');
});

T('U2 "Remove group" asks when its rows are filled; undo brings a removed group back', async ({ page, signIn }) => {
  await newForm(page, signIn);
  await page.getByRole('button', { name: 'Add OR group', exact: true }).click();
  const group = page.locator('#builder .condition-group').first();
  // Empty rows: removed without asking.
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    return dialogs.length === 1 ? d.dismiss() : d.accept();
  });
  await group.getByRole('button', { name: 'Remove group', exact: true }).click();
  await eventually(async () => assert.equal(await page.locator('#builder .condition-group').count(), 0, 'an empty group goes at once'));
  assert.deepEqual(dialogs, [], 'no question for an empty group');

  await page.getByRole('button', { name: 'Add OR group', exact: true }).click();
  await fill(page.locator('#builder .condition-group .condition-row').nth(0), { field: 'country', op: 'eq', value: 'FR' });
  await page.locator('#builder .condition-group').first().getByRole('button', { name: 'Remove group', exact: true }).click();
  await eventually(async () => assert.equal(dialogs.length, 1, 'asked before removing a filled group'));
  assert.match(dialogs[0], /1 filled condition/);
  assert.equal(await page.locator('#builder .condition-group').count(), 1, 'dismissed: the group stays');
  await page.locator('#builder .condition-group').first().getByRole('button', { name: 'Remove group', exact: true }).click();
  await eventually(async () => assert.equal(await page.locator('#builder .condition-group').count(), 0, 'accepted: the group goes'));
  await page.getByRole('button', { name: 'Undo', exact: true }).click();
  await eventually(async () => assert.equal(await page.locator('#builder .condition-group').count(), 1, 'Undo brings it back'));
  assert.equal(await page.locator('#builder .condition-group .condition-row').nth(0).getByLabel('Value', { exact: true }).inputValue(), 'FR');
});

T('U3 leaving with unsaved changes asks first; without changes it does not', async ({ page, signIn }) => {
  await newForm(page, signIn);
  // Nothing changed yet but the type: reload to start clean.
  await page.reload();
  await page.locator('form#segment-form').waitFor();
  const asked = [];
  page.on('dialog', (d) => {
    asked.push(d.type());
    return asked.length === 1 ? d.dismiss() : d.accept();
  });
  await page.getByRole('button', { name: 'Add condition', exact: true }).last().click();
  await fill(rows(page).nth(0), { field: 'country', op: 'eq', value: 'ES' });
  const cancel = page.getByRole('link', { name: 'Cancel', exact: true }).or(page.getByRole('button', { name: 'Cancel', exact: true })).first();
  await cancel.click({ noWaitAfter: true });
  await eventually(async () => assert.deepEqual(asked, ['beforeunload'], 'Cancel asks'));
  await page.waitForTimeout(300);
  assert.equal(pathOf(page), '/ui/segments/new', 'dismissed: still on the form');
  await cancel.click();
  await eventually(async () => assert.notEqual(pathOf(page), '/ui/segments/new', 'accepted: left'));

  // A form left as it came asks nothing.
  await page.goto('/ui/segments/new');
  await page.locator('form#segment-form').waitFor();
  await page.getByLabel('Name', { exact: true }).click();
  await page.getByRole('link', { name: 'Cancel', exact: true }).or(page.getByRole('button', { name: 'Cancel', exact: true })).first().click();
  await eventually(async () => assert.notEqual(pathOf(page), '/ui/segments/new'));
  assert.equal(asked.length, 2, 'no question without changes');
});

T('U4 deleting a used segment lists its usages before any confirmation', async ({ page, signIn, call }) => {
  await data();
  const base = await call('POST', '/v1/segments', { name: 'Base', kind: 'dynamic', condition: 'country = "ES"' });
  const user = await call('POST', '/v1/segments', { name: 'Uses base', kind: 'dynamic', condition: 'in segment "Base" and newsletter = true' });
  const gifted = await call('POST', '/v1/segments', { name: 'Gifted', kind: 'static' });
  const flow = await call('POST', '/v1/workflows', {
    name: 'Greets base', trigger: { type: 'segment_entered', segment: base.id }, actions: [{ type: 'add_to_segment', segment: gifted.id }],
  });
  await signIn();
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    return d.accept();
  });
  await page.goto(`/ui/segments/${encodeURIComponent(base.id)}/edit`);
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  const error = page.locator('#form-error');
  await eventually(async () => assert.match(await error.textContent(), /used/), { message: '#form-error' });
  const links = await error.locator('a').evaluateAll((as) => as.map((a) => [a.textContent, a.getAttribute('href')]));
  assert.deepEqual(links.sort(), [
    ['Greets base', `/ui/workflows/${encodeURIComponent(flow.id)}`],
    ['Uses base', `/ui/segments/${encodeURIComponent(user.id)}`],
  ].sort(), 'the usages, linked');
  assert.deepEqual(dialogs, [], 'no "can\'t be undone" question for a segment that can\'t be deleted');
  await shot(page, 'usages');
  assert.equal((await call('GET', `/v1/segments/${encodeURIComponent(base.id)}`)).id, base.id, 'still there');

  // An unused one asks, then goes.
  await page.goto(`/ui/segments/${encodeURIComponent(user.id)}/edit`);
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/ui/segments');
  assert.equal(dialogs.length, 1);
  assert.match(dialogs[0], /can't be undone/);
  const { status } = await call.raw('GET', `/v1/segments/${encodeURIComponent(user.id)}`);
  assert.equal(status, 404, 'deleted');
});
