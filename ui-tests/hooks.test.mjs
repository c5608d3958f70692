// The test hooks of docs/ui.md, checked to the letter: accessible names, ids, data- attributes.
// The scenario tests tolerate decorations on a few names (a "+" before "Add condition", an arrow
// after "More"); this file reports every name that differs from the docs, all at once.
// Also the Fields page: declare a field, and a bad one shows #field-error.

import assert from 'node:assert/strict';
import { setup, uiTest, shot, eventually, ensureRow } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('hooks', env, name, fn);

/** Runs each check, collecting the failures instead of stopping at the first. */
function checker() {
  const misses = [];
  const check = async (what, fn) => {
    try {
      await fn();
    } catch (e) {
      misses.push(`${what}: ${e.message.split('\n')[0]}`);
    }
  };
  const count = (locator, what, n = 1) =>
    check(what, async () => {
      const found = await locator.count();
      assert.ok(n === 'some' ? found > 0 : found === n, `expected ${n}, found ${found}`);
    });
  /** Exactly one element of `role` named `name` in `scope`; on a miss, says what the near ones are called. */
  const named = (scope, role, name, what = `${role} "${name}"`) =>
    check(what, async () => {
      const found = await scope.getByRole(role, { name, exact: true }).count();
      if (found === 1) return;
      const near = scope.getByRole(role, { name });
      const names = [];
      for (let i = 0; i < (await near.count()); i++) names.push((await near.nth(i).ariaSnapshot()).split('\n')[0].replace(/^- /, ''));
      assert.fail(`expected 1, found ${found}${names.length ? `; named instead: ${names.join(', ')}` : ''}`);
    });
  const done = () => assert.deepEqual(misses, [], `hooks that differ from docs/ui.md:\n  - ${misses.join('\n  - ')}`);
  return { check, count, named, done };
}

T('0 hooks: the accessible names, ids and attributes of docs/ui.md, exactly', async ({ page, signIn, call }) => {
  await call('PUT', '/v1/contacts/hook-ana', { properties: { newsletter: true, email: 'ana@example.com' } });
  const seg = await call('POST', '/v1/segments', { name: 'Hook segment', kind: 'dynamic', condition: 'newsletter = true' });
  const { check, count, named, done } = checker();
  await signIn();

  // Header.
  const nav = page.locator('nav[aria-label="Main"]');
  for (const name of ['Segments', 'All contacts', 'Fields', 'Workflows', 'Webhooks', 'Scoring']) await named(nav, 'link', name, `header link "${name}"`);
  await named(page, 'button', 'Sign out');
  await named(page, 'button', 'Toggle dark mode');

  // Segments list.
  await named(page, 'heading', 'Segments');
  await count(page.getByLabel('Search segments', { exact: true }), 'search box "Search segments"');
  await named(page, 'link', 'Create new segment');
  const row = page.locator(`#segments tr[data-segment-id="${seg.id}"]`);
  for (const cell of ['.name a', '.type', '.description', '.size', '.size-known', '.size-anonymous', '.updated time[datetime]']) await count(row.locator(cell), `list cell ${cell}`);
  for (const name of ['Name', 'Size', 'Last change']) {
    await named(page.locator('#segments thead'), 'button', name, `sort button "${name}" in a header cell`);
  }
  await count(page.locator('#segments th[aria-sort]'), 'aria-sort on the active sort column', 'some');
  await shot(page, 'list');

  // Segment form.
  await page.goto('/ui/segments/new');
  const form = page.locator('form#segment-form');
  const type = form.getByRole('group', { name: 'Type', exact: true }).or(form.getByRole('radiogroup', { name: 'Type', exact: true }));
  await count(type, 'group "Type"');
  for (const name of ['Dynamic', 'Static']) await named(type, 'radio', name, `radio "${name}" in group "Type"`);
  // "Test segment" marks a static segment: it may show only once "Static" is chosen.
  await check('choosing "Static"', () => form.getByRole('radio', { name: /^Static\b/ }).check());
  await named(form, 'checkbox', 'Test segment');
  await check('choosing "Dynamic" again', () => form.getByRole('radio', { name: /^Dynamic\b/ }).check());
  for (const name of ['Name', 'Description']) await count(form.getByLabel(name, { exact: true }), `input "${name}"`);
  await count(page.locator('#builder'), '#builder');
  for (const name of ['Add condition', 'Add OR group', 'Builder', 'Text', 'Save']) await named(page, 'button', name);
  await count(page.getByRole('button', { name: 'Cancel', exact: true }).or(page.getByRole('link', { name: 'Cancel', exact: true })), '"Cancel"');
  await count(page.locator('#preview [data-preview-size]'), '#preview [data-preview-size]');
  await check('a builder row', async () => {
    const r = await ensureRow(page, 0);
    assert.equal(await r.getByRole('combobox', { name: 'Field', exact: true }).count(), 1, 'select "Field"');
    await r.getByRole('combobox', { name: 'Field', exact: true }).selectOption('country');
    assert.equal(await r.getByRole('combobox', { name: 'Operator', exact: true }).count(), 1, 'select "Operator"');
    assert.equal(await r.getByLabel('Value', { exact: true }).count(), 1, 'value input "Value"');
    assert.equal(await r.getByRole('button', { name: 'Remove', exact: true }).count(), 1, 'button "Remove"');
    assert.equal(await r.getByRole('checkbox', { name: 'Not', exact: true }).count(), 1, 'checkbox "Not"');
  });
  await check('the text view', async () => {
    await page.getByRole('button', { name: 'Text', exact: true }).click();
    await page.getByLabel('Condition text', { exact: true }).waitFor({ state: 'visible' });
  });
  await shot(page, 'form');

  // Segment page and its More menu.
  await page.goto(`/ui/segments/${seg.id}`);
  await named(page, 'heading', 'Hook segment', 'heading = segment name');
  for (const id of ['#segment-size', '#segment-size-known', '#segment-size-anonymous', '#definition', '#changes']) await count(page.locator(id), id);
  await named(page, 'button', 'More', 'menu button "More"');
  await check('the More menu', async () => {
    await page.getByRole('button', { name: /^More\b/ }).click();
    const controls = await page.getByRole('button', { name: /^More\b/ }).getAttribute('aria-controls');
    const menu = controls ? page.locator(`[id="${controls}"]`) : page;
    const entries = [];
    for (const role of ['link', 'menuitem']) {
      const items = menu.getByRole(role);
      for (let i = 0; i < (await items.count()); i++) entries.push((await items.nth(i).ariaSnapshot()).split('\n')[0].replace(/^- \w+ /, '').replace(/:$/, ''));
    }
    const wrong = ['Edit', 'See contacts', 'See usages', 'Export CSV', 'Export to Facebook'].filter((name) => !entries.includes(`"${name}"`));
    assert.deepEqual(wrong, [], `entries missing or named otherwise; the menu holds ${entries.join(', ')}`);
  });
  await shot(page, 'segment page');
  await page.goto(`/ui/segments/${seg.id}/edit`);
  await count(page.locator(`form#segment-form[data-segment-id="${seg.id}"]`), 'form#segment-form[data-segment-id] when editing');
  await named(page, 'button', 'Delete', 'button "Delete" when editing');

  // Contacts and a contact.
  await page.goto(`/ui/segments/${seg.id}/contacts`);
  await count(page.locator('table#contacts tr[data-contact-id="hook-ana"]'), 'table#contacts tr[data-contact-id]');
  await count(page.locator('form#columns'), '#columns form');
  await page.goto('/ui/contacts/hook-ana');
  // hook-ana has an email and no name: the heading is the email, the id is shown under it.
  await named(page, 'heading', 'ana@example.com', 'contact heading = name, else email, else id');
  assert.match(await page.locator('#contact-id').textContent(), /hook-ana/);
  for (const name of ['Properties', 'System data', 'Segments', 'Recent events']) await named(page, 'heading', name, `section "${name}"`);
  await count(page.locator('#lead-score'), '#lead-score');
  await count(page.getByLabel('Segment', { exact: true }), 'select "Segment"');
  await named(page, 'button', 'Explain');
  await named(page, 'heading', 'Lead score', 'section "Lead score"');
  await count(page.locator('section#score #score-total'), 'section#score #score-total');

  // Scoring page.
  await page.goto('/ui/scoring');
  await named(page, 'heading', 'Lead scoring');
  await count(page.locator('#rule-count'), '#rule-count');
  const rules = page.locator('form#scoring-form');
  await count(rules, 'form#scoring-form');
  for (const name of ['Event', 'Where', 'Points']) await count(rules.getByLabel(name, { exact: true }), `input "${name}"`);
  for (const name of ['Expire after', 'Unit']) await count(rules.locator('#rule-expiry').getByLabel(name, { exact: true }), `#rule-expiry "${name}"`);
  await named(rules, 'button', 'Create rule');
  await count(page.locator('#scoring-error'), '#scoring-error');

  // A static segment filled and trimmed by hand.
  const list = await call('POST', '/v1/segments', { name: 'Hook list', kind: 'static' });
  await call('POST', `/v1/segments/${list.id}/contacts`, { contact_ids: ['hook-ana'] });
  await page.goto(`/ui/segments/${list.id}`);
  const add = page.locator(`section#add-contacts[data-segment-id="${list.id}"]`);
  await named(add, 'heading', 'Add contacts');
  for (const name of ['Contact ids or emails', 'Or a CSV file']) await count(add.getByLabel(name, { exact: true }), `input "${name}"`);
  await named(add, 'button', 'Preview');
  await count(page.locator('#add-error'), '#add-error');
  await page.goto(`/ui/segments/${list.id}/contacts`);
  await count(page.locator(`form#members-form[data-segment-id="${list.id}"]`), 'form#members-form[data-segment-id]');
  await named(page, 'checkbox', 'Select hook-ana');
  await named(page, 'checkbox', 'Select every contact on this page');
  await named(page, 'button', 'Remove from segment');
  await count(page.locator('#selected-count'), '#selected-count');

  // Fields.
  await page.goto('/ui/fields');
  await count(page.locator('table#fields'), 'table#fields');
  const declare = page.getByRole('form', { name: 'Declare a field', exact: true });
  await count(declare, 'form "Declare a field"');
  for (const name of ['Name', 'Type', 'Label']) await count(declare.getByLabel(name, { exact: true }), `input "${name}"`);
  await named(declare, 'button', 'Declare field');
  await count(page.locator('#field-error'), '#field-error');
  done();
});

T('11 fields page: declare a date field; a bad name shows #field-error', async ({ page, signIn, call }) => {
  await signIn();
  await page.locator('nav[aria-label="Main"]').getByRole('link', { name: 'Fields', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/ui/fields');
  const declare = page.getByRole('form', { name: 'Declare a field' });
  const typeControl = declare.getByLabel('Type', { exact: true });
  const setType = async (t) => {
    if ((await typeControl.evaluate((el) => el.tagName)) === 'SELECT') await typeControl.selectOption(t);
    else await typeControl.fill(t);
  };

  await declare.getByLabel('Name', { exact: true }).fill('Bad Name');
  await setType('date');
  await declare.getByRole('button', { name: 'Declare field', exact: true }).click();
  await eventually(async () => assert.match((await page.locator('#field-error').textContent()).trim(), /\S/, '#field-error should say what is wrong'));
  await shot(page, 'bad name');
  assert.ok(!(await call('GET', '/v1/fields')).items.some((f) => f.label === 'Bad Name' || f.name === 'Bad Name'), 'nothing is declared');

  await declare.getByLabel('Name', { exact: true }).fill('signup_date');
  await setType('date');
  await declare.getByLabel('Label', { exact: true }).fill('Signup date');
  await declare.getByRole('button', { name: 'Declare field', exact: true }).click();
  await eventually(async () => {
    const text = (await page.locator('table#fields').textContent()).replace(/\s+/g, ' ');
    assert.ok(text.includes('signup_date') && text.includes('Signup date'), 'table#fields lists the new field');
  });
  const field = (await call('GET', '/v1/fields')).items.find((f) => f.name === 'signup_date');
  assert.deepEqual({ type: field?.type, label: field?.label }, { type: 'date', label: 'Signup date' }, 'the field is declared with its type and label');
});
