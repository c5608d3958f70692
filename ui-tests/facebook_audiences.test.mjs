// Scenario 18: Export to Facebook as a marketer runs it, against a fake Graph API
// (fake-graph.mjs): the access token is saved once for the workspace; the audience is
// picked from the ad account's list or created from Sift; the identifiers are named in
// words; a failed export looks failed, says why in words, and "Retry" runs it again.
// Expected values (hashes, audience sizes, what the fake received) are computed here.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EXPIRED, startFakeGraph } from './fake-graph.mjs';
import { setup, uiTest, shot, makeContacts, loadContacts, eventually } from './lib.mjs';

const env = setup();
const T = (name, fn) => uiTest('facebook_audiences', env, name, fn);

const ACCOUNT = '1234567890';
const TOKEN = 'EAAB-first-token-for-the-ads-account-0042';
const NEW_TOKEN = 'EAAB-second-token-after-the-first-expired-7781';
const contacts = makeContacts(0xfb13, 60, { prefix: 'f' });
const SEEDED = [
  { id: '23850000000000001', name: 'Newsletter readers', approximate_count_lower_bound: 12000, approximate_count_upper_bound: 14500 },
  { id: '23850000000000002', name: 'Past buyers', approximate_count_lower_bound: 1000, approximate_count_upper_bound: 1000 },
  { id: '23850000000000003', name: 'Brand new', approximate_count_lower_bound: -1, approximate_count_upper_bound: -1 },
];
const grouped = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
/** The option text the page must show for an audience, computed from the fake's data. */
function optionText(a) {
  const lo = a.approximate_count_lower_bound;
  const hi = a.approximate_count_upper_bound;
  if (lo < 0) return `${a.name} — size not known yet`;
  if (lo === hi) return `${a.name} — about ${grouped(lo)} ${lo === 1 ? 'person' : 'people'}`;
  return `${a.name} — ${grouped(lo)}–${grouped(hi)} people`;
}
const sha = (s) => createHash('sha256').update(s, 'utf8').digest('hex');
/** Rows of EMAIL and EXTERN_ID the fake must receive for `members`. */
function emailRows(members) {
  return members
    .filter((c) => c.properties.email && c.properties.newsletter !== false)
    .map((c) => `${sha(c.properties.email.trim().toLowerCase())} ${c.id}`)
    .sort();
}
/** No error on a marketer's screen names a JSON key (`"audience_id"`, `access_token`…). */
function assertInWords(text, what) {
  const keys = /"[a-z_]+"|\b(audience_id|access_token|ad_account_id|graph_url|identifiers|segment_id|retry_of|EXTERN_ID|DOBY)\b/;
  assert.ok(!keys.test(text), `${what} should be in words, says: ${JSON.stringify(text)}`);
}

let segment = null;
async function data(call) {
  if (segment) return segment;
  await loadContacts(call, contacts);
  const seg = await call('POST', '/v1/segments', { name: 'Spring buyers', kind: 'static' });
  const members = contacts.slice(0, 9);
  await call('POST', `/v1/segments/${encodeURIComponent(seg.id)}/contacts`, { contact_ids: members.map((c) => c.id) });
  segment = { id: seg.id, members };
  return segment;
}

const exportPage = (id) => `/ui/segments/${encodeURIComponent(id)}/facebook`;

T('18a the token is saved once; audiences are picked from the list; identifiers are named in words', async ({ page, signIn, call }) => {
  const seg = await data(call);
  const graph = await startFakeGraph({ account: ACCOUNT, tokens: [TOKEN], audiences: SEEDED });
  try {
    await signIn();
    await page.goto(exportPage(seg.id));
    await page.getByRole('heading', { name: 'Export to Facebook', exact: true }).waitFor();
    // Not connected yet: the export part waits for an account.
    assert.ok(await page.getByRole('button', { name: 'Start export', exact: true }).isDisabled(), 'the export form is disabled until an account is connected');
    assert.ok(await page.getByLabel('Audience', { exact: true }).isDisabled());
    await page.locator('#facebook-needs-connection').waitFor();

    // Identifiers in words, not Graph codes (no gender field in this workspace).
    const labels = (await page.locator('#facebook-identifiers label').allTextContents()).map((t) => t.trim());
    assert.deepEqual(labels, ['Email', 'Phone', 'First name', 'Last name', 'Date of birth', 'Country', 'Contact id']);
    const identifierText = await page.locator('#facebook-identifiers').innerText();
    assert.ok(!/\b(EMAIL|PHONE|FN|LN|DOBY|DOBM|DOBD|COUNTRY|GEN|EXTERN_ID)\b/.test(identifierText), identifierText);

    const account = page.locator('form#facebook-connection-form');
    await account.getByLabel('Ad account id', { exact: true }).fill(`act_${ACCOUNT}`);
    await page.getByText('Advanced', { exact: true }).click();
    await account.getByLabel('Graph URL', { exact: true }).fill(graph.url);
    await account.getByLabel('Graph API version', { exact: true }).fill('v21.0');
    // Saving without a token, then with one Facebook refuses: said in words, nothing saved.
    await account.getByRole('button', { name: 'Save connection', exact: true }).click();
    const accountError = page.locator('#facebook-connection-error');
    await eventually(async () => assert.match(await accountError.textContent(), /^Enter the access token/));
    await account.getByLabel('Access token', { exact: true }).fill('EAAB-a-token-facebook-refuses');
    await account.getByRole('button', { name: 'Save connection', exact: true }).click();
    await eventually(async () => assert.match(await accountError.textContent(), /^Facebook refused the access token \(code 190: Error validating access token/));
    assertInWords(await accountError.textContent(), 'the refused token');
    await shot(page, 'token refused');
    assert.equal((await call('GET', '/v1/facebook/connection')).connected, false, 'a refused token is not saved');

    await account.getByLabel('Access token', { exact: true }).fill(TOKEN);
    await account.getByRole('button', { name: 'Save connection', exact: true }).click();
    await page.locator('#facebook-connected').waitFor();
    assert.equal(await page.locator('#facebook-account').textContent(), `act_${ACCOUNT}`);
    assert.equal(await page.locator('#facebook-token-hint').textContent(), `…${TOKEN.slice(-4)}`);
    assert.equal(await account.getByLabel('Access token', { exact: true }).inputValue(), '', 'the token field is cleared');
    assert.ok(!(await page.content()).includes(TOKEN), 'the page never holds the token');

    // The account's audiences, with names and sizes.
    const select = page.getByLabel('Audience', { exact: true });
    await eventually(async () => assert.equal(await select.locator('option').count(), SEEDED.length + 2));
    const options = (await select.locator('option').allTextContents()).map((t) => t.trim());
    assert.deepEqual(options, ['Choose…', ...SEEDED.map(optionText), 'Create new audience…']);
    await eventually(async () => assert.equal(await page.locator('#facebook-audiences-status').textContent(), '3 audiences in this ad account.'));
    await shot(page, 'connected, audiences listed');

    // Saved once: a new visit is connected and lists the audiences without a token.
    await page.reload();
    await page.locator('#facebook-connected').waitFor();
    assert.ok(await page.locator('form#facebook-connection-form').isHidden(), 'no token asked again');
    await eventually(async () => assert.equal(await select.locator('option').count(), SEEDED.length + 2));

    // Errors before anything is sent, in words.
    const form = page.locator('form#facebook-form');
    await form.getByRole('button', { name: 'Start export', exact: true }).click();
    const error = page.locator('#facebook-error');
    await eventually(async () => assert.equal(await error.textContent(), 'Choose an audience, or create a new one.'));
    await select.selectOption({ label: optionText(SEEDED[1]) });
    for (const name of ['Email', 'Phone', 'First name', 'Last name', 'Date of birth', 'Country']) {
      await form.getByRole('checkbox', { name, exact: true }).uncheck();
    }
    await form.getByRole('button', { name: 'Start export', exact: true }).click();
    await eventually(async () => assert.equal(await error.textContent(), 'Choose at least one way to match people besides Contact id.'));
    await form.getByRole('checkbox', { name: 'Email', exact: true }).check();
    await shot(page, 'audience picked');
    await form.getByRole('button', { name: 'Start export', exact: true }).click();
    await page.locator('#facebook-status[data-state="done"]').waitFor();
    assert.equal(await page.locator('#facebook-state').textContent(), 'Done');
    assert.equal(await page.locator('#facebook-job-audience').textContent(), SEEDED[1].name);

    const batches = graph.batches();
    assert.equal(batches.length, 1, 'one batch');
    assert.equal(batches[0].path, `/v21.0/${SEEDED[1].id}/users`);
    assert.equal(batches[0].body.access_token, TOKEN, 'the saved token is used');
    assert.deepEqual(batches[0].body.payload.schema, ['EMAIL', 'EXTERN_ID']);
    assert.deepEqual(batches[0].body.payload.data.map((r) => r.join(' ')).sort(), emailRows(seg.members));
    const row = page.locator('#facebook-jobs tr[data-export-id][data-state="done"]');
    await row.waitFor();
    assert.equal(await row.locator('.audience-name').textContent(), SEEDED[1].name, 'the job lists the audience by name');
    assert.equal(await row.locator('.state .badge').textContent(), 'Done');
    await shot(page, 'exported');
  } finally {
    await graph.close();
  }
});

T('18b a new audience is created from Sift and exported to', async ({ page, signIn, call }) => {
  const seg = await data(call);
  const graph = await startFakeGraph({ account: ACCOUNT, tokens: [TOKEN], audiences: SEEDED });
  try {
    await call('PUT', '/v1/facebook/connection', { access_token: TOKEN, ad_account_id: ACCOUNT, graph_url: graph.url, version: 'v21.0' });
    await signIn();
    await page.goto(exportPage(seg.id));
    const select = page.getByLabel('Audience', { exact: true });
    await eventually(async () => assert.equal(await select.locator('option').count(), SEEDED.length + 2));
    await select.selectOption({ label: 'Create new audience…' });
    const name = page.getByLabel('New audience name', { exact: true });
    assert.equal(await name.inputValue(), 'Sift: Spring buyers', 'the name starts from the segment');
    await name.fill('');
    await page.getByRole('button', { name: 'Create audience', exact: true }).click();
    const error = page.locator('#facebook-error');
    await eventually(async () => assert.equal(await error.textContent(), 'Give the new audience a name (at most 200 characters).'));
    await name.fill('Spring buyers from Sift');
    await page.getByLabel('Description (optional)', { exact: true }).fill('Everyone who bought this spring');
    await shot(page, 'new audience');
    await page.getByRole('button', { name: 'Create audience', exact: true }).click();

    await eventually(async () => assert.equal(graph.state.audiences.length, SEEDED.length + 1));
    const made = graph.state.audiences.at(-1);
    assert.deepEqual(
      { name: made.name, description: made.description, subtype: made.subtype, source: made.customer_file_source },
      { name: 'Spring buyers from Sift', description: 'Everyone who bought this spring', subtype: 'CUSTOM', source: 'USER_PROVIDED_ONLY' },
    );
    const create = graph.state.received.find((r) => r.method === 'POST' && r.path.endsWith('/customaudiences'));
    assert.equal(create.path, `/v21.0/act_${ACCOUNT}/customaudiences`);
    assert.equal(create.authorization, `Bearer ${TOKEN}`);
    await eventually(async () => assert.equal(await select.inputValue(), made.id, 'the new audience is chosen'));
    assert.equal(await select.locator('option:checked').textContent(), 'Spring buyers from Sift — size not known yet');
    assert.ok(await page.locator('#facebook-new-audience').isHidden());

    await page.getByRole('button', { name: 'Start export', exact: true }).click();
    await page.locator('#facebook-status[data-state="done"]').waitFor();
    const batch = graph.batches().at(-1);
    assert.equal(batch.path, `/v21.0/${made.id}/users`);
    assert.equal(await page.locator('#facebook-job-audience').textContent(), 'Spring buyers from Sift');

    // Facebook keeps it: the list on a new visit has it.
    await page.reload();
    await eventually(async () => assert.equal(await select.locator('option').count(), SEEDED.length + 3));
    const options = (await select.locator('option').allTextContents()).map((t) => t.trim());
    assert.equal(options.at(-2), 'Spring buyers from Sift — size not known yet');
    await shot(page, 'new audience listed');
  } finally {
    await graph.close();
  }
});

T('18c a failed export looks failed, says why, and Retry runs it again with the new token', async ({ page, signIn, call }) => {
  const seg = await data(call);
  const graph = await startFakeGraph({ account: ACCOUNT, tokens: [TOKEN], audiences: SEEDED });
  try {
    await call('PUT', '/v1/facebook/connection', { access_token: TOKEN, ad_account_id: ACCOUNT, graph_url: graph.url, version: 'v21.0' });
    await signIn();
    await page.goto(exportPage(seg.id));
    const select = page.getByLabel('Audience', { exact: true });
    await eventually(async () => assert.equal(await select.locator('option').count(), SEEDED.length + 2));
    await select.selectOption(SEEDED[0].id);
    const form = page.locator('form#facebook-form');
    for (const name of ['Phone', 'First name', 'Last name', 'Date of birth', 'Country']) {
      await form.getByRole('checkbox', { name, exact: true }).uncheck();
    }
    // The token expires before the export sends anything.
    graph.state.tokens = new Set([NEW_TOKEN]);
    await form.getByRole('button', { name: 'Start export', exact: true }).click();
    await page.locator('#facebook-status[data-state="failed"]').waitFor();
    assert.equal(await page.locator('#facebook-state').textContent(), 'Failed');
    const expectedReason = `Facebook refused the access token (code 190: ${EXPIRED.message}): create a token with ads_management permission for this ad account and start the export again`;
    const reason = page.locator('#facebook-reason');
    assert.ok(await reason.isVisible(), 'the reason is shown');
    assert.equal(await reason.textContent(), expectedReason);
    const failedRow = page.locator('#facebook-jobs tr[data-state="failed"]');
    await failedRow.waitFor();
    const failedId = await failedRow.getAttribute('data-export-id');
    assert.equal(await failedRow.locator('.state .badge').textContent(), 'Failed');
    assert.equal(await failedRow.locator('.reason').textContent(), expectedReason);
    assert.ok(await failedRow.getByRole('button', { name: 'Retry', exact: true }).isVisible());
    assert.ok(await page.locator('#facebook-retry').isVisible());
    await shot(page, 'failed');
    // Shown failed on a new visit too, with its reason and Retry.
    await page.reload();
    await page.locator(`#facebook-jobs tr[data-export-id="${failedId}"][data-state="failed"] .reason`).waitFor();
    assert.equal(await page.locator(`#facebook-jobs tr[data-export-id="${failedId}"] .reason`).textContent(), expectedReason);

    // A new token, saved once, then Retry.
    await page.getByRole('button', { name: 'Change token', exact: true }).click();
    const account = page.locator('form#facebook-connection-form');
    assert.equal(await account.getByLabel('Ad account id', { exact: true }).inputValue(), `act_${ACCOUNT}`, 'the account stays filled in');
    await account.getByLabel('Access token', { exact: true }).fill(NEW_TOKEN);
    await account.getByRole('button', { name: 'Save connection', exact: true }).click();
    await eventually(async () => assert.equal(await page.locator('#facebook-token-hint').textContent(), `…${NEW_TOKEN.slice(-4)}`));
    await page.locator(`#facebook-jobs tr[data-export-id="${failedId}"]`).getByRole('button', { name: 'Retry', exact: true }).click();
    await page.locator('#facebook-status[data-state="done"]').waitFor();
    assert.equal(await page.locator('#facebook-state').textContent(), 'Done');
    assert.ok(await page.locator('#facebook-reason').isHidden());
    assert.ok(await page.locator('#facebook-retry').isHidden());

    const rows = page.locator('#facebook-jobs tr[data-export-id]');
    const retriedRow = rows.first();
    assert.equal(await retriedRow.getAttribute('data-state'), 'done', 'the retry is listed first');
    const retryId = await retriedRow.getAttribute('data-export-id');
    assert.notEqual(retryId, failedId);
    const retried = await call('GET', `/v1/exports/${encodeURIComponent(retryId)}`);
    assert.equal(retried.retry_of, failedId);
    assert.equal(await page.locator(`#facebook-jobs tr[data-export-id="${failedId}"]`).getAttribute('data-state'), 'failed', 'the failed job stays failed');
    assert.equal(await page.locator(`#facebook-jobs tr[data-export-id="${failedId}"] button[data-retry]`).count(), 0, 'and is not offered again');
    assert.equal(await page.locator(`#facebook-jobs tr[data-export-id="${failedId}"] .retried`).textContent(), 'Retried');
    const batches = graph.batches();
    assert.equal(batches.at(-2).body.access_token, TOKEN, 'the failed try sent the expired token');
    assert.equal(batches.at(-1).body.access_token, NEW_TOKEN, 'the retry sent the new one');
    assert.equal(batches.at(-1).path, `/v21.0/${SEEDED[0].id}/users`);
    assert.deepEqual(batches.at(-1).body.payload.data.map((r) => r.join(' ')).sort(), emailRows(seg.members));
    await shot(page, 'retried');
    await page.reload();
    await page.locator(`#facebook-jobs tr[data-export-id="${retryId}"][data-state="done"]`).waitFor();
    assert.equal(await page.locator(`#facebook-jobs tr[data-export-id="${failedId}"] button[data-retry]`).count(), 0, 'not offered after a reload');
    assert.equal(await page.locator(`#facebook-jobs tr[data-export-id="${failedId}"] .retried`).textContent(), 'Retried');
    const pageText = await page.locator('main').innerText();
    assertInWords(await page.locator('#facebook-jobs').innerText(), 'the list of exports');
    assert.ok(!pageText.includes(TOKEN) && !pageText.includes(NEW_TOKEN));
  } finally {
    await graph.close();
  }
});
