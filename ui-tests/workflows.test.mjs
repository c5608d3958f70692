// Issue 5: create a workflow with the form, activate it, see a run in its
// history. "When a contact enters VIP, add it to Gifted and add 10 points."

import assert from 'node:assert/strict';
import { setup, uiTest, shot, eventually } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('workflows', env, name, fn);

T('16 create a workflow in the form, activate it, and see its run in the history', async ({ page, signIn, call }) => {
  await call('PUT', '/v1/contacts/ana', { properties: { email: 'ana@example.com', country: 'ES' } });
  await call('PUT', '/v1/contacts/bob', { properties: { email: 'bob@example.com', country: 'FR' } });
  const vip = await call('POST', '/v1/segments', { name: 'VIP', kind: 'dynamic', condition: 'lead_score >= 0 and country = "PT"' });
  const gifted = await call('POST', '/v1/segments', { name: 'Gifted', kind: 'static' });

  await signIn();
  await page.goto('/ui/workflows');
  await page.locator('#empty-state').waitFor();
  await page.getByRole('link', { name: 'Create your first workflow', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/ui/workflows/new');

  const form = page.locator('form#workflow-form');
  await form.getByLabel('Name', { exact: true }).fill('Reward VIPs');
  await form.getByLabel('Status', { exact: true }).selectOption('draft');
  await form.getByLabel('Trigger', { exact: true }).selectOption('segment_entered');
  await form.getByLabel('Segment', { exact: true }).selectOption(vip.id);
  const first = page.locator('#wf-actions .action-row').nth(0);
  await first.getByLabel('Action', { exact: true }).selectOption('add_to_segment');
  await first.getByLabel('Static segment', { exact: true }).selectOption(gifted.id);
  await form.getByRole('button', { name: 'Add action', exact: true }).click();
  const second = page.locator('#wf-actions .action-row').nth(1);
  await second.getByLabel('Action', { exact: true }).selectOption('add_score');
  await second.getByLabel('Points', { exact: true }).fill('10');
  await shot(page, 'form');
  await form.getByRole('button', { name: 'Save', exact: true }).click();
  await page.waitForURL((u) => /^\/ui\/workflows\/[^/]+$/.test(u.pathname) && !u.pathname.endsWith('/new'));
  await page.getByRole('heading', { name: 'Reward VIPs', exact: true }).waitFor();
  assert.equal(await page.locator('#workflow-status').getAttribute('data-status'), 'draft');

  // A draft does not run.
  await call('PUT', '/v1/contacts/ana', { properties: { country: 'PT' } });
  await page.getByRole('button', { name: 'Activate', exact: true }).click();
  await eventually(async () => assert.equal(await page.locator('#workflow-status').getAttribute('data-status'), 'active'), { message: 'the status after Activate' });
  await page.waitForTimeout(1000); // let the page subscribe to live updates

  await call('PUT', '/v1/contacts/bob', { properties: { country: 'PT' } });
  await eventually(async () => {
    const rows = await page.locator('#runs-table tr[data-run-id]').evaluateAll((trs) => trs.map((tr) => tr.dataset.contactId));
    assert.deepEqual(rows, ['bob'], 'one run, for bob (ana entered while the workflow was a draft)');
  }, { message: 'the run history', timeout: 15000 });
  await shot(page, 'run history');

  const members = await call('GET', `/v1/segments/${encodeURIComponent(gifted.id)}/contacts`);
  assert.deepEqual(members.items.map((c) => c.id), ['bob'], 'bob was added to Gifted');
  const bob = await call('GET', '/v1/contacts/bob');
  assert.equal(bob.lead_score, 10, 'bob got 10 points');
  const ana = await call('GET', '/v1/contacts/ana');
  assert.equal(ana.lead_score, 0, 'ana got nothing');
});

T('17 a bad action shows its error in its row', async ({ page, signIn, call }) => {
  const vip = await call('POST', '/v1/segments', { name: 'VIP two', kind: 'dynamic', condition: 'country = "PT"' });
  await signIn();
  await page.goto('/ui/workflows/new');
  const form = page.locator('form#workflow-form');
  await form.getByLabel('Name', { exact: true }).fill('Broken');
  await form.getByLabel('Segment', { exact: true }).selectOption(vip.id);
  const row = page.locator('#wf-actions .action-row').nth(0);
  await row.getByLabel('Action', { exact: true }).selectOption('webhook');
  await row.getByLabel('URL', { exact: true }).fill('not a url');
  await form.getByRole('button', { name: 'Save', exact: true }).click();
  await eventually(async () => {
    const text = (await row.locator('.row-error').textContent()).trim();
    assert.ok(text.length > 0, 'the webhook row shows the server error');
  }, { message: 'the row error' });
  await shot(page, 'row error');
  assert.equal(new URL(page.url()).pathname, '/ui/workflows/new', 'nothing was saved');
});
