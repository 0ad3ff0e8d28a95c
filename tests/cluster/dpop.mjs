// DPoP (RFC 9449) through the balancer and across instances: the DPoP part of
// run.sh. A public client that requires nonces signs its proofs with WebCrypto
// (ES256), so nothing beyond Node itself is needed.
//
// Prints one `ok - …` or `FAIL - …` line per check.
// Usage: node dpop.mjs LB_URL CLIENT_ID USERNAME PASSWORD PORT PORT PORT
//
// nginx passes `Host: rotor` (its upstream's name) to the instances, and the
// balancer's URL is `tokens.issuer`: every proof's `htu` is that public URL, so
// the checks also show that rotor takes `htu` from the issuer, never from Host.

import { webcrypto as crypto } from 'node:crypto'

const [lb, clientId, username, password, ...ports] = process.argv.slice(2)
const direct = ports.map((p) => `http://127.0.0.1:${p}`)
let failed = 0

function report(ok, what, detail = '') {
  if (!ok) failed += 1
  console.log(`${ok ? 'ok' : 'FAIL'} - ${what}${!ok && detail ? `: ${detail}` : ''}`)
}

const b64 = (bytes) => Buffer.from(bytes).toString('base64url')
const sha256 = async (text) =>
  b64(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))))

async function newKey() {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
  ])
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey)
  return { privateKey: pair.privateKey, jwk: { kty, crv, x, y } }
}

/** The newest `DPoP-Nonce` any instance answered with; every proof carries it. */
let nonce

/** A proof for `method` on the issuer's `path`, with `extra` claims. */
async function proof(key, method, path, extra = {}) {
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk }
  const claims = {
    jti: b64(crypto.getRandomValues(new Uint8Array(16))),
    htm: method,
    htu: `${lb}${path}`,
    iat: Math.floor(Date.now() / 1000),
    nonce,
    ...extra,
  }
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    key.privateKey,
    new TextEncoder().encode(input),
  )
  return `${input}.${b64(new Uint8Array(signature))}`
}

/** A proof for the token endpoint. */
const tokenProof = (key) => proof(key, 'POST', '/oauth2/token')

/** POSTs `form` (plus client_id) to `base`'s token endpoint with a DPoP header. */
async function token(base, form, dpop) {
  const res = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', dpop },
    body: new URLSearchParams({ ...form, client_id: clientId }),
  })
  nonce = res.headers.get('dpop-nonce') ?? nonce
  return { status: res.status, body: await res.json(), nonce: res.headers.get('dpop-nonce') }
}

/** A refresh of `refreshToken` at `base` with the proof `dpop`. */
const refresh = (base, refreshToken, dpop) =>
  token(base, { grant_type: 'refresh_token', refresh_token: refreshToken }, dpop)

const show = (answer) => `${answer.status} ${JSON.stringify(answer.body)}`

const key = await newKey()
const thief = await newKey()
const passwordForm = { grant_type: 'password', username, password }

// Nonces (§8): one instance asks for a nonce, another accepts it.
const asked = await token(direct[0], passwordForm, await tokenProof(key))
report(
  asked.status === 400 && asked.body.error === 'use_dpop_nonce' && (asked.nonce ?? '').length >= 22,
  'a proof without a nonce is answered use_dpop_nonce with a DPoP-Nonce',
  show(asked),
)
const login = await token(direct[1], passwordForm, await tokenProof(key))
report(
  login.status === 200 && login.body.token_type === 'DPoP',
  'the nonce of one instance is accepted by another, and the token is DPoP-bound',
  show(login),
)
let refreshToken = login.body.refresh_token

// A bound refresh token, rotated through the balancer: every instance in turn.
let rotated = 0
let last = login
for (let i = 0; i < 6; i += 1) {
  last = await refresh(lb, refreshToken, await tokenProof(key))
  if (last.status !== 200 || last.body.token_type !== 'DPoP') break
  rotated += 1
  refreshToken = last.body.refresh_token
}
report(rotated === 6, 'six refreshes with proofs through the balancer rotate the bound token', show(last))

// Another key, on every instance: refused, and the token stays good.
let refusedEverywhere = true
for (const base of direct) {
  const stolen = await refresh(base, refreshToken, await tokenProof(thief))
  if (stolen.status !== 400 || stolen.body.error !== 'invalid_grant') refusedEverywhere = false
}
report(refusedEverywhere, 'a proof of another key is invalid_grant on every instance')
const own = await refresh(lb, refreshToken, await tokenProof(key))
report(own.status === 200, 'the token refused for the wrong key still refreshes with its own', show(own))

// Replay (§11.1): a proof spent on one instance is refused by the others.
const once = await tokenProof(key)
const first = await refresh(direct[0], own.body.refresh_token, once)
report(first.status === 200, 'a fresh proof is accepted by the first instance', show(first))
let replayRefused = true
for (const base of direct.slice(1)) {
  const replay = await refresh(base, first.body.refresh_token, once)
  if (replay.status !== 400 || replay.body.error !== 'invalid_dpop_proof') replayRefused = false
}
report(replayRefused, 'the same proof replayed to each other instance is invalid_dpop_proof')

// The resource side (§7): the bound access token works only with a proof.
const accessToken = first.body.access_token
const me = await fetch(`${lb}/api/v1/me`, {
  headers: {
    authorization: `DPoP ${accessToken}`,
    dpop: await proof(key, 'GET', '/api/v1/me', { ath: await sha256(accessToken) }),
  },
})
report(me.status === 200, 'the API behind the balancer takes the bound token with its proof', `${me.status}`)
const asBearer = await fetch(`${lb}/api/v1/me`, { headers: { authorization: `Bearer ${accessToken}` } })
report(
  asBearer.status === 401 && (asBearer.headers.get('www-authenticate') ?? '').startsWith('DPoP'),
  'the bound token sent as Bearer is 401 with a DPoP challenge',
  `${asBearer.status} ${asBearer.headers.get('www-authenticate')}`,
)

process.exitCode = failed === 0 ? 0 : 1
