// DPoP (RFC 9449) as oauth4webapi runs it, against a rotor with
// dpop.require_nonce on: the authorization request binds the code with
// dpop_jkt, the exchange and every refresh carry proofs (the client learns the
// nonce from a use_dpop_nonce answer and retries once), the tokens are
// DPoP-bound, the public client's refresh token works only with its key, and
// /api/v1/me takes the access token with a proof (ath) but not as Bearer.
//
// Reads ROTOR_ISSUER, ROTOR_USERNAME, ROTOR_PASSWORD, ROTOR_CLIENT_FIRST_PARTY
// (see flow.mjs); run.sh sets them. Exits non-zero when a check fails.

import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';

import { decodeJwt, loopbackRedirectUri, runChecks, settings, userAgent } from './flow.mjs';

const config = settings();
const issuer = new URL(config.issuer);
const insecure = { [oauth.allowInsecureRequests]: true };
const clientId = config.firstParty;
const client = { client_id: clientId };

let as;
let keys;
let dpop;
let tokens;

/** Runs `request` once more when it failed with use_dpop_nonce (RFC 9449 §8). */
async function withNonceRetry(request) {
  try {
    return await request();
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) {
      throw error;
    }
    return request();
  }
}

async function refresh(handle, refreshToken) {
  return withNonceRetry(async () => {
    const response = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshToken, {
      ...insecure,
      DPoP: handle,
    });
    return oauth.processRefreshTokenResponse(as, client, response);
  });
}

async function expectTokenError(promise, code, what) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof oauth.ResponseBodyError, `${what}: expected an OAuth error response, got ${error}`);
    assert.equal(error.error, code, `${what}: error code`);
    return true;
  });
}

await runChecks('oauth4webapi DPoP', [
  [
    'metadata: dpop_signing_alg_values_supported',
    async () => {
      const response = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
      as = await oauth.processDiscoveryResponse(issuer, response);
      assert.ok(
        (as.dpop_signing_alg_values_supported ?? []).includes('ES256'),
        `ES256 is supported (${JSON.stringify(as.dpop_signing_alg_values_supported)})`,
      );
    },
  ],
  [
    'public client: dpop_jkt, sign-in, exchange after use_dpop_nonce, DPoP-bound tokens',
    async () => {
      assert.ok(as, 'no metadata: discovery failed');
      keys = await oauth.generateKeyPair('ES256');
      dpop = oauth.DPoP(client, keys);
      const jkt = await dpop.calculateThumbprint();
      const redirectUri = loopbackRedirectUri();
      const codeVerifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const url = new URL(as.authorization_endpoint);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', clientId);
      url.searchParams.set('redirect_uri', redirectUri);
      url.searchParams.set('scope', 'read write');
      url.searchParams.set('state', state);
      url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
      url.searchParams.set('code_challenge_method', 'S256');
      url.searchParams.set('dpop_jkt', jkt);
      const { callback } = await userAgent(url, {
        redirectUri,
        username: config.username,
        password: config.password,
      });
      const params = oauth.validateAuthResponse(as, client, callback, state);
      // The first attempt has no nonce yet: rotor answers use_dpop_nonce.
      let nonceAsked = false;
      tokens = await (async () => {
        const exchange = async () => {
          const response = await oauth.authorizationCodeGrantRequest(
            as,
            client,
            oauth.None(),
            params,
            redirectUri,
            codeVerifier,
            { ...insecure, DPoP: dpop },
          );
          return oauth.processAuthorizationCodeResponse(as, client, response);
        };
        try {
          return await exchange();
        } catch (error) {
          assert.ok(oauth.isDPoPNonceError(error), `the first exchange asks for a nonce, got ${error}`);
          nonceAsked = true;
          return exchange();
        }
      })();
      assert.ok(nonceAsked, 'dpop.require_nonce: the first proof without a nonce was refused');
      assert.equal(tokens.token_type, 'dpop', 'token_type'); // oauth4webapi lower-cases it
      const { claims } = decodeJwt(tokens.access_token);
      assert.equal(claims.cnf?.jkt, jkt, 'the access token is bound to the key (cnf.jkt)');
    },
  ],
  [
    'refresh: with the key it works and rotates; with another key it is invalid_grant and spends nothing',
    async () => {
      assert.ok(tokens, 'no tokens: the exchange failed');
      const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
      await expectTokenError(refresh(thief, tokens.refresh_token), 'invalid_grant', 'another key');
      const renewed = await refresh(dpop, tokens.refresh_token);
      assert.equal(renewed.token_type, 'dpop', 'token_type');
      assert.notEqual(renewed.refresh_token, tokens.refresh_token, 'the refresh token rotates');
      tokens = renewed;
    },
  ],
  [
    'resource: /api/v1/me with Authorization: DPoP and a proof; as Bearer it is refused',
    async () => {
      assert.ok(tokens, 'no tokens: the exchange failed');
      const me = new URL('/api/v1/me', issuer);
      const response = await withNonceRetry(() =>
        oauth.protectedResourceRequest(tokens.access_token, 'GET', me, undefined, undefined, {
          ...insecure,
          DPoP: dpop,
        }),
      );
      assert.equal(response.status, 200, 'the resource answers');
      assert.equal((await response.json()).client_id, clientId, 'for this client');
      const bearer = await fetch(me, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.equal(bearer.status, 401, 'a DPoP-bound token as Bearer');
      assert.match(bearer.headers.get('www-authenticate') ?? '', /^DPoP error="invalid_token"/, 'the DPoP challenge');
    },
  ],
]);
