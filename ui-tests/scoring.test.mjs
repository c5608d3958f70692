// Scenario 18: lead scoring in the UI. The Scoring page lists, creates, edits and deletes
// rules with the builder's event row; a contact's page shows its score by source. Every
// expected score is summed here from the events this file sends.

import assert from 'node:assert/strict';
import { setup, uiTest, shot, eventually, chooseOption } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('scoring', env, name, fn);

const DAY = 86_400_000;
const fmt = (n) => n.toLocaleString('en-US');

/** Purchases of a few contacts: [contact, amount], all within the last days. */
const PURCHASES = [
  ['p-ana', 80], ['p-ana', 20], ['p-ana', 51],
  ['p-bob', 50], ['p-bob', 300],
  ['p-cleo', 10],
];
const bigOnes = (min) => PURCHASES.filter(([, amount]) => amount > min);
const contactsWith = (list) => new Set(list.map(([id]) => id));

let sent = null;
async function sendPurchases(call) {
  if (sent) return sent;
  const now = Date.now();
  sent = call('POST', '/v1/events', {
    events: PURCHASES.map(([contact_id, amount], i) => ({
      contact_id, type: 'purchase', at: new Date(now - (i + 1) * 60_000).toISOString(), properties: { amount },
    })),
  });
  return sent;
}

const form = (page) => page.locator('form#scoring-form');
const ruleRows = (page) => page.locator('table#scoring-rules tbody tr[data-rule-id]');

T('18a the Scoring page: empty, then a rule made in the form scores past events', async ({ page, signIn, call }) => {
  await sendPurchases(call);
  await signIn();
  await page.locator('nav[aria-label="Main"]').getByRole('link', { name: 'Scoring', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/ui/scoring');
  await page.getByRole('heading', { name: 'Lead scoring', exact: true }).waitFor();
  await page.locator('#empty-state').waitFor();
  await shot(page, 'empty');

  const f = form(page);
  await f.getByLabel('Event', { exact: true }).fill('purchase');
  // The where is built with the builder's property rows.
  await f.getByRole('button', { name: 'Add property condition', exact: true }).click();
  const whereRow = f.locator('.where-row').first();
  await whereRow.getByLabel('Event property', { exact: true }).fill('amount');
  await whereRow.getByLabel('Event property', { exact: true }).dispatchEvent('change');
  await chooseOption(whereRow.getByLabel('Property operator', { exact: true }), [{ value: 'gt' }], 'Property operator');
  await whereRow.getByLabel('Property value', { exact: true }).fill('50');
  await f.getByLabel('Points', { exact: true }).fill('1500');
  await shot(page, 'filled');
  await f.getByRole('button', { name: 'Create rule', exact: true }).click();

  // Every contact with a purchase over 50 was rescored.
  const rescored = contactsWith(bigOnes(50)).size;
  await page.locator('#saved').waitFor();
  assert.equal((await page.locator('#saved').textContent()).trim(), `Rule created: ${rescored} contacts rescored.`);
  await eventually(async () => assert.equal(await ruleRows(page).count(), 1));
  const row = ruleRows(page).first();
  assert.equal((await row.locator('.event').textContent()).trim(), 'purchase');
  assert.equal((await row.locator('.where').textContent()).trim(), 'amount > 50');
  assert.equal((await row.locator('.points').textContent()).trim(), '+1,500 points', 'points with a thousands separator');
  assert.equal((await row.locator('.expiry').textContent()).trim(), 'never');
  await shot(page, 'created');

  for (const id of ['p-ana', 'p-bob', 'p-cleo']) {
    const expected = 1500 * bigOnes(50).filter(([c]) => c === id).length;
    const contact = await call('GET', `/v1/contacts/${id}`);
    assert.equal(contact.lead_score, expected, `${id}'s lead_score`);
  }
});

T('18b edit a rule: points and expiry, where removed; a bad where shows in the row', async ({ page, signIn, call }) => {
  await sendPurchases(call);
  const rules = await call('GET', '/v1/scoring-rules');
  for (const r of rules.items) await call('DELETE', `/v1/scoring-rules/${r.id}`);
  const rule = await call('POST', '/v1/scoring-rules', { event_type: 'purchase', where: 'amount > 50', points: 10 });
  await signIn();
  await page.goto('/ui/scoring');
  const row = page.locator(`tr[data-rule-id="${rule.id}"]`);
  await row.getByRole('button', { name: 'Edit the rule on purchase', exact: true }).click();
  const f = form(page);
  await page.getByRole('heading', { name: 'Edit the rule on purchase', exact: true }).waitFor();
  assert.equal(await f.getByLabel('Event', { exact: true }).inputValue(), 'purchase', 'the form holds the rule');
  // The saved where loads back as a property row.
  const whereRow = f.locator('.where-row').first();
  assert.equal(await whereRow.getByLabel('Event property', { exact: true }).inputValue(), 'amount');
  assert.equal(await whereRow.getByLabel('Property operator', { exact: true }).inputValue(), 'gt');
  assert.equal(await whereRow.getByLabel('Property value', { exact: true }).inputValue(), '50');
  assert.equal(await f.getByLabel('Points', { exact: true }).inputValue(), '10');

  // A where the server cannot read (typed as text): its error shows in the row, nothing is saved.
  await f.getByRole('button', { name: 'Edit as text', exact: true }).click();
  assert.equal(await f.getByLabel('Where', { exact: true }).inputValue(), 'amount > 50');
  await f.getByLabel('Where', { exact: true }).fill('amount >');
  await f.getByRole('button', { name: 'Save rule', exact: true }).click();
  const rowError = f.locator('.condition-row .row-error');
  await rowError.waitFor();
  assert.match(await rowError.textContent(), /\S/, 'the row says what is wrong');
  await shot(page, 'where error');
  assert.equal((await call('GET', `/v1/scoring-rules/${rule.id}`)).where_text, 'amount > 50', 'nothing saved');

  await f.getByLabel('Where', { exact: true }).fill('');
  await f.getByLabel('Points', { exact: true }).fill('-2.5');
  const expiry = f.locator('#rule-expiry');
  await expiry.getByLabel('Expire after', { exact: true }).fill('30');
  await expiry.getByLabel('Unit', { exact: true }).selectOption('d');
  await f.getByRole('button', { name: 'Save rule', exact: true }).click();
  await page.locator('#saved').waitFor();
  // Every contact with a purchase (all of them scored before only for big ones) is rescored.
  const all = contactsWith(PURCHASES);
  assert.equal((await page.locator('#saved').textContent()).trim(), `Rule saved: ${all.size} contacts rescored.`);
  const saved = await call('GET', `/v1/scoring-rules/${rule.id}`);
  assert.equal(saved.points, -2.5);
  assert.equal(saved.expires_after, '30d');
  assert.equal(saved.where, null);
  const shown = page.locator(`tr[data-rule-id="${rule.id}"]`);
  assert.equal((await shown.locator('.points').textContent()).trim(), '−2.5 points');
  assert.equal((await shown.locator('.expiry').textContent()).trim(), 'after 30 days');
  assert.equal((await shown.locator('.where').textContent()).trim(), 'every event');
  const ana = await call('GET', '/v1/contacts/p-ana');
  assert.equal(ana.lead_score, -2.5 * PURCHASES.filter(([c]) => c === 'p-ana').length);
  await shot(page, 'edited');
});

T('18c delete asks first; dismissed keeps the rule, accepted removes it and its points', async ({ page, signIn, call }) => {
  await sendPurchases(call);
  const rules = await call('GET', '/v1/scoring-rules');
  for (const r of rules.items) await call('DELETE', `/v1/scoring-rules/${r.id}`);
  const rule = await call('POST', '/v1/scoring-rules', { event_type: 'purchase', points: 3 });
  assert.equal((await call('GET', '/v1/contacts/p-bob')).lead_score, 6);
  await signIn();
  await page.goto('/ui/scoring');
  const row = page.locator(`tr[data-rule-id="${rule.id}"]`);
  const del = row.getByRole('button', { name: 'Delete the rule on purchase', exact: true });

  let asked = '';
  page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
  await del.click();
  await eventually(() => assert.match(asked, /Delete the rule on every purchase\?.*can't be undone/));
  assert.equal((await call('GET', '/v1/scoring-rules')).items.length, 1, 'dismissed: the rule stays');

  page.once('dialog', (d) => d.accept());
  await del.click();
  await page.locator('#saved').waitFor();
  assert.equal((await page.locator('#saved').textContent()).trim(), `Rule deleted: ${contactsWith(PURCHASES).size} contacts rescored.`);
  await page.locator('#empty-state').waitFor();
  assert.equal((await call('GET', '/v1/scoring-rules')).items.length, 0);
  assert.equal((await call('GET', '/v1/contacts/p-bob')).lead_score, 0);
  await shot(page, 'deleted');
});

T('18d a contact page shows its score by rule and workflow, adding up to the lead score', async ({ page, signIn, call }) => {
  const rules = await call('GET', '/v1/scoring-rules');
  for (const r of rules.items) await call('DELETE', `/v1/scoring-rules/${r.id}`);
  const big = await call('POST', '/v1/scoring-rules', { event_type: 'order', where: 'amount >= 100', points: 1200 });
  const logins = await call('POST', '/v1/scoring-rules', { event_type: 'login', points: 2, expires_after: '7d' });
  const welcome = await call('POST', '/v1/workflows', {
    name: 'Welcome points', status: 'active',
    trigger: { type: 'event', event_type: 'signup' },
    actions: [{ type: 'add_score', points: 5 }],
  });
  const now = Date.now();
  const orders = [150, 99, 100, 2000];
  const loginAts = [now - 3 * DAY, now - DAY];
  await call('POST', '/v1/events', {
    events: [
      ...orders.map((amount, i) => ({ contact_id: 'sc-dana', type: 'order', at: new Date(now - (i + 1) * 1000).toISOString(), properties: { amount } })),
      ...loginAts.map((at) => ({ contact_id: 'sc-dana', type: 'login', at: new Date(at).toISOString() })),
      { contact_id: 'sc-dana', type: 'signup' },
    ],
  });
  const bigCount = orders.filter((a) => a >= 100).length;
  const expected = 1200 * bigCount + 2 * loginAts.length + 5;
  // The workflow runs in the background.
  await eventually(async () => assert.equal((await call('GET', '/v1/contacts/sc-dana')).lead_score, expected));

  await signIn();
  await page.goto('/ui/contacts/sc-dana');
  const card = page.locator('section#score');
  await card.getByRole('heading', { name: 'Lead score', exact: true }).waitFor();
  assert.equal((await card.locator('#score-total').textContent()).trim(), fmt(expected), 'the total, with separators');
  assert.equal((await page.locator('#lead-score').textContent()).trim(), fmt(expected), 'System data says the same');

  const bigRow = card.locator(`tr[data-source="rule"][data-rule-id="${big.id}"]`);
  assert.equal((await bigRow.locator('.points').textContent()).trim(), `+${fmt(1200 * bigCount)}`);
  assert.equal((await bigRow.locator('.count').textContent()).trim(), `${bigCount} events`);
  assert.equal((await bigRow.locator('.expiry').textContent()).trim(), 'never');
  assert.match((await bigRow.locator('.what').textContent()).replace(/\s+/g, ' '), /order where amount >= 100/);

  const loginRow = card.locator(`tr[data-source="rule"][data-rule-id="${logins.id}"]`);
  assert.equal((await loginRow.locator('.points').textContent()).trim(), `+${2 * loginAts.length}`);
  assert.equal((await loginRow.locator('.count').textContent()).trim(), `${loginAts.length} events`);
  // The earliest login's points go first: 7 days after it.
  const expiry = await loginRow.locator('.expiry time').getAttribute('datetime');
  assert.equal(Date.parse(expiry), Math.min(...loginAts) + 7 * DAY);

  const wfRow = card.locator(`tr[data-source="workflow"][data-workflow-id="${welcome.id}"]`);
  assert.equal((await wfRow.locator('.points').textContent()).trim(), '+5');
  assert.equal((await wfRow.locator('.count').textContent()).trim(), '1 grant');
  await wfRow.getByRole('link', { name: 'Welcome points', exact: true }).waitFor();

  const points = await card.locator('tr[data-source]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.points)));
  assert.equal(points.length, 3, 'one row per source');
  assert.equal(points.reduce((a, b) => a + b, 0), expected, 'the rows add up to the lead score');
  await shot(page, 'contact score');

  // A contact without points says so.
  await call('PUT', '/v1/contacts/sc-none', { properties: { country: 'ES' } });
  await page.goto('/ui/contacts/sc-none');
  await page.locator('#score-empty').waitFor();
  assert.equal((await page.locator('#score-total').textContent()).trim(), '0');
});
