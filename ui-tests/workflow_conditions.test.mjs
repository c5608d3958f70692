// Issue 17: the workflow form's filter and an event trigger's `where` are made with the
// segment builder's rows; what is saved is what the rows show, the workflow runs only for
// events and contacts they match, and editing loads the rows back.

import assert from 'node:assert/strict';
import { setup, uiTest, shot, eventually, chooseOption, setRowValue, FIELD, OP } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('workflow_conditions', env, name, fn);

T('W1 an event trigger\'s where and the filter as rows; runs follow them; edit loads them back', async ({ page, signIn, call }) => {
  for (const [id, country] of [['ana', 'ES'], ['bob', 'FR'], ['eva', 'ES']]) {
    await call('PUT', `/v1/contacts/${id}`, { properties: { email: `${id}@example.com`, country } });
  }
  // Seen before, so the form can offer the type's properties and values.
  await call('POST', '/v1/events', { events: [
    { contact_id: 'eva', type: 'purchase', properties: { category: 'shoes', amount: 10 } },
    { contact_id: 'eva', type: 'purchase', properties: { category: 'bags', amount: 70 } },
  ] });
  const gifted = await call('POST', '/v1/segments', { name: 'Big shoe buyers', kind: 'static' });

  await signIn();
  await page.goto('/ui/workflows/new');
  const form = page.locator('form#workflow-form');
  await form.getByLabel('Name', { exact: true }).fill('Shoe buyers in Spain');
  await form.getByLabel('Status', { exact: true }).selectOption('active');
  await form.getByLabel('Trigger', { exact: true }).selectOption('event');
  await form.getByLabel('Event type', { exact: true }).fill('purchase');
  const trigger = page.locator('#wf-trigger-where-rows');
  await trigger.getByRole('button', { name: 'Add property condition', exact: true }).click();
  const first = trigger.locator('.where-row').nth(0);
  await first.getByLabel('Event property', { exact: true }).fill('category');
  await first.getByLabel('Event property', { exact: true }).dispatchEvent('change');
  await first.getByLabel('Property value', { exact: true }).click();
  await eventually(async () => {
    const offered = await first.getByLabel('Property value', { exact: true }).evaluate((el) => [...(el.list?.options || [])].map((o) => o.value).sort());
    assert.deepEqual(offered, ['bags', 'shoes']);
  }, { message: 'category values offered' });
  await first.getByLabel('Property value', { exact: true }).fill('shoes');
  await trigger.getByRole('button', { name: 'Add property condition', exact: true }).click();
  const second = trigger.locator('.where-row').nth(1);
  await second.getByLabel('Event property', { exact: true }).fill('amount');
  await second.getByLabel('Event property', { exact: true }).dispatchEvent('change');
  await chooseOption(second.getByLabel('Property operator', { exact: true }), [{ value: 'gt' }], 'operator');
  await second.getByLabel('Property value', { exact: true }).fill('50');

  // The filter: country = "ES", with the builder's rows.
  await page.locator('#builder').getByRole('button', { name: 'Add condition', exact: true }).last().click();
  const row = page.locator('#builder .condition-row').first();
  await chooseOption(row.getByLabel('Field', { exact: true }), FIELD.country, '"Field"');
  await chooseOption(row.getByLabel('Operator', { exact: true }), OP.eq, '"Operator"');
  await setRowValue(row, 'ES');
  const action = page.locator('#wf-actions .action-row').nth(0);
  await action.getByLabel('Action', { exact: true }).selectOption('add_to_segment');
  await action.getByLabel('Static segment', { exact: true }).selectOption(gifted.id);
  await shot(page, 'form');
  await form.getByRole('button', { name: 'Save', exact: true }).click();
  await page.waitForURL((u) => /^\/ui\/workflows\/[^/]+$/.test(u.pathname) && !u.pathname.endsWith('/new'));
  const id = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());

  const saved = await call('GET', `/v1/workflows/${encodeURIComponent(id)}`);
  assert.deepEqual(saved.trigger.where, { all: [{ field: 'category', op: 'eq', value: 'shoes' }, { field: 'amount', op: 'gt', value: 50 }] }, saved.trigger.where_text);
  assert.equal(saved.filter_text, 'country = "ES"');

  // Only a matching event of a matching contact runs it.
  await call('POST', '/v1/events', { events: [
    { contact_id: 'ana', type: 'purchase', properties: { category: 'shoes', amount: 80 } }, // runs
    { contact_id: 'bob', type: 'purchase', properties: { category: 'shoes', amount: 90 } }, // filtered (FR)
    { contact_id: 'eva', type: 'purchase', properties: { category: 'shoes', amount: 20 } }, // where fails
  ] });
  await eventually(async () => {
    const members = await call('GET', `/v1/segments/${encodeURIComponent(gifted.id)}/contacts`);
    assert.deepEqual(members.items.map((c) => c.id), ['ana']);
  }, { message: 'the workflow ran for ana only', timeout: 15000 });

  await page.goto(`/ui/workflows/${encodeURIComponent(id)}/edit`);
  await eventually(async () => assert.equal(await page.locator('#wf-trigger-where-rows .where-row').count(), 2, 'the where rows load back'));
  assert.equal(await page.locator('#wf-trigger-where-rows .where-row').nth(1).getByLabel('Property value', { exact: true }).inputValue(), '50');
  await eventually(async () => assert.equal(await page.locator('#builder .condition-row').count(), 1, 'the filter row loads back'));
  assert.equal(await page.locator('#builder .condition-row').first().getByLabel('Value', { exact: true }).inputValue(), 'ES');
  // The filter as text is still there for those who want it.
  await page.getByRole('button', { name: 'Edit as text', exact: true }).last().click();
  assert.equal(await page.getByLabel('Filter', { exact: true }).inputValue(), 'country = "ES"');
  await shot(page, 'edit form');
});

T('W2 a server error in the filter shows in its row inside a group; nothing is saved', async ({ page, signIn, call }) => {
  const doomed = await call('POST', '/v1/segments', { name: 'Soon gone', kind: 'dynamic', condition: 'country = "DE"' });
  const target = await call('POST', '/v1/segments', { name: 'Target', kind: 'static' });
  const vip = await call('POST', '/v1/segments', { name: 'VIP three', kind: 'dynamic', condition: 'country = "PT"' });
  const before = (await call('GET', '/v1/workflows')).items.length;
  await signIn();
  await page.goto('/ui/workflows/new');
  const form = page.locator('form#workflow-form');
  await form.getByLabel('Name', { exact: true }).fill('Broken filter');
  await form.getByLabel('Segment', { exact: true }).selectOption(vip.id);
  await page.locator('#builder').getByRole('button', { name: 'Add OR group', exact: true }).click();
  const group = page.locator('#builder .condition-group').first();
  const first = group.locator('.condition-row').nth(0);
  await chooseOption(first.getByLabel('Field', { exact: true }), FIELD.country, '"Field"');
  await setRowValue(first, 'ES');
  const second = group.locator('.condition-row').nth(1);
  await chooseOption(second.getByLabel('Field', { exact: true }), FIELD.in_segment, '"Field"');
  await chooseOption(second.getByLabel('Value', { exact: true }), [{ value: doomed.id }], 'segment');
  const action = page.locator('#wf-actions .action-row').nth(0);
  await action.getByLabel('Static segment', { exact: true }).selectOption(target.id);
  await call('DELETE', `/v1/segments/${encodeURIComponent(doomed.id)}`);
  await form.getByRole('button', { name: 'Save', exact: true }).click();
  await eventually(async () => assert.ok(await second.locator('.row-error').first().isVisible(), 'the error shows in the in-segment row'), { message: 'row error' });
  assert.equal(await first.locator('.row-error').count(), 0, 'and only there');
  await shot(page, 'filter row error');
  assert.equal(new URL(page.url()).pathname, '/ui/workflows/new');
  assert.equal((await call('GET', '/v1/workflows')).items.length, before, 'nothing saved');
});
