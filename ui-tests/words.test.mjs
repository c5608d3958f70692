// Issue 17 item 8: words and numbers for people. Counts with thousands separators, contact
// headings by name, no internal text, search and sort kept in the address, the header folding
// away on a phone, the workflow trigger starting at "Choose…", the preview split by known and
// anonymous. Expected values come from the test's own contacts.

import assert from 'node:assert/strict';
import { setup, uiTest, shot, expectDigits, makeContacts, loadContacts, has, eventually } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('words', env, name, fn);

// 1,200 known contacts and 7 anonymous ones, so that sizes pass a thousand.
const anonymous = Array.from({ length: 7 }, (_, i) => ({ id: `anon${i}`, anonymous: true, properties: { email: `anon${i}@example.com` } }));
const contacts = makeContacts(0x8a11, 1200, { prefix: 'w', extra: anonymous });
let loaded = null;
const data = () => (loaded ??= loadContacts(env.call, contacts));
const withEmail = contacts.filter((c) => has(c, 'email'));
const fmt = (n) => n.toLocaleString('en-US');

T('17.8a counts read 1,234 on the list, the segment page and the preview, split known and anonymous', async ({ page, signIn, call }) => {
  await data();
  assert.ok(withEmail.length > 1000, 'test data: more than a thousand members');
  const seg = await call('POST', '/v1/segments', { name: 'Reachable', kind: 'dynamic', condition: 'email is set' });
  await signIn();
  const row = page.locator(`tr[data-segment-id="${seg.id}"]`);
  assert.equal((await row.locator('.size').textContent()).trim(), fmt(withEmail.length));
  await expectDigits(row.locator('.size-anonymous'), anonymous.length, 'the list\'s anonymous count');
  await page.goto(`/ui/segments/${seg.id}`);
  assert.equal((await page.locator('#segment-size').textContent()).trim(), fmt(withEmail.length));
  await expectDigits(page.locator('#segment-size-known'), withEmail.length - anonymous.length, 'known members');

  await page.goto(`/ui/segments/${seg.id}/edit`);
  const preview = page.locator('#preview');
  await eventually(async () => assert.equal((await preview.locator('[data-preview-size]').textContent()).trim(), fmt(withEmail.length)));
  await expectDigits(preview.locator('[data-preview-known]'), withEmail.length - anonymous.length, 'the preview\'s known contacts');
  await expectDigits(preview.locator('[data-preview-anonymous]'), anonymous.length, 'the preview\'s anonymous contacts');
  await shot(page, 'preview split');
});

T('17.8b a contact is headed by its name or email, and explain speaks in words', async ({ page, signIn, call }) => {
  // Turning 18 in ten days: `birth_date before 18 years ago` flips by itself then.
  const born = new Date();
  born.setUTCFullYear(born.getUTCFullYear() - 18);
  born.setUTCDate(born.getUTCDate() + 10);
  const birth = born.toISOString().slice(0, 10);
  await call('PUT', '/v1/contacts/named-1', { properties: { first_name: 'Ana', last_name: 'López', email: 'ana@example.com', birth_date: birth, orders: 1234 } });
  await call('PUT', '/v1/contacts/mail-only', { properties: { email: 'only@example.com' } });
  await call('PUT', '/v1/contacts/bare-id', { properties: { orders: 2 } });
  const adults = await call('POST', '/v1/segments', { name: 'Adults', kind: 'dynamic', condition: 'birth_date before 18 years ago' });
  await signIn();
  for (const [id, heading] of [['named-1', 'Ana López'], ['mail-only', 'only@example.com'], ['bare-id', 'bare-id']]) {
    await page.goto(`/ui/contacts/${id}`);
    await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
    if (heading !== id) assert.match(await page.locator('#contact-id').textContent(), new RegExp(id));
  }
  await page.goto(`/ui/contacts/named-1?explain=${adults.id}`);
  // Properties in words: the date spelled out, the number grouped.
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const props = (await page.locator('#properties').textContent()).replace(/\s+/g, ' ');
  assert.ok(props.includes(`${born.getUTCDate()} ${months[born.getUTCMonth()]} ${born.getUTCFullYear()}`), props);
  assert.ok(props.includes('1,234'), props);
  assert.ok(!props.includes(birth), `no raw ISO date: ${props}`);
  const explain = page.locator('#explain');
  await explain.waitFor();
  const text = (await explain.textContent()).replace(/\s+/g, ' ');
  assert.match(text, /will change on its own in 10 days/, text);
  assert.doesNotMatch(text, /by itself at|seq/, text);
  await shot(page, 'contact heading and explain');
});

T('17.8c the segment list keeps its search and sort across a reload', async ({ page, signIn, call }) => {
  await data();
  for (const [name, condition] of [['Alpha shoppers', 'orders >= 1'], ['Alpha fans', 'orders >= 15'], ['Beta', 'orders >= 5']]) {
    await call('POST', '/v1/segments', { name, kind: 'dynamic', condition });
  }
  await signIn();
  await page.getByLabel('Search segments').fill('alpha');
  await page.getByRole('button', { name: 'Size', exact: true }).click();
  await eventually(async () => {
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('q'), 'alpha');
    assert.equal(url.searchParams.get('sort'), 'size');
    assert.equal(url.searchParams.get('order'), 'descending');
  });
  await page.reload();
  assert.equal(await page.getByLabel('Search segments').inputValue(), 'alpha');
  const visible = await page.locator('#segments tbody tr:not([hidden]) .name a').allTextContents();
  const orders = (min) => contacts.filter((c) => has(c, 'orders') && c.properties.orders >= min).length;
  assert.ok(orders(1) > orders(15), 'test data: the sizes differ');
  assert.deepEqual(visible, ['Alpha shoppers', 'Alpha fans'], 'only the matches, biggest first');
  assert.equal(await page.locator('th:has(button[data-sort="size"])').getAttribute('aria-sort'), 'descending');
  await shot(page, 'search and sort after reload');
});

T('17.8d on a phone-width screen the navigation folds behind a Menu button', async () => {
  const context = await env.browser.newContext({ baseURL: env.server.base, viewport: { width: 390, height: 800 } });
  try {
    const page = await context.newPage();
    await page.goto(env.server.loginUrl);
    const menu = page.getByRole('button', { name: 'Menu', exact: true });
    await menu.waitFor();
    const nav = page.getByRole('navigation', { name: 'Main' });
    assert.equal(await nav.isVisible(), false, 'the navigation is folded');
    assert.equal(await menu.getAttribute('aria-expanded'), 'false');
    await shot(page, 'phone folded');
    await menu.click();
    assert.equal(await menu.getAttribute('aria-expanded'), 'true');
    await nav.getByRole('link', { name: 'Workflows', exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/ui/workflows');
  } finally {
    await context.close();
  }
});

T('17.8e the workflow form starts its trigger at Choose…, and runs say which segment started them', async ({ page, signIn, call }) => {
  const vip = await call('POST', '/v1/segments', { name: 'VIP words', kind: 'dynamic', condition: 'orders >= 19' });
  const gifted = await call('POST', '/v1/segments', { name: 'Gifted words', kind: 'static' });
  await signIn();
  await page.goto('/ui/workflows/new');
  const form = page.locator('form#workflow-form');
  const segment = form.getByLabel('Segment', { exact: true });
  assert.equal(await segment.inputValue(), '', 'no segment is chosen for the marketer');
  assert.equal((await segment.locator('option:checked').textContent()).trim(), 'Choose…');
  await form.getByLabel('Name', { exact: true }).fill('Thank VIPs');
  await form.getByLabel('Trigger', { exact: true }).selectOption('segment_entered');
  const first = page.locator('#wf-actions .action-row').nth(0);
  await first.getByLabel('Action', { exact: true }).selectOption('add_to_segment');
  await first.getByLabel('Static segment', { exact: true }).selectOption(gifted.id);
  await form.getByRole('button', { name: 'Save', exact: true }).click();
  await eventually(async () => assert.match(await page.locator('#wf-trigger-error').textContent(), /Choose the segment/));
  assert.equal(new URL(page.url()).pathname, '/ui/workflows/new', 'nothing was saved');

  const wf = await call('POST', '/v1/workflows', {
    name: 'Gift words', status: 'active', trigger: { type: 'segment_entered', segment: vip.id },
    actions: [{ type: 'add_to_segment', segment: gifted.id }],
  });
  await call('PUT', '/v1/contacts/vip-words', { properties: { orders: 20 } });
  await page.goto(`/ui/workflows/${wf.id}`);
  const run = page.locator('#runs-table tr[data-contact-id="vip-words"]');
  await eventually(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    assert.equal(await run.count(), 1);
  });
  const text = (await run.textContent()).replace(/\s+/g, ' ');
  assert.match(text, /Entered VIP words/, text);
  assert.doesNotMatch(text, /seq|\d{4}-\d{2}-\d{2}T/, text);
  await shot(page, 'runs in words');
});
