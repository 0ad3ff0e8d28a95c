// The authorization code flow with PKCE as oauth4webapi, a strict client, runs it:
// RFC 8414 discovery, the authorization request, RFC 9207 `iss` and `state` checks
// on the callback, the code exchange and a refresh, for a first-party public
// client, a confidential one, a third-party one through the consent page (deny,
// then allow), an offline_access login, and a `plain` challenge that must be refused.
// The user agent is flow.mjs: fetch, a cookie jar and rotor's forms.
//
// Reads ROTOR_ISSUER, ROTOR_USERNAME, ROTOR_PASSWORD, ROTOR_CLIENT_* (see
// flow.mjs); run.sh sets them. Exits non-zero when a check fails.

import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';

import { decodeJwt, loopbackRedirectUri, runChecks, settings, userAgent } from './flow.mjs';

const config = settings();
const issuer = new URL(config.issuer);
// rotor under test listens on plain http on the loopback interface.
const insecure = { [oauth.allowInsecureRequests]: true };

let as;

async function discover() {
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
  return oauth.processDiscoveryResponse(issuer, response);
}

/** The authorize URL with PKCE S256 and a fresh state, and what the callback needs. */
async function authorizationRequest(clientId, scope) {
  const redirectUri = loopbackRedirectUri();
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier);
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('scope', scope);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', codeChallenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return { url, redirectUri, codeVerifier, state };
}

function signIn(request, options = {}) {
  return userAgent(request.url, {
    redirectUri: request.redirectUri,
    username: config.username,
    password: config.password,
    ...options,
  });
}

function titles(pages) {
  return pages.map((p) => p.title);
}

/** The checks every token response of these flows must pass. */
function assertTokenResponse(tokens, { clientId, scope }) {
  assert.equal(tokens.token_type, 'bearer', 'token_type'); // oauth4webapi lower-cases it
  assert.equal(typeof tokens.expires_in, 'number', 'expires_in is a number');
  assert.ok(tokens.expires_in > 0, `expires_in is positive (${tokens.expires_in})`);
  assert.equal(typeof tokens.refresh_token, 'string', 'a refresh token is issued');
  assert.equal(tokens.scope, scope, 'the response scope is exactly the scope asked for');
  const { header, claims } = decodeJwt(tokens.access_token);
  assert.equal(header.typ, 'at+jwt', 'the access token is an RFC 9068 JWT (typ at+jwt)');
  assert.equal(claims.iss, as.issuer, 'the access token names the issuer');
  assert.equal(claims.client_id, clientId, 'the access token names the client');
  assert.ok(claims.exp * 1000 > Date.now(), 'the access token has not expired');
}

/** Runs the callback through validateAuthResponse and exchanges its code. */
async function exchange(request, callback, clientId, clientAuth) {
  const client = { client_id: clientId };
  const params = oauth.validateAuthResponse(as, client, callback, request.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    clientAuth,
    params,
    request.redirectUri,
    request.codeVerifier,
    insecure,
  );
  return { params, tokens: await oauth.processAuthorizationCodeResponse(as, client, response) };
}

async function refresh(clientId, clientAuth, refreshToken) {
  const client = { client_id: clientId };
  const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshToken, insecure);
  return oauth.processRefreshTokenResponse(as, client, response);
}

/** Expects `promise` to reject with an OAuth error body carrying `code`. */
async function expectTokenError(promise, code, what) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof oauth.ResponseBodyError, `${what}: expected an OAuth error response, got ${error}`);
    assert.equal(error.error, code, `${what}: error code`);
    return true;
  });
}

await runChecks('oauth4webapi', [
  [
    'metadata: discovery at /.well-known/oauth-authorization-server',
    async () => {
      as = await discover();
      const base = config.issuer.replace(/\/$/, '');
      assert.equal(as.authorization_endpoint, `${base}/oauth2/authorize`, 'authorization_endpoint');
      assert.equal(as.token_endpoint, `${base}/oauth2/token`, 'token_endpoint');
      assert.deepEqual(as.response_types_supported, ['code'], 'response_types_supported');
      assert.deepEqual(as.code_challenge_methods_supported, ['S256'], 'code_challenge_methods_supported');
      assert.equal(
        as.authorization_response_iss_parameter_supported,
        true,
        'authorization_response_iss_parameter_supported',
      );
      assert.ok(
        (as.grant_types_supported ?? []).includes('authorization_code'),
        `grant_types_supported includes authorization_code (${JSON.stringify(as.grant_types_supported)})`,
      );
    },
  ],
  [
    'first-party public client: wrong password, sign-in, code, token, refresh',
    async () => {
      assert.ok(as, 'no metadata: discovery failed');
      const clientId = config.firstParty;
      const request = await authorizationRequest(clientId, 'read write');
      const { callback, pages } = await signIn(request, { wrongPasswordFirst: true });
      assert.deepEqual(titles(pages), ['Sign in', 'Sign in'], 'pages seen: login, login again after the wrong password');
      assert.equal(callback.searchParams.get('iss'), as.issuer, 'the callback carries iss');
      const { tokens } = await exchange(request, callback, clientId, oauth.None());
      assertTokenResponse(tokens, { clientId, scope: 'read write' });

      const renewed = await refresh(clientId, oauth.None(), tokens.refresh_token);
      assert.equal(typeof renewed.refresh_token, 'string', 'the refresh answer has a new refresh token');
      assert.notEqual(renewed.refresh_token, tokens.refresh_token, 'the refresh token rotates');
      assert.notEqual(renewed.access_token, tokens.access_token, 'a new access token');
      assert.equal(renewed.scope, 'read write', 'the refreshed scope');

      // RFC 9700 §4.14.2: the spent refresh token is refused.
      await expectTokenError(refresh(clientId, oauth.None(), tokens.refresh_token), 'invalid_grant', 'reused refresh token');
      // RFC 6749 §4.1.2: a code is used once.
      const client = { client_id: clientId };
      const params = oauth.validateAuthResponse(as, client, callback, request.state);
      const again = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        oauth.None(),
        params,
        request.redirectUri,
        request.codeVerifier,
        insecure,
      );
      await expectTokenError(oauth.processAuthorizationCodeResponse(as, client, again), 'invalid_grant', 'replayed code');
    },
  ],
  [
    'confidential client (client_secret_basic): code, token with a narrower scope, refresh',
    async () => {
      assert.ok(as, 'no metadata: discovery failed');
      assert.ok(config.confidentialSecret, 'ROTOR_CLIENT_SECRET is not set');
      const clientId = config.confidential;
      const auth = oauth.ClientSecretBasic(config.confidentialSecret);
      const request = await authorizationRequest(clientId, 'read');
      const { callback, pages } = await signIn(request);
      assert.deepEqual(titles(pages), ['Sign in'], 'a first-party client shows no consent page');
      const { tokens } = await exchange(request, callback, clientId, auth);
      assertTokenResponse(tokens, { clientId, scope: 'read' });
      const renewed = await refresh(clientId, auth, tokens.refresh_token);
      assert.equal(renewed.scope, 'read', 'the refreshed scope');
    },
  ],
  [
    'third-party client: deny on the consent page is access_denied',
    async () => {
      assert.ok(as, 'no metadata: discovery failed');
      const clientId = config.thirdParty;
      // Before the allow below, and for fewer scopes than it: a remembered consent
      // (per user, client and scopes) must not hide the page here.
      const request = await authorizationRequest(clientId, 'read');
      const { callback, pages } = await signIn(request, { decision: 'deny' });
      assert.deepEqual(titles(pages), ['Sign in', 'Authorize'], 'pages seen: login, then consent');
      assert.equal(callback.searchParams.get('code'), null, 'no code after deny');
      assert.throws(
        () => oauth.validateAuthResponse(as, { client_id: clientId }, callback, request.state),
        (error) => {
          assert.ok(error instanceof oauth.AuthorizationResponseError, `expected an authorization error, got ${error}`);
          assert.equal(error.error, 'access_denied', 'error');
          return true;
        },
      );
    },
  ],
  [
    'third-party client: sign-in, consent page, allow, code, token',
    async () => {
      assert.ok(as, 'no metadata: discovery failed');
      const clientId = config.thirdParty;
      const request = await authorizationRequest(clientId, 'read write');
      const { callback, pages } = await signIn(request, { decision: 'allow' });
      assert.deepEqual(titles(pages), ['Sign in', 'Authorize'], 'pages seen: login, then consent');
      const consent = pages[1].text;
      for (const scope of ['read', 'write']) {
        assert.ok(consent.includes(scope), `the consent page names the scope ${scope}`);
      }
      const { tokens } = await exchange(request, callback, clientId, oauth.None());
      assertTokenResponse(tokens, { clientId, scope: 'read write' });
    },
  ],
  [
    'offline_access: the client may ask for it and the response grants it',
    async () => {
      assert.ok(as, 'no metadata: discovery failed');
      const clientId = config.offline;
      const request = await authorizationRequest(clientId, 'read offline_access');
      const { callback } = await signIn(request);
      const { tokens } = await exchange(request, callback, clientId, oauth.None());
      assertTokenResponse(tokens, { clientId, scope: 'read offline_access' });
      const renewed = await refresh(clientId, oauth.None(), tokens.refresh_token);
      assert.notEqual(renewed.refresh_token, tokens.refresh_token, 'the offline refresh token rotates');
    },
  ],
  [
    'code_challenge_method=plain is invalid_request at the redirect URI',
    async () => {
      assert.ok(as, 'no metadata: discovery failed');
      const clientId = config.firstParty;
      const request = await authorizationRequest(clientId, 'read');
      request.url.searchParams.set('code_challenge', request.codeVerifier);
      request.url.searchParams.set('code_challenge_method', 'plain');
      const { callback } = await signIn(request);
      assert.equal(callback.searchParams.get('code'), null, 'no code for a plain challenge');
      assert.throws(
        () => oauth.validateAuthResponse(as, { client_id: clientId }, callback, request.state),
        (error) => {
          assert.ok(error instanceof oauth.AuthorizationResponseError, `expected an authorization error, got ${error}`);
          assert.equal(error.error, 'invalid_request', 'error');
          return true;
        },
      );
    },
  ],
]);
