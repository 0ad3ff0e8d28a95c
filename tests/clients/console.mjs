// The admin console in a real browser: Debian's chromium, headless, driven by
// playwright-core. An admin signs in through rotor's own login page, creates a
// confidential client (its secret read off the page, shown once); a user signs in
// twice with the password grant (fetch); the admin finds the user's logins, sees
// the chain of the first after two refreshes and a reuse of the first refresh
// token, revokes the second, whose access token /api/v1/me then refuses. Then the
// admin changes the maximum refreshes on the settings page, edits the client and
// regenerates its secret (the old one is refused), looks a pasted refresh token
// up, searches users and resets a password, filters the audit trail and revokes
// every login of the user. Each page's screenshot goes to docs/console/
// (ROTOR_SCREENSHOTS=DIR puts them in DIR/console).
//
// ROTOR_CONSOLE_URL names the console when it has a listener of its own
// (console.bind): the pages are read there, the sign-in page and the token
// endpoint stay at ROTOR_ISSUER, whose /admin/ must then answer 404.
//
// Reads ROTOR_ISSUER, ROTOR_ADMIN, ROTOR_ADMIN_PASSWORD, ROTOR_USERNAME,
// ROTOR_PASSWORD and CHROMIUM (default /usr/bin/chromium). Exits non-zero when a
// check fails.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { chromium } from 'playwright-core';

const issuer = process.env.ROTOR_ISSUER;
assert.ok(issuer, 'ROTOR_ISSUER is not set: run tests/clients/run.sh');
const consoleUrl = process.env.ROTOR_CONSOLE_URL || issuer;
const admin = process.env.ROTOR_ADMIN || 'root';
const adminPassword = process.env.ROTOR_ADMIN_PASSWORD || '';
const username = process.env.ROTOR_USERNAME || 'alice';
const password = process.env.ROTOR_PASSWORD || '';
const here = path.dirname(fileURLToPath(import.meta.url));
const screenshots = path.join(process.env.ROTOR_SCREENSHOTS || path.join(here, '..', '..', 'docs'), 'console');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const CLIENT = 'console-demo';

async function token(secret, form) {
  return tokenAs(CLIENT, secret, form);
}

async function tokenAs(client, secret, form) {
  const response = await fetch(`${issuer}/oauth2/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(form),
  });
  return { status: response.status, body: await response.json() };
}

async function me(accessToken) {
  const response = await fetch(`${issuer}/api/v1/me`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  return response.status;
}

let browser;
let failed = 0;
try {
  await mkdir(screenshots, { recursive: true });
  browser = await chromium.launch({ executablePath, headless: true });
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(15_000);
  const shot = (name) => page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });

  if (consoleUrl !== issuer) {
    const main = await fetch(`${issuer}/admin/`, { redirect: 'manual' });
    assert.equal(main.status, 404, 'the main listener must not serve the console');
    console.log('ok: the main listener answers 404 at /admin/');
  }

  // The admin signs in through rotor's login page.
  await page.goto(`${consoleUrl}/admin/`);
  assert.equal(await page.title(), 'Sign in');
  assert.ok(page.url().startsWith(`${issuer}/oauth2/`), `the sign-in page is the issuer's: ${page.url()}`);
  await page.locator('input[name="username"]').fill(admin);
  await page.locator('input[name="password"]').fill(adminPassword);
  await Promise.all([page.waitForURL(`${consoleUrl}/admin/`), page.locator('input[name="password"]').press('Enter')]);
  assert.equal(await page.title(), 'Overview · rotor console');
  console.log('ok: the admin signed in through the authorization code flow');

  // A confidential client for the password grant, its secret shown once.
  await page.goto(`${consoleUrl}/admin/clients`);
  await page.locator('#client_id').fill(CLIENT);
  await page.locator('#scopes').fill('read write');
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Create client' }).click()]);
  const secret = (await page.locator('code.secret').textContent()).trim();
  assert.ok(secret.length >= 32, 'the secret is shown');
  await shot('clients');
  console.log('ok: the admin created a client and saw its secret once');

  // A user signs in twice with the password grant; the first login refreshes
  // twice, then its first refresh token is presented again.
  const first = await token(secret, { grant_type: 'password', username, password, scope: 'read' });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const second = await token(secret, { grant_type: 'password', username, password, scope: 'read' });
  assert.equal(second.status, 200, JSON.stringify(second.body));
  let refresh = first.body.refresh_token;
  for (let i = 0; i < 2; i++) {
    const next = await token(secret, { grant_type: 'refresh_token', refresh_token: refresh });
    assert.equal(next.status, 200, JSON.stringify(next.body));
    refresh = next.body.refresh_token;
  }
  const reuse = await token(secret, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
  assert.equal(reuse.status, 400, JSON.stringify(reuse.body));
  assert.equal(await me(second.body.access_token), 200);

  // The admin finds the user's logins and the chain of the first.
  await page.goto(`${consoleUrl}/admin/users`);
  await shot('users');
  await Promise.all([page.waitForLoadState('load'), page.locator('tr', { hasText: username }).getByRole('link', { name: 'logins' }).click()]);
  assert.equal(await page.title(), `Logins of ${username} · rotor console`);
  const rows = page.locator('tbody tr', { hasText: CLIENT });
  assert.equal(await rows.count(), 2);
  const refreshed = rows.filter({ has: page.locator('td', { hasText: /^2$/ }) });
  await Promise.all([page.waitForLoadState('load'), refreshed.locator('a').first().click()]);
  const chain = await page.locator('ol.chain').textContent();
  assert.equal((chain.match(/refreshed/g) || []).length, 2, chain);
  assert.match(chain, /reuse_detected/);
  assert.match(await page.locator('.facts').textContent(), /revoked/);
  await shot('chain');
  console.log('ok: the chain shows two refreshes and the reuse that revoked the login');

  // The admin revokes the second login; its access token stops working.
  await page.goBack();
  const live = page.locator('tbody tr', { hasText: CLIENT }).filter({ hasText: 'active' });
  await Promise.all([page.waitForLoadState('load'), live.getByRole('button', { name: 'Revoke' }).click()]);
  assert.match(await page.locator('.facts').textContent(), /revoked/);
  assert.equal(await me(second.body.access_token), 401);
  console.log('ok: a revoked login\'s access token is refused at /api/v1/me');

  // The maximum refreshes, changed on the settings page, applies at once.
  await page.goto(`${consoleUrl}/admin/settings`);
  const maxRow = page.locator('tbody tr', { hasText: 'refresh.max_refreshes' });
  await maxRow.locator('input[name="value"]').fill('1');
  await Promise.all([page.waitForLoadState('load'), maxRow.getByRole('button', { name: 'Set' }).click()]);
  assert.match(await page.locator('.notice').textContent(), /refresh\.max_refreshes = 1 stored/);
  assert.match(await page.locator('tbody tr', { hasText: 'refresh.max_refreshes' }).textContent(), /database/);
  await shot('settings');
  const limited = await token(secret, { grant_type: 'password', username, password, scope: 'read' });
  const once = await token(secret, { grant_type: 'refresh_token', refresh_token: limited.body.refresh_token });
  assert.equal(once.status, 200, JSON.stringify(once.body));
  const twice = await token(secret, { grant_type: 'refresh_token', refresh_token: once.body.refresh_token });
  assert.equal(twice.status, 400, JSON.stringify(twice.body));
  console.log('ok: the maximum refreshes changed in the console applies');

  // The client's page: edit its scopes, then a new secret; the old one is refused.
  await page.goto(`${consoleUrl}/admin/clients`);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('link', { name: CLIENT }).click()]);
  assert.equal(await page.title(), `Client ${CLIENT} · rotor console`);
  await page.locator('#scopes').fill('read');
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Save' }).click()]);
  assert.equal(await page.locator('#scopes').inputValue(), 'read');
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Regenerate the secret' }).click()]);
  const renewed = (await page.locator('code.secret').textContent()).trim();
  assert.notEqual(renewed, secret);
  await shot('client');
  const old = await token(secret, { grant_type: 'password', username, password });
  assert.equal(old.status, 401, JSON.stringify(old.body));
  const fresh = await token(renewed, { grant_type: 'password', username, password });
  assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
  assert.equal(fresh.body.scope, 'read');
  console.log('ok: the client was edited and its secret regenerated, shown once');

  // A pasted token: what it is, never shown back.
  await page.goto(`${consoleUrl}/admin/lookup`);
  await page.locator('#token').fill(fresh.body.refresh_token);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Look up' }).click()]);
  const facts = await page.locator('.facts').textContent();
  assert.match(facts, /active/);
  assert.match(facts, new RegExp(CLIENT));
  assert.ok(!(await page.content()).includes(fresh.body.refresh_token), 'the token is not shown back');
  await shot('lookup');
  console.log('ok: a pasted refresh token was found by its hash');

  // Users: search, reset a password (shown once).
  await page.goto(`${consoleUrl}/admin/users`);
  await page.locator('#q').fill(username.slice(0, 3));
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Search' }).click()]);
  const userRow = page.locator('tbody tr', { hasText: username });
  await Promise.all([page.waitForLoadState('load'), userRow.getByRole('button', { name: 'Reset' }).click()]);
  const newPassword = (await page.locator('.notice code.secret').textContent()).trim();
  await shot('users');
  const reset = await token(renewed, { grant_type: 'password', username, password: newPassword });
  assert.equal(reset.status, 200, JSON.stringify(reset.body));
  console.log('ok: a password was reset and shown once');

  // The audit trail, filtered by kind.
  await page.goto(`${consoleUrl}/admin/audit`);
  await page.locator('#kind').selectOption('refresh');
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Filter' }).click()]);
  const kinds = await page.locator('tbody tr td:nth-child(2)').allTextContents();
  assert.ok(kinds.length > 0 && kinds.every((k) => k === 'refresh'), kinds.join(','));
  await shot('audit');
  console.log('ok: the audit trail filters by kind');

  // Every login of the user, revoked at once.
  await page.goto(`${consoleUrl}/admin/families?user=${encodeURIComponent(username)}`);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: `Revoke all logins of ${username}` }).click()]);
  assert.equal(await me(reset.body.access_token), 401);
  await shot('families');
  console.log('ok: every login of the user was revoked');

  await page.goto(`${consoleUrl}/admin/keys`);
  await shot('keys');
  await page.goto(`${consoleUrl}/admin/`);
  await shot('overview');
} catch (e) {
  failed = 1;
  console.error(e);
} finally {
  await browser?.close();
}
process.exit(failed);
