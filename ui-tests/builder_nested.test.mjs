// Issue 17: any shape in the builder. Nested groups ("Match all" / "Match any", "Not" on a
// group) build `(A and B) or (C and D)` and `not (A or B)`, load back into the builder when
// editing, and a server error finds its row however deep; an event's `where` is made of
// property rows (properties seen on the event type, values suggested as you type); a text
// field suggests its most frequent values. Every expected size is computed here.

import assert from 'node:assert/strict';
import {
  setup, uiTest, shot, eventually, expectDigits, makeContacts, loadContacts, isTrue, listContains, eq, has,
  chooseOption, setRowValue, FIELD, OP, kindRadio, saveSegment, rng,
} from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('builder_nested', env, name, fn);

const contacts = makeContacts(0xb01d, 260);
const members = (pred) => contacts.filter(pred).length;

// Purchases: a seeded mix of categories and amounts for some contacts.
const CATEGORIES = ['shoes', 'bags', 'shoes', 'hats', 'shoes', 'bags', 'socks'];
const events = (() => {
  const r = rng(0x5a1e5);
  const out = [];
  for (const c of contacts) {
    if (!r.chance(0.6)) continue;
    for (let i = r.int(1, 3); i > 0; i--) {
      out.push({ contact_id: c.id, type: 'purchase', properties: { category: r.pick(CATEGORIES), amount: r.int(5, 120) } });
    }
  }
  return out;
})();

let loaded = null;
const data = () => (loaded ??= (async () => {
  await loadContacts(env.call, contacts);
  for (let i = 0; i < events.length; i += 500) await env.call('POST', '/v1/events', { events: events.slice(i, i + 500) });
})());

/** Fills a row locator: field, operator, value. */
async function fill(row, { field, op, value }) {
  await chooseOption(row.getByLabel('Field', { exact: true }), FIELD[field] ?? [{ value: field }], `"Field" (${field})`);
  await chooseOption(row.getByLabel('Operator', { exact: true }), OP[op] ?? [{ value: op }], `"Operator" (${op})`);
  if (value !== undefined) await setRowValue(row, value);
}

/** Rows and groups directly inside a group (or the root list). */
const ownRows = (group) => group.locator(':scope > .condition-list > .condition-row');
const ownGroups = (group) => group.locator(':scope > .condition-list > .condition-group');
const groupButton = (group, name) => group.locator(':scope > .group-actions').getByRole('button', { name, exact: true });

/** A tree with single-child groups unwrapped, to compare shapes. */
function shape(node) {
  for (const k of ['all', 'any']) {
    if (Array.isArray(node[k])) {
      const kids = node[k].map(shape);
      return kids.length === 1 ? kids[0] : { [k]: kids };
    }
  }
  if (node.not) return { not: shape(node.not) };
  return node;
}

async function newForm(page, signIn, name) {
  await data();
  await signIn();
  await page.goto('/ui/segments/new');
  await page.locator('form#segment-form').waitFor();
  await kindRadio(page, 'Dynamic').check();
  await page.locator('form#segment-form').getByLabel('Name', { exact: true }).fill(name);
}

T('N1 (A and B) or (C and D) in nested groups: preview, save, and back into the builder', async ({ page, signIn, call }) => {
  const expected = members((c) => (eq(c, 'country', 'ES') && isTrue(c, 'newsletter')) || (eq(c, 'country', 'FR') && listContains(c, 'interests', 'shoes')));
  assert.ok(expected > 5, `test data: several members (${expected})`);
  await newForm(page, signIn, 'Nested shapes');

  await page.getByRole('button', { name: 'Add OR group', exact: true }).click();
  const or = page.locator('#builder .condition-list.and-list > .condition-group').first();
  assert.equal(await or.getByLabel('Match', { exact: true }).first().inputValue(), 'any', 'the OR group matches any');
  // Its two empty rows go; two AND groups come in.
  for (let i = 0; i < 2; i++) await ownRows(or).first().getByRole('button', { name: 'Remove', exact: true }).click();
  for (const [a, b] of [
    [{ field: 'country', op: 'eq', value: 'ES' }, { field: 'newsletter', op: 'eq', value: true }],
    [{ field: 'country', op: 'eq', value: 'FR' }, { field: 'interests', op: 'contains', value: 'shoes' }],
  ]) {
    await groupButton(or, 'Add group').click();
    const and = ownGroups(or).last();
    assert.equal(await and.getByLabel('Match', { exact: true }).first().inputValue(), 'all', 'a group inside an OR group matches all');
    await fill(ownRows(and).nth(0), a);
    await groupButton(and, 'Add condition').click();
    await fill(ownRows(and).nth(1), b);
  }
  await expectDigits(page.locator('#preview [data-preview-size]'), expected, 'preview of (A and B) or (C and D)');
  await shot(page, 'nested groups');

  const id = await saveSegment(page);
  const seg = await call('GET', `/v1/segments/${encodeURIComponent(id)}`);
  const A = { field: 'country', op: 'eq', value: 'ES' };
  const B = { field: 'newsletter', op: 'eq', value: true };
  const C = { field: 'country', op: 'eq', value: 'FR' };
  const D = { field: 'interests', op: 'contains', value: 'shoes' };
  assert.deepEqual(shape(seg.condition_tree), { any: [{ all: [A, B] }, { all: [C, D] }] }, `the saved tree is what the rows show: ${seg.condition}`);
  await expectDigits(page.locator('#segment-size'), expected, '#segment-size');

  await page.goto(`/ui/segments/${encodeURIComponent(id)}/edit`);
  await eventually(async () => assert.equal(await page.locator('#builder .condition-row').count(), 4, 'four rows back in the builder'));
  assert.equal(await page.getByRole('button', { name: 'Builder', exact: true }).getAttribute('aria-pressed'), 'true', 'the builder view, not the text');
  assert.equal(await page.locator('#builder .condition-group').count(), 3, 'the OR group and its two AND groups');
  assert.equal(await page.locator('#builder-note').isVisible(), false, 'no "can\'t be shown" note');
  await expectDigits(page.locator('#preview [data-preview-size]'), expected, 'preview when editing');
  await shot(page, 'loaded back');
});

T('N2 not (A or B): a negated OR group, switched to "Match all" and back', async ({ page, signIn, call }) => {
  const inEsPt = (c) => eq(c, 'country', 'ES') || eq(c, 'country', 'PT');
  const many = (c) => has(c, 'orders') && c.properties.orders > 5;
  const expected = members((c) => !inEsPt(c) && many(c));
  await newForm(page, signIn, 'Not Iberian');

  await page.getByRole('button', { name: 'Add OR group', exact: true }).click();
  const group = page.locator('#builder .condition-group').first();
  await fill(ownRows(group).nth(0), { field: 'country', op: 'eq', value: 'ES' });
  await fill(ownRows(group).nth(1), { field: 'country', op: 'eq', value: 'PT' });
  await group.getByRole('checkbox', { name: 'Not (group)', exact: true }).check();
  await page.getByRole('button', { name: 'Add condition', exact: true }).last().click();
  await fill(page.locator('#builder .and-list > .condition-row').last(), { field: 'orders', op: 'gt', value: 5 });
  const size = page.locator('#preview [data-preview-size]');
  await expectDigits(size, expected, 'preview of not (ES or PT) and orders > 5');

  // "Match all": not (ES and PT) holds for everyone.
  await group.getByLabel('Match', { exact: true }).first().selectOption('all');
  await expectDigits(size, members(many), 'preview of not (ES and PT) and orders > 5');
  await group.getByLabel('Match', { exact: true }).first().selectOption('any');
  await expectDigits(size, expected, 'back to "Match any"');

  const id = await saveSegment(page);
  const seg = await call('GET', `/v1/segments/${encodeURIComponent(id)}`);
  assert.deepEqual(shape(seg.condition_tree), {
    all: [
      { not: { any: [{ field: 'country', op: 'eq', value: 'ES' }, { field: 'country', op: 'eq', value: 'PT' }] } },
      { field: 'orders', op: 'gt', value: 5 },
    ],
  }, seg.condition);
  await page.goto(`/ui/segments/${encodeURIComponent(id)}/edit`);
  const loaded = page.locator('#builder .condition-group').first();
  await eventually(async () => assert.equal(await loaded.getByRole('checkbox', { name: 'Not (group)', exact: true }).isChecked(), true, 'the group is negated'));
  assert.equal(await ownRows(loaded).count(), 2);
  await expectDigits(page.locator('#preview [data-preview-size]'), expected, 'preview when editing');
});

T('N3 a server error finds its row three groups deep', async ({ page, signIn, call }) => {
  const doomed = await call('POST', '/v1/segments', { name: 'Doomed', kind: 'dynamic', condition: 'country = "DE"' });
  await newForm(page, signIn, 'Deep error');
  await page.getByRole('button', { name: 'Add OR group', exact: true }).click();
  const or = page.locator('#builder .condition-group').first();
  await fill(ownRows(or).nth(0), { field: 'country', op: 'eq', value: 'ES' });
  await groupButton(or, 'Add group').click();
  const and = ownGroups(or).first();
  await fill(ownRows(and).nth(0), { field: 'newsletter', op: 'eq', value: true });
  await groupButton(and, 'Add group').click();
  const deep = ownGroups(and).first();
  const row = ownRows(deep).first();
  await chooseOption(row.getByLabel('Field', { exact: true }), FIELD.in_segment, '"Field"');
  await chooseOption(row.getByLabel('Value', { exact: true }), [{ value: doomed.id }], 'segment');
  await call('DELETE', `/v1/segments/${encodeURIComponent(doomed.id)}`);
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await eventually(async () => assert.ok(await row.locator('.row-error').first().isVisible(), 'the .row-error shows inside the deep row'), { message: 'row error' });
  assert.equal(await ownRows(or).nth(0).locator('.row-error').count(), 0, 'and not in another row');
  await shot(page, 'deep error');
});

T('N4 an event row\'s where made of property rows, with properties and values to pick', async ({ page, signIn, call }) => {
  const matches = (e) => e.properties.category === 'shoes' && e.properties.amount > 50;
  const buyers = new Set(events.filter(matches).map((e) => e.contact_id));
  const counts = new Map();
  for (const e of events) counts.set(e.properties.category, (counts.get(e.properties.category) || 0) + 1);
  const byFrequency = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([v]) => v);
  await newForm(page, signIn, 'Big shoe buyers');

  await page.getByRole('button', { name: 'Add condition', exact: true }).last().click();
  const row = page.locator('#builder .condition-row').first();
  await chooseOption(row.getByLabel('Field', { exact: true }), [{ label: 'Performed event' }], '"Field"');
  await row.getByLabel('Event', { exact: true }).fill('purchase');
  await row.getByRole('button', { name: 'Add property condition', exact: true }).click();
  const first = row.locator('.where-row').nth(0);
  const property = first.getByLabel('Event property', { exact: true });
  await property.click();
  await eventually(async () => {
    const offered = await property.evaluate((el) => [...(el.list?.options || [])].map((o) => o.value).sort());
    assert.deepEqual(offered, ['amount', 'category'], 'the properties seen on purchase');
  }, { message: 'property list' });
  await property.fill('category');
  await property.dispatchEvent('change');
  const value = first.getByLabel('Property value', { exact: true });
  await value.click();
  await eventually(async () => {
    const offered = await value.evaluate((el) => [...(el.list?.options || [])].map((o) => [o.value, o.label]));
    assert.deepEqual(offered.map((o) => o[0]), byFrequency, 'category values, most frequent first');
    assert.deepEqual(offered.map((o) => o[1]), byFrequency.map((v) => `${counts.get(v).toLocaleString('en-US')} events`), 'with their counts');
  }, { message: 'value suggestions' });
  await value.fill('shoes');
  await row.getByRole('button', { name: 'Add property condition', exact: true }).click();
  const second = row.locator('.where-row').nth(1);
  await second.getByLabel('Event property', { exact: true }).fill('amount');
  await second.getByLabel('Event property', { exact: true }).dispatchEvent('change');
  await chooseOption(second.getByLabel('Property operator', { exact: true }), [{ value: 'gt' }], 'operator');
  await second.getByLabel('Property value', { exact: true }).fill('50');
  await expectDigits(page.locator('#preview [data-preview-size]'), buyers.size, 'preview of performed purchase where category = shoes and amount > 50');
  await shot(page, 'where rows');

  // The text stays available.
  await row.getByRole('button', { name: 'Edit as text', exact: true }).click();
  assert.equal(await row.getByLabel('Where', { exact: true }).inputValue(), 'category = "shoes" and amount > 50');
  await row.getByRole('button', { name: 'Edit as rows', exact: true }).click();
  await eventually(async () => assert.equal(await row.locator('.where-row').count(), 2, 'back to two property rows'));

  const id = await saveSegment(page);
  const seg = await call('GET', `/v1/segments/${encodeURIComponent(id)}`);
  assert.deepEqual(shape(seg.condition_tree), {
    event: 'purchase',
    where: { all: [{ field: 'category', op: 'eq', value: 'shoes' }, { field: 'amount', op: 'gt', value: 50 }] },
  }, seg.condition);
  await expectDigits(page.locator('#segment-size'), buyers.size, '#segment-size');
  await page.goto(`/ui/segments/${encodeURIComponent(id)}/edit`);
  const back = page.locator('#builder .condition-row').first();
  await eventually(async () => assert.equal(await back.locator('.where-row').count(), 2, 'the where rows load back'));
  assert.equal(await back.locator('.where-row').nth(0).getByLabel('Event property', { exact: true }).inputValue(), 'category');
  assert.equal(await back.locator('.where-row').nth(1).getByLabel('Property value', { exact: true }).inputValue(), '50');
});

T('N5 a text field suggests its most frequent values as you type', async ({ page, signIn }) => {
  const counts = new Map();
  for (const c of contacts) if (has(c, 'country')) counts.set(c.properties.country, (counts.get(c.properties.country) || 0) + 1);
  const order = (pred) => [...counts].filter(([v]) => pred(v)).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  await newForm(page, signIn, 'Suggestions');
  await page.getByRole('button', { name: 'Add condition', exact: true }).last().click();
  const row = page.locator('#builder .condition-row').first();
  await fill(row, { field: 'country', op: 'eq' });
  const value = row.getByLabel('Value', { exact: true });
  await value.click();
  const offered = () => value.evaluate((el) => [...(el.list?.options || [])].map((o) => [o.value, o.label]));
  await eventually(async () => assert.deepEqual(await offered(), order(() => true).map(([v, n]) => [v, `${n} contacts`])), { message: 'all countries' });
  await value.pressSequentially('e');
  await eventually(async () => assert.deepEqual(await offered(), order((v) => v.toLowerCase().includes('e')).map(([v, n]) => [v, `${n} contacts`])), { message: 'countries containing "e"' });
  await shot(page, 'suggestions');
});

T('N6 a condition typed as text goes into the builder with its groups; an unseen property keeps its value\'s type', async ({ page, signIn, call }) => {
  const iberian = (c) => eq(c, 'country', 'ES') || eq(c, 'country', 'PT');
  const expected = members((c) => !iberian(c)); // no refund events: the other side never holds
  await newForm(page, signIn, 'From text');
  await page.getByRole('button', { name: 'Text', exact: true }).click();
  await page.getByLabel('Condition text', { exact: true }).fill('not (country = "ES" or country = "PT") or performed refund where amount > 10');
  await page.getByRole('button', { name: 'Builder', exact: true }).click();
  await eventually(async () => assert.equal(await page.getByRole('button', { name: 'Builder', exact: true }).getAttribute('aria-pressed'), 'true', 'back in the builder'));
  const top = page.locator('#builder .and-list > .condition-group').first();
  assert.equal(await top.getByLabel('Match', { exact: true }).first().inputValue(), 'any', 'the top "or" is a "Match any" group');
  const inner = ownGroups(top).first();
  assert.equal(await inner.getByRole('checkbox', { name: 'Not (group)', exact: true }).isChecked(), true, 'not ( … or … ) is a negated group');
  assert.equal(await ownRows(inner).count(), 2);
  const whereRow = page.locator('#builder .where-row').first();
  assert.equal(await whereRow.getByLabel('Event property', { exact: true }).inputValue(), 'amount');
  assert.equal(await whereRow.getByLabel('Property operator', { exact: true }).inputValue(), 'gt');
  assert.equal(await whereRow.getByLabel('Property value', { exact: true }).getAttribute('type'), 'number', 'a number stays a number');
  await expectDigits(page.locator('#preview [data-preview-size]'), expected, 'preview');
  await shot(page, 'from text');
  const id = await saveSegment(page);
  const seg = await call('GET', `/v1/segments/${encodeURIComponent(id)}`);
  assert.deepEqual(shape(seg.condition_tree), {
    any: [
      { not: { any: [{ field: 'country', op: 'eq', value: 'ES' }, { field: 'country', op: 'eq', value: 'PT' }] } },
      { event: 'refund', where: { field: 'amount', op: 'gt', value: 10 } },
    ],
  }, seg.condition);
});
