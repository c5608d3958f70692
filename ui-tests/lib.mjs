// Helpers shared by the browser tests of the web UI (see docs/ui.md, "Test hooks").
//
// Every test file starts its own `sift serve` on a fresh data directory and its
// own headless chromium (`setup()`); every test gets a fresh browser context and
// saves at least one full-page screenshot, also when it fails (`uiTest()`).
// Expected sizes are computed in the tests themselves, never asked of the server.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Milliseconds the UI gets to show something (preview, live size) before a check fails. */
export const UI_TIMEOUT = Number(process.env.SIFT_UI_TIMEOUT_MS || 10_000);

// ---------------------------------------------------------------------------
// The server

/** The debug binary built by scripts/ui-test.sh (honours SIFT_BIN and CARGO_TARGET_DIR). */
export function siftBinary() {
  if (process.env.SIFT_BIN) return path.resolve(ROOT, process.env.SIFT_BIN);
  const target = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
  return path.join(target, 'debug', 'sift');
}

/**
 * Starts `sift serve --data <tmp> --listen 127.0.0.1:0` and reads from its stdout the
 * address, the workspace key and the web UI's login URL.
 * Returns { base, key, loginUrl, token, dataDir, stop() }.
 */
export async function startServer({ timeoutMs = 20_000 } = {}) {
  const bin = siftBinary();
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: build it with "cargo build -p sift" (scripts/ui-test.sh does)`);
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sift-ui-'));
  // Fake Graph APIs and webhook receivers listen on localhost.
  const child = spawn(bin, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--allow-private-destinations'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SIFT_LOG: process.env.SIFT_LOG || 'warn' },
  });
  const stdout = [];
  const stderr = [];
  readline.createInterface({ input: child.stderr }).on('line', (l) => {
    stderr.push(l);
    if (stderr.length > 200) stderr.shift();
    if (process.env.SIFT_UI_SERVER_LOG) process.stderr.write(`[sift] ${l}\n`);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  const info = await new Promise((resolve, reject) => {
    const found = {};
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`sift serve: ${why}\nstdout so far:\n  ${stdout.join('\n  ')}\nstderr (last lines):\n  ${stderr.slice(-20).join('\n  ')}`));
    };
    const timer = setTimeout(
      () => fail(`did not print its address, workspace key and "Web UI: http://ADDR/ui/login?token=..." within ${timeoutMs / 1000} s`),
      timeoutMs,
    );
    exited.then(({ code, signal }) => fail(`exited early (code ${code}, signal ${signal})`));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      stdout.push(line);
      let m;
      if ((m = line.match(/^Sift is listening on (http:\/\/\S+)/))) found.base = m[1];
      else if ((m = line.match(/^Workspace key \(shown once, keep it\): (sk_\S+)/))) found.key = m[1];
      else if ((m = line.match(/^Web UI(?: \([^)]*\))?: (https?:\/\/\S+)/))) found.loginUrl = m[1];
      else if (line.startsWith('Web UI')) return fail(`printed "${line}" instead of a login URL`);
      if (found.base && found.key && found.loginUrl) {
        clearTimeout(timer);
        resolve(found);
      }
    });
  }).catch(async (e) => {
    await stop();
    throw e;
  });
  const token = new URL(info.loginUrl).searchParams.get('token');
  return { ...info, token, dataDir, stop, api: api(info.key, info.base) };
}

/**
 * JSON requests with `Authorization: Bearer KEY`.
 * `call(method, path, body?, {status?})` answers the parsed body; it fails unless the
 * status is 2xx (or the given `status`). `call.raw(...)` answers { status, body, headers }.
 */
export function api(key, base) {
  const raw = async (method, p, body, { headers = {} } = {}) => {
    const res = await fetch(new URL(p, base), {
      method,
      headers: {
        ...(key ? { Authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      redirect: 'manual',
    });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const call = async (method, p, body, { status } = {}) => {
    const res = await raw(method, p, body);
    const ok = status === undefined ? res.status >= 200 && res.status < 300 : res.status === status;
    if (!ok) {
      throw new Error(`${method} ${p} answered ${res.status} (expected ${status ?? '2xx'}): ${JSON.stringify(res.body)}`);
    }
    return res.body;
  };
  call.raw = raw;
  return call;
}

// ---------------------------------------------------------------------------
// Test data

/** A small seeded pseudo-random generator (mulberry32): same seed, same contacts. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  next.pick = (xs) => xs[Math.floor(next() * xs.length)];
  next.chance = (p) => next() < p;
  return next;
}

const FIRST_NAMES = ['Ana', 'Luis', 'Marta', 'João', 'Chloé', 'Jonas', 'Emma', 'Pedro', 'Lucía', 'Noah', 'Inés', 'Hugo'];
const INTERESTS = ['shoes', 'bags', 'hats', 'socks', 'running'];

/**
 * `n` contacts with a mix of values and missing properties:
 * newsletter true/false/missing, interests a subset (possibly empty) or missing,
 * birth_date 1940–2006 or missing, email, first_name, country, orders (a number).
 * Ids are `${prefix}000`, `${prefix}001`, ...; `extra` contacts are added as given.
 */
export function makeContacts(seed, n, { prefix = 'c', extra = [] } = {}) {
  const r = rng(seed);
  const contacts = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}${String(i).padStart(3, '0')}`;
    const p = {};
    if (r.chance(0.88)) p.newsletter = r.chance(0.55);
    if (r.chance(0.85)) p.interests = INTERESTS.filter((x) => r.chance(x === 'shoes' ? 0.45 : 0.3));
    if (r.chance(0.88)) {
      const y = r.int(1940, 2006);
      const m = r.int(1, 12);
      const d = r.int(1, 28);
      p.birth_date = `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
    }
    if (r.chance(0.9)) p.email = `${id}@example.com`;
    if (r.chance(0.9)) p.first_name = r.pick(FIRST_NAMES);
    if (r.chance(0.85)) p.country = r.pick(['ES', 'ES', 'FR', 'PT', 'DE', 'US']);
    if (r.chance(0.8)) p.orders = r.int(0, 20);
    contacts.push({ id, properties: p });
  }
  return [...contacts, ...extra];
}

/** Loads contacts through `POST /v1/contacts:batch`. */
export async function loadContacts(call, contacts) {
  for (let i = 0; i < contacts.length; i += 1000) {
    await call('POST', '/v1/contacts:batch', { contacts: contacts.slice(i, i + 1000) });
  }
}

/**
 * A contact page's heading (docs/ui.md): "first_name last_name" when it has either, else its
 * email, else its id.
 */
export function contactHeading(id, properties = {}) {
  const text = (name) => (typeof properties[name] === 'string' && properties[name].trim() ? properties[name].trim() : null);
  const name = [text('first_name'), text('last_name')].filter(Boolean).join(' ');
  return name || text('email') || id;
}

/** Conditions evaluated in JavaScript, with docs/conditions.md's rule: a missing property makes a comparison false. */
export const has = (c, f) => c.properties[f] !== undefined && c.properties[f] !== null;
export const isTrue = (c, f) => c.properties[f] === true;
export const listContains = (c, f, v) => Array.isArray(c.properties[f]) && c.properties[f].includes(v);
export const dateGte = (c, f, d) => has(c, f) && c.properties[f] >= d;
export const eq = (c, f, v) => has(c, f) && c.properties[f] === v;

// ---------------------------------------------------------------------------
// The browser

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/** The folder screenshots go to (scripts/ui-test.sh sets SIFT_UI_SCREENSHOTS and prints it). */
export function screenshotDir() {
  if (!process.env.SIFT_UI_SCREENSHOTS) {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    process.env.SIFT_UI_SCREENSHOTS = path.join(ROOT, 'target', 'ui-screenshots', stamp);
  }
  mkdirSync(process.env.SIFT_UI_SCREENSHOTS, { recursive: true });
  return process.env.SIFT_UI_SCREENSHOTS;
}

const slug = (s) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 80);

let current = null; // { file, name, shots }

/** Saves a full-page screenshot named after the running test (and `label`). */
export async function shot(page, label = '') {
  const dir = screenshotDir();
  const base = current ? `${current.file}--${slug(current.name)}` : 'ui';
  const n = current ? ++current.shots : 0;
  const file = path.join(dir, `${base}${label ? `--${String(n).padStart(2, '0')}-${slug(label)}` : ''}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Starts a server and a browser for this test file (before/after hooks) and answers an
 * object filled in once they run: { server, browser, call }.
 */
export function setup() {
  const env = { server: null, browser: null, call: null };
  before(async () => {
    screenshotDir();
    env.server = await startServer();
    env.call = env.server.api;
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close().catch(() => {});
    await env.server?.stop();
  });
  return env;
}

/**
 * A test with a fresh browser context and page. It saves a full-page screenshot at the end,
 * or on failure one named `...--FAILED.png` (plus the page's HTML) before rethrowing.
 * Browser console errors and failed requests are reported as diagnostics.
 */
export function uiTest(file, env, name, fn, { timeout = 90_000 } = {}) {
  test(name, { timeout }, async (t) => {
    if (!env.browser) throw new Error('the server or the browser did not start (see the before hook)');
    current = { file, name, shots: 0 };
    const context = await env.browser.newContext({ baseURL: env.server.base, viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(UI_TIMEOUT);
    context.setDefaultNavigationTimeout(UI_TIMEOUT * 2);
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && !/^Failed to load resource/.test(m.text()) && problems.push(`console error: ${m.text()} (${page.url()})`));
    page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`));
    const signIn = async (p = page) => {
      const res = await p.goto(env.server.loginUrl);
      assert.equal(new URL(p.url()).pathname, '/ui/segments', `signing in through the printed URL should land on /ui/segments, got ${p.url()}`);
      return res;
    };
    try {
      await fn({ t, page, context, signIn, call: env.call, server: env.server });
      await shot(page);
    } catch (e) {
      try {
        const file = await shot(page, 'FAILED');
        writeFileSync(file.replace(/\.png$/, '.html'), await page.content());
        t.diagnostic(`failure screenshot: ${file} (at ${page.url()})`);
      } catch (e2) {
        t.diagnostic(`could not save the failure screenshot: ${e2.message}`);
      }
      throw e;
    } finally {
      for (const p of problems.slice(0, 20)) t.diagnostic(p);
      await context.close().catch(() => {});
      current = null;
    }
  });
}

// ---------------------------------------------------------------------------
// Waiting and reading

/** Retries `fn` (which throws while its check fails) until it passes or `timeout` ms pass. */
export async function eventually(fn, { timeout = UI_TIMEOUT, interval = 100, message } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      if (message) last.message = `${message} (after ${timeout} ms): ${last.message}`;
      throw last;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * The number an element shows (docs/ui.md: counts are digits grouped by thousands with commas,
 * `1,234`), as a number. Anything else in the element fails.
 */
export async function digits(locator) {
  const text = ((await locator.first().textContent({ timeout: UI_TIMEOUT })) ?? '').trim();
  assert.match(text, /^\d{1,3}(,\d{3})*$/, `${locator} should hold a count like 1,234, holds ${JSON.stringify(text)}`);
  return Number(text.replaceAll(',', ''));
}

/** Waits until `locator` holds exactly the number `expected`. */
export async function expectDigits(locator, expected, what) {
  await eventually(async () => assert.equal(await digits(locator), expected, `${what}: expected ${expected}`), {
    message: what,
  });
}

/** The path of the page's URL. */
export const pathOf = (page) => new URL(page.url()).pathname;

// ---------------------------------------------------------------------------
// The segment form and builder (docs/ui.md, "Segment form")

/**
 * Selects the first option of `select` matching one of `wants`, in order of preference.
 * A want is { label: string|RegExp } (visible text) or { value: string }.
 * Fails with the list of options offered.
 */
export async function chooseOption(select, wants, what) {
  await select.waitFor({ state: 'visible' });
  const options = await select.evaluate((el) =>
    [...el.options].map((o) => ({ value: o.value, label: o.label || o.textContent.trim() })),
  );
  const matches = (o, w) =>
    w.value !== undefined
      ? o.value === w.value
      : w.label instanceof RegExp
        ? w.label.test(o.label)
        : o.label.trim().toLowerCase() === w.label.toLowerCase();
  for (const w of wants) {
    const o = options.find((o) => matches(o, w));
    if (o) {
      await select.selectOption({ value: o.value });
      return o;
    }
  }
  throw new Error(`${what}: none of ${wants.map((w) => w.label ?? `value=${w.value}`).join(', ')} among the options ${JSON.stringify(options)}`);
}

/** Field choices by visible label first, then by field name. */
export const FIELD = {
  newsletter: [{ label: /newsletter/i }, { value: 'newsletter' }],
  interests: [{ label: 'Interests' }, { value: 'interests' }],
  birth_date: [{ label: 'Date of birth' }, { label: /birth/i }, { value: 'birth_date' }],
  country: [{ label: 'Country' }, { value: 'country' }],
  orders: [{ label: /^orders$/i }, { value: 'orders' }],
  in_segment: [{ label: 'In segment' }, { label: /segment/i }],
};

/** Operator choices: the words a marketer reads, then the symbols, then the API's op names. */
export const OP = {
  eq: [{ label: 'is' }, { label: 'equals' }, { label: 'is equal to' }, { label: 'equal to' }, { label: '=' }, { value: 'eq' }, { value: '=' }],
  contains: [{ label: 'contains' }, { label: 'includes' }, { value: 'contains' }],
  gte_date: [
    { label: 'equal to or after' },
    { label: 'on or after' },
    { label: 'is on or after' },
    { label: /^(is )?(on|equal to) or after$/i },
    { label: '>=' },
    { label: '≥' },
    { value: 'gte' },
    { value: '>=' },
  ],
  gt: [{ label: /^(> ?)?(is )?(greater|more) than$/i }, { label: '>' }, { value: 'gt' }, { value: '>' }],
};

export const builderRows = (page) => page.locator('#builder .condition-row');

/**
 * Makes sure row `index` of the builder exists (the form may start with an empty row),
 * clicking "Add condition" as needed, and answers it.
 */
export async function ensureRow(page, index) {
  const rows = builderRows(page);
  await page.locator('#builder').waitFor();
  for (let n = await rows.count(); n <= index; n = await rows.count()) {
    await page.locator('#builder').getByRole('button', { name: /^\+?\s*Add condition$/ }).last().click();
    await eventually(async () => assert.ok((await rows.count()) > n, '"Add condition" should add a .condition-row'));
  }
  return rows.nth(index);
}

/** Sets the value control of a row (labelled "Value"): a select, a checkbox or a text/date/number input. */
export async function setRowValue(row, value) {
  const control = row.getByLabel('Value', { exact: true }).first();
  await control.waitFor({ state: 'visible' });
  const kind = await control.evaluate((el) => (el.tagName === 'SELECT' ? 'select' : el.type === 'checkbox' ? 'checkbox' : 'input'));
  if (kind === 'select') {
    const wants = [{ value: String(value) }, { label: String(value) }];
    if (value === true) wants.push({ label: /^(yes|true|subscribed)$/i });
    if (value === false) wants.push({ label: /^(no|false|not subscribed)$/i });
    await chooseOption(control, wants, 'Value');
  } else if (kind === 'checkbox') {
    await control.setChecked(Boolean(value));
  } else {
    await control.fill(String(value));
  }
}

/**
 * Fills builder row `index`: field, operator, value (value `undefined` leaves it alone).
 * A boolean "is true" may be a single operator without a value control; that is accepted.
 */
export async function fillRow(page, index, { field, op, value }) {
  const row = await ensureRow(page, index);
  await chooseOption(row.getByLabel('Field', { exact: true }), FIELD[field] ?? [{ value: field }], `row ${index + 1} "Field"`);
  const opWants = value === true && op === 'eq' ? [...OP.eq, { label: /^is true$/i }] : OP[op];
  const chosen = await chooseOption(row.getByLabel('Operator', { exact: true }), opWants, `row ${index + 1} "Operator"`);
  if (value !== undefined && !/^is true$/i.test(chosen.label)) await setRowValue(row, value);
  return row;
}

/** The segment id in a segment page's URL (`/ui/segments/{id}`), or null. */
export function segmentIdFromUrl(url) {
  const m = new URL(url).pathname.match(/^\/ui\/segments\/([^/]+)$/);
  return m && m[1] !== 'new' ? decodeURIComponent(m[1]) : null;
}

/** Clicks Save on the segment form and waits for the segment page; answers the segment id. */
export async function saveSegment(page) {
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.waitForURL((u) => segmentIdFromUrl(u.toString()) !== null, { timeout: UI_TIMEOUT });
  return segmentIdFromUrl(page.url());
}

/**
 * Opens the segment page's "More" menu and follows one of its links.
 * The button may carry a decorative arrow ("More ▾"); the entries may be links or menu items.
 */
export async function moreMenu(page, linkName) {
  const button = page.getByRole('button', { name: /^More\s*[▾▼⌄]?$/ });
  await button.click();
  // The entries of the menu the button controls (the page may link the same places elsewhere).
  const controls = await button.getAttribute('aria-controls');
  const menu = controls ? page.locator(`[id="${controls}"]`) : page.getByRole('menu');
  await menu.getByRole('link', { name: linkName, exact: true }).or(menu.getByRole('menuitem', { name: linkName, exact: true })).click();
}

/** A "Type" radio ("Dynamic" / "Static"); its label may go on with a hint ("Dynamic — contacts enter…"). */
export const kindRadio = (page, kind) => page.getByRole('radio', { name: new RegExp(`^${kind}\\b`) });

/** Ids of the rows of `table#contacts` on the page. */
export async function contactRowIds(page) {
  await page.locator('table#contacts').waitFor();
  return page.locator('table#contacts tr[data-contact-id]').evaluateAll((rows) => rows.map((r) => r.dataset.contactId));
}
