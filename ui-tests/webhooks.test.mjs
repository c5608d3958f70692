// Webhooks page (docs/ui.md "Webhooks page"): create a webhook in the form with a
// generated secret and a chosen segment, see a signed delivery arrive at a local
// receiver; a failing endpoint shows as Retrying with its last error; disable,
// enable and delete with the row's buttons.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before } from 'node:test';
import { setup, uiTest, shot, eventually } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('webhooks', env, name, fn);

// A webhook endpoint on 127.0.0.1 that records every request.
const received = [];
let receiver;
let receiverUrl;
before(async () => {
  receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.statusCode = 200;
      res.end('ok');
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
});
after(() => receiver?.close());

const row = (page, id) => page.locator(`#webhooks tr[data-webhook-id="${id}"]`);

T('13 create a webhook in the form; a signed delivery of the chosen segment arrives', async ({ page, signIn, call }) => {
  const spain = await call('POST', '/v1/segments', { name: 'Spain', kind: 'dynamic', condition: 'country = "ES"' });
  await call('POST', '/v1/segments', { name: 'France', kind: 'dynamic', condition: 'country = "FR"' });
  await signIn();
  await page.locator('nav[aria-label="Main"]').getByRole('link', { name: 'Webhooks', exact: true }).click();
  await page.getByRole('heading', { name: 'Webhooks', exact: true }).waitFor();
  await page.locator('#empty-state').waitFor();

  const form = page.locator('form#create-webhook');
  // The server's answer to a bad URL shows in the form.
  await form.getByLabel('URL', { exact: true }).fill('ftp://example.com/x');
  await form.getByRole('button', { name: 'Generate', exact: true }).click();
  const secret = await form.getByLabel('Secret', { exact: true }).inputValue();
  assert.match(secret, /^whsec_[0-9a-f]{48}$/, 'Generate fills a random secret');
  await form.getByRole('button', { name: 'Create webhook', exact: true }).click();
  await eventually(async () => assert.match(await page.locator('#webhook-error').textContent(), /http or https/));

  await form.getByLabel('URL', { exact: true }).fill(receiverUrl);
  await form.getByRole('group', { name: 'Segments' }).getByLabel('Spain', { exact: true }).check();
  await shot(page, 'form filled');
  await form.getByRole('button', { name: 'Create webhook', exact: true }).click();
  await page.locator('#webhooks tr[data-webhook-id]').first().waitFor();
  const [hook] = (await call('GET', '/v1/webhooks')).items;
  assert.deepEqual(hook.segments, [spain.id], 'the checked segment is the filter');
  assert.equal(hook.events, false);
  const r = row(page, hook.id);
  assert.equal((await r.locator('.url').textContent()).trim(), receiverUrl);
  assert.equal((await r.locator('.sends').textContent()).trim(), 'Spain');

  await call('PUT', '/v1/contacts/ana', { properties: { country: 'ES' } });
  await call('PUT', '/v1/contacts/jean', { properties: { country: 'FR' } });
  await eventually(() => assert.equal(received.length, 1, 'one delivery'));
  const [delivery] = received;
  const expected = 'sha256=' + crypto.createHmac('sha256', secret).update(delivery.body).digest('hex');
  assert.equal(delivery.headers['sift-signature'], expected, 'signed with the generated secret');
  const body = JSON.parse(delivery.body);
  assert.equal(body.delivery_id, delivery.headers['sift-delivery']);
  assert.deepEqual(body.changes.map((c) => [c.contact_id, c.change]), [['ana', 'entered']], 'only Spain');
  await page.reload();
  assert.equal((await row(page, hook.id).locator('.status .badge').textContent()).trim(), 'OK');
  assert.equal((await row(page, hook.id).locator('.lag').textContent()).trim(), 'Up to date');
});

T('13b a failing endpoint shows Retrying and its error; disable, enable, delete', async ({ page, signIn, call }) => {
  const closed = await new Promise((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(`http://127.0.0.1:${port}/hook`));
    });
  });
  const hook = await call('POST', '/v1/webhooks', { url: closed, secret: 'a-secret-for-the-ui-test' });
  await call('PUT', '/v1/contacts/luis', { properties: { country: 'ES' } });
  await signIn();
  await page.goto('/ui/webhooks');
  const r = row(page, hook.id);
  // The page refreshes its status cells by itself.
  await eventually(async () => {
    assert.equal((await r.locator('.status .badge').textContent()).trim(), 'Retrying');
    assert.match(await r.locator('.error').textContent(), /could not connect/);
    assert.match(await r.locator('.lag').textContent(), /^1 change\b/);
  }, { timeout: 15_000 });
  await shot(page, 'retrying');

  await r.getByRole('button', { name: 'Disable', exact: true }).click();
  await eventually(async () => assert.equal((await row(page, hook.id).locator('.status .badge').textContent()).trim(), 'Disabled'));
  assert.equal((await call('GET', `/v1/webhooks/${hook.id}`)).enabled, false);
  await row(page, hook.id).getByRole('button', { name: 'Enable', exact: true }).click();
  await eventually(async () => assert.equal(await row(page, hook.id).getAttribute('data-enabled'), 'true'));

  page.once('dialog', (dialog) => dialog.accept());
  await row(page, hook.id).getByRole('button', { name: 'Delete', exact: true }).click();
  await eventually(async () => assert.equal(await row(page, hook.id).count(), 0));
  const left = (await call('GET', '/v1/webhooks')).items.map((h) => h.id);
  assert.ok(!left.includes(hook.id), 'deleted');
});
