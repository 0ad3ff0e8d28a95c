// The authorization code flow in a real browser: Debian's chromium, headless,
// driven by playwright-core. It opens the authorize URL of a third-party client
// (PKCE S256), types the username and password into rotor's login page, submits it
// with Enter, allows on the consent page, and must land on the redirect URI (a
// small server of its own on a free loopback port) with a code, the state it sent
// and rotor's `iss`; then the code is exchanged. Screenshots of the login and
// consent pages go to docs/login.png and docs/consent.png (ROTOR_SCREENSHOTS=DIR
// puts them elsewhere).
//
// Reads ROTOR_ISSUER, ROTOR_USERNAME, ROTOR_PASSWORD, ROTOR_CLIENT_BROWSER and
// CHROMIUM (default /usr/bin/chromium). Exits non-zero when a check fails.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import * as oauth from 'oauth4webapi';
import { chromium } from 'playwright-core';

import { runChecks, settings } from './flow.mjs';

const config = settings();
const issuer = new URL(config.issuer);
const insecure = { [oauth.allowInsecureRequests]: true };
const here = path.dirname(fileURLToPath(import.meta.url));
const screenshots = process.env.ROTOR_SCREENSHOTS || path.join(here, '..', '..', 'docs');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = 15_000;

/** The client's redirect URI: a loopback server that answers any /callback. */
async function startCallbackServer() {
  const hits = [];
  const server = createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Signed in</title><p>The client got its answer.</p>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { server, hits, redirectUri: `http://127.0.0.1:${port}/callback` };
}

const callback = await startCallbackServer();
let browser;
let page;
let as;
const request = {};
const loginHeaders = {};
const consoleErrors = [];

/** Where the page is, for a failure message. */
async function whereabouts() {
  const title = await page.title().catch(() => '?');
  const errors = consoleErrors.length ? `; console errors: ${consoleErrors.join(' | ')}` : '';
  return `the page is at ${page.url()} (title ${JSON.stringify(title)})${errors}`;
}

try {
  await runChecks('browser', [
    [
      'chromium starts headless',
      async () => {
        browser = await chromium.launch({ executablePath, headless: true });
        const context = await browser.newContext({ viewport: { width: 720, height: 640 } });
        page = await context.newPage();
        page.setDefaultTimeout(TIMEOUT_MS);
        // A refused navigation (a CSP form-action that does not allow the redirect
        // URI, say) shows only here.
        page.on('console', (message) => {
          if (message.type() === 'error') consoleErrors.push(message.text());
        });
      },
    ],
    [
      'the authorize URL shows the login page',
      async () => {
        assert.ok(page, 'no browser');
        as = await oauth.processDiscoveryResponse(
          issuer,
          await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
        );
        request.codeVerifier = oauth.generateRandomCodeVerifier();
        request.state = oauth.generateRandomState();
        const url = new URL(as.authorization_endpoint);
        url.searchParams.set('response_type', 'code');
        url.searchParams.set('client_id', config.browser);
        url.searchParams.set('redirect_uri', callback.redirectUri);
        url.searchParams.set('scope', 'read write');
        url.searchParams.set('state', request.state);
        url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(request.codeVerifier));
        url.searchParams.set('code_challenge_method', 'S256');
        const response = await page.goto(url.href);
        assert.ok(response, 'no response to the authorize URL');
        Object.assign(loginHeaders, await response.allHeaders());
        assert.equal(response.status(), 200, 'the login page status');
        assert.equal(await page.title(), 'Sign in', 'the login page title');
      },
    ],
    [
      'the login page carries the security headers',
      async () => {
        assert.ok(Object.keys(loginHeaders).length > 0, 'no login page');
        const csp = loginHeaders['content-security-policy'] ?? '';
        assert.match(csp, /frame-ancestors 'none'/, `Content-Security-Policy has frame-ancestors 'none': ${csp}`);
        // No inline script: script-src, or default-src when there is none, must not
        // allow 'unsafe-inline' (inline styles are another matter).
        const directives = new Map(
          csp
            .split(';')
            .map((d) => d.trim().split(/\s+/))
            .filter((d) => d[0])
            .map(([name, ...values]) => [name.toLowerCase(), values]),
        );
        const scripts = directives.get('script-src') ?? directives.get('default-src');
        assert.ok(scripts, `Content-Security-Policy has script-src or default-src: ${csp}`);
        assert.ok(!scripts.includes("'unsafe-inline'"), `Content-Security-Policy allows no inline script: ${csp}`);
        assert.equal(loginHeaders['x-content-type-options'], 'nosniff', 'X-Content-Type-Options');
        assert.equal(loginHeaders['referrer-policy'], 'no-referrer', 'Referrer-Policy');
      },
    ],
    [
      'typing into the login page and pressing Enter shows the consent page',
      async () => {
        assert.equal(await page?.title(), 'Sign in', 'not on the login page');
        await page.locator('input[name="username"]').pressSequentially(config.username);
        await page.locator('input[name="password"]').pressSequentially(config.password);
        await mkdir(screenshots, { recursive: true });
        await page.screenshot({ path: path.join(screenshots, 'login.png'), fullPage: true });
        const navigation = page.waitForNavigation();
        await page.locator('input[name="password"]').press('Enter');
        await navigation;
        assert.equal(await page.title(), 'Authorize', `after signing in, ${await whereabouts()}`);
        const text = (await page.textContent('body')) ?? '';
        for (const scope of ['read', 'write']) {
          assert.ok(text.includes(scope), `the consent page names the scope ${scope}`);
        }
        await page.screenshot({ path: path.join(screenshots, 'consent.png'), fullPage: true });
      },
    ],
    [
      'allow lands on the redirect URI with code, state and iss',
      async () => {
        assert.equal(await page?.title(), 'Authorize', 'not on the consent page');
        const target = new URL(callback.redirectUri);
        await page.locator('[name="decision"][value="allow"]').click();
        try {
          await page.waitForURL((url) => url.origin === target.origin && url.pathname === target.pathname);
        } catch (error) {
          throw new Error(`allow did not reach the redirect URI: ${await whereabouts()}`, { cause: error });
        }
        const landed = new URL(page.url());
        assert.ok(landed.searchParams.get('code'), `no code in ${landed.search}`);
        assert.equal(landed.searchParams.get('state'), request.state, 'state');
        assert.equal(landed.searchParams.get('iss'), as.issuer, 'iss');
        assert.equal(await page.title(), 'Signed in', 'the redirect URI page was shown');
        const hits = callback.hits.filter((hit) => new URL(hit, target).pathname === target.pathname);
        assert.equal(hits.length, 1, 'the redirect URI was requested once'); // the browser asks for /favicon.ico too
        request.landed = landed;
      },
    ],
    [
      'the code from the browser exchanges for tokens',
      async () => {
        assert.ok(request.landed, 'no callback');
        const client = { client_id: config.browser };
        const params = oauth.validateAuthResponse(as, client, request.landed, request.state);
        const response = await oauth.authorizationCodeGrantRequest(
          as,
          client,
          oauth.None(),
          params,
          callback.redirectUri,
          request.codeVerifier,
          insecure,
        );
        const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
        assert.equal(tokens.scope, 'read write', 'the response scope');
        assert.equal(typeof tokens.refresh_token, 'string', 'a refresh token is issued');
      },
    ],
  ]);
} finally {
  await browser?.close();
  callback.server.close();
}
