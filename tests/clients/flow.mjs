// What the fetch-driven checks share: the settings they read from the environment,
// a cookie jar, a reader for rotor's login and consent forms, the user agent's
// side of the authorization request (GET, forms, redirects, by hand), and a
// runner that prints one line per check and a closing count.

import assert from 'node:assert/strict';

/** The settings run.sh passes; every check reads them from here. */
export function settings() {
  const issuer = process.env.ROTOR_ISSUER;
  if (!issuer) {
    throw new Error('ROTOR_ISSUER is not set: run tests/clients/run.sh, or export it');
  }
  const env = (name, fallback) => process.env[name] || fallback;
  return {
    issuer,
    username: env('ROTOR_USERNAME', 'alice'),
    password: env('ROTOR_PASSWORD', ''),
    firstParty: env('ROTOR_CLIENT_FIRST_PARTY', 'spa'),
    thirdParty: env('ROTOR_CLIENT_THIRD_PARTY', 'partner'),
    // A third-party client of its own, so that no consent given before hides the page.
    browser: env('ROTOR_CLIENT_BROWSER', 'viewer'),
    offline: env('ROTOR_CLIENT_OFFLINE', 'native'),
    confidential: env('ROTOR_CLIENT_CONFIDENTIAL', 'web'),
    confidentialSecret: env('ROTOR_CLIENT_SECRET', ''),
  };
}

/**
 * A redirect URI on the loopback interface with a port of its own: the clients are
 * registered with `http://127.0.0.1/callback`, which matches any port
 * (RFC 8252 §7.3). Nothing listens on it: the user agent below stops at the
 * redirect and hands its URL to the client.
 */
export function loopbackRedirectUri(port = 20000 + Math.floor(Math.random() * 40000)) {
  return `http://127.0.0.1:${port}/callback`;
}

/**
 * Cookies by name for one origin, which is all these checks talk to. A cookie
 * marked `Secure` is refused over http, because no client would send it back
 * there (requests does not; RFC 6265bis §5.7).
 */
export class CookieJar {
  #cookies = new Map();

  /** Takes the cookies a response sets. */
  store(url, response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const attrs = new Map(
        attributes.map((a) => {
          const i = a.indexOf('=');
          return i < 0
            ? [a.trim().toLowerCase(), '']
            : [a.slice(0, i).trim().toLowerCase(), a.slice(i + 1).trim()];
        }),
      );
      if (attrs.has('secure') && new URL(url).protocol !== 'https:') {
        throw new Error(
          `the cookie ${name} is set with Secure over http (${new URL(url).pathname}): ` +
            'no client sends it back there, so the sign-in cannot go on',
        );
      }
      const maxAge = attrs.has('max-age') ? Number(attrs.get('max-age')) : undefined;
      const expires = attrs.has('expires') ? Date.parse(attrs.get('expires')) : undefined;
      if ((maxAge !== undefined && maxAge <= 0) || (expires !== undefined && expires <= Date.now())) {
        this.#cookies.delete(name);
      } else {
        this.#cookies.set(name, value);
      }
    }
  }

  /** The `Cookie` request header, or undefined when the jar is empty. */
  header() {
    if (this.#cookies.size === 0) return undefined;
    return [...this.#cookies].map(([n, v]) => `${n}=${v}`).join('; ');
  }

  get size() {
    return this.#cookies.size;
  }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** Decodes the character references an HTML attribute or text may hold. */
export function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ref) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[ref.toLowerCase()] ?? whole;
  });
}

function attributes(tag) {
  const out = {};
  const re = /([^\s=\/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  for (const m of tag.matchAll(re)) {
    out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/**
 * The parts of a page these checks look at: its title, its text, and each form
 * with its method, action, inputs and submit buttons.
 */
export function parsePage(html) {
  const title = decodeEntities(/<title[^>]*>([\s\S]*?)<\/title>/i.exec(html)?.[1] ?? '').trim();
  const text = decodeEntities(
    html
      .replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ')
      .replace(/<[^>]*>/g, ' ')
      .replace(/\s+/g, ' '),
  ).trim();
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1]);
    const inputs = [...m[2].matchAll(/<input\b([^>]*)>/gi)].map((i) => attributes(i[1]));
    const buttons = [
      ...[...m[2].matchAll(/<button\b([^>]*)>/gi)]
        .map((b) => attributes(b[1]))
        .filter((b) => (b.type ?? 'submit').toLowerCase() === 'submit'),
      ...inputs.filter((i) => (i.type ?? '').toLowerCase() === 'submit'),
    ];
    forms.push({
      method: (attrs.method ?? 'get').toLowerCase(),
      action: attrs.action ?? '',
      inputs: inputs.filter((i) => (i.type ?? 'text').toLowerCase() !== 'submit'),
      buttons,
    });
  }
  return { title, text, forms };
}

/** The one POST form of a page, as rotor's pages have. */
function postForm(page, what) {
  const forms = page.forms.filter((f) => f.method === 'post');
  assert.equal(forms.length, 1, `the ${what} page should have one <form method="post">, it has ${forms.length}`);
  return forms[0];
}

/** Every hidden input of a form, as a browser posts them back. */
function hiddenFields(form) {
  const body = new URLSearchParams();
  for (const input of form.inputs) {
    if ((input.type ?? '').toLowerCase() === 'hidden' && input.name) {
      body.append(input.name, input.value ?? '');
    }
  }
  return body;
}

/** Whether `url` is the redirect URI (same origin and path), whatever its query. */
function isRedirect(url, redirectUri) {
  const target = new URL(redirectUri);
  return url.origin === target.origin && url.pathname === target.pathname;
}

/**
 * The user agent's side of an authorization request, without a browser: GET the
 * authorize URL, sign in through the login form, answer the consent form when one
 * is shown, and follow every redirect by hand until one goes to the redirect URI.
 * Nothing is fetched there; its URL is returned for the client to validate.
 *
 * `wrongPasswordFirst` submits a wrong password once and expects the login page
 * again (status 200 or 400) before signing in for real. `decision` is the consent
 * button to press (`allow` or `deny`).
 *
 * Returns `{ callback: URL, pages: [{ title, status, text }] }`: every HTML page seen.
 */
export async function userAgent(authorizeUrl, options) {
  const { redirectUri, username, password, decision = 'allow', wrongPasswordFirst = false } = options;
  const jar = options.jar ?? new CookieJar();
  const pages = [];
  let request = { url: new URL(authorizeUrl), method: 'GET', body: undefined, origin: undefined };
  let loginsPosted = 0;
  const loginsAllowed = wrongPasswordFirst ? 2 : 1;
  let consentsPosted = 0;

  for (let step = 0; step < 12; step += 1) {
    const headers = {};
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    if (request.body) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      // A browser's form POST carries Origin; a CSRF check may look at it.
      headers.origin = request.origin;
    }
    const response = await fetch(request.url, {
      method: request.method,
      body: request.body,
      headers,
      redirect: 'manual',
    });
    jar.store(request.url, response);

    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get('location');
      assert.ok(location, `${request.method} ${request.url.pathname} answered ${response.status} without Location`);
      const next = new URL(location, request.url);
      await response.body?.cancel();
      if (isRedirect(next, redirectUri)) {
        assert.ok(
          !(wrongPasswordFirst && loginsPosted === 1),
          `a wrong password was answered with a redirect to the client: ${next.search}`,
        );
        return { callback: next, pages, jar };
      }
      request = { url: next, method: 'GET', body: undefined, origin: undefined };
      continue;
    }

    const html = await response.text();
    const page = parsePage(html);
    pages.push({ title: page.title, status: response.status, text: page.text });
    const where = `${request.method} ${request.url.pathname} (status ${response.status}, title ${JSON.stringify(page.title)})`;

    if (page.title === 'Sign in') {
      assert.ok(
        [200, 400].includes(response.status),
        `the login page came with status ${response.status}, expected 200 or 400: ${where}`,
      );
      assert.ok(
        loginsPosted < loginsAllowed,
        `the login page came back after signing in with the right password: ${where}: ${page.text.slice(0, 300)}`,
      );
      const form = postForm(page, 'login');
      const names = form.inputs.map((i) => i.name);
      for (const field of ['username', 'password', 'csrf_token']) {
        assert.ok(names.includes(field), `the login form has no input named ${field} (it has ${names.join(', ')})`);
      }
      const body = hiddenFields(form);
      body.set('username', username);
      const wrong = wrongPasswordFirst && loginsPosted === 0;
      body.set('password', wrong ? `${password}-wrong` : password);
      const submit = form.buttons.find((b) => b.name);
      if (submit) body.append(submit.name, submit.value ?? '');
      loginsPosted += 1;
      request = { url: new URL(form.action, request.url), method: 'POST', body: body.toString(), origin: request.url.origin };
      continue;
    }

    if (page.title === 'Authorize') {
      assert.equal(response.status, 200, `the consent page came with status ${response.status}: ${where}`);
      assert.equal(consentsPosted, 0, `the consent page came back after it was answered: ${where}`);
      const form = postForm(page, 'consent');
      const choices = form.buttons.filter((b) => b.name === 'decision').map((b) => b.value);
      assert.deepEqual(
        [...choices].sort(),
        ['allow', 'deny'],
        `the consent form should have two buttons name="decision", allow and deny; it has ${JSON.stringify(choices)}`,
      );
      const body = hiddenFields(form);
      body.append('decision', decision);
      consentsPosted += 1;
      request = { url: new URL(form.action, request.url), method: 'POST', body: body.toString(), origin: request.url.origin };
      continue;
    }

    throw new Error(`expected the login page, the consent page or a redirect; got ${where}: ${page.text.slice(0, 300)}`);
  }
  throw new Error('no redirect to the redirect URI after 12 requests');
}

/** The header and claims of a JWT, without checking its signature. */
export function decodeJwt(jwt) {
  const parts = jwt.split('.');
  assert.equal(parts.length, 3, 'the access token is not a JWS in compact form (three dot-separated parts)');
  const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  return { header: decode(parts[0]), claims: decode(parts[1]) };
}

const SECRETS = new Set(['code', 'access_token', 'refresh_token', 'id_token', 'client_secret', 'password']);

/** A JSON.stringify replacer that prints no credential, and query strings as text. */
function redact(key, value) {
  if (SECRETS.has(key) && typeof value === 'string') return '[redacted]';
  if (value instanceof URLSearchParams) {
    const copy = new URLSearchParams(value);
    for (const name of SECRETS) if (copy.has(name)) copy.set(name, '[redacted]');
    return copy.toString();
  }
  return value;
}

/** A failure's message with what oauth4webapi attached to it (error code, body). */
export function describe(error) {
  // One line per failure: assert's diffs span several.
  const parts = [String(error?.message ?? error).replace(/\s*\n\s*/g, ' ')];
  if (error?.code) parts.push(`code=${error.code}`);
  if (error?.error) parts.push(`error=${error.error}`);
  if (error?.error_description) parts.push(`error_description=${JSON.stringify(error.error_description)}`);
  if (error?.status) parts.push(`status=${error.status}`);
  const cause = error?.cause;
  if (cause instanceof URLSearchParams) parts.push(`parameters=${redact('', cause)}`);
  else if (cause && typeof cause === 'object' && !(cause instanceof Error)) {
    try {
      parts.push(`cause=${JSON.stringify(cause, redact)}`);
    } catch {
      // not serialisable: the message says enough
    }
  }
  return parts.join(' ');
}

/**
 * Runs each check in order, prints `ok NAME` or `FAIL NAME: why`, then
 * `LABEL: N passed, N failed`, and sets a non-zero exit code on any failure.
 */
export async function runChecks(label, checks) {
  let passed = 0;
  let failed = 0;
  for (const [name, check] of checks) {
    try {
      await check();
      passed += 1;
      console.log(`ok   ${name}`);
    } catch (error) {
      failed += 1;
      console.log(`FAIL ${name}: ${describe(error)}`);
      if (process.env.ROTOR_CLIENTS_DEBUG && error?.stack) console.log(error.stack);
    }
  }
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  if (failed > 0) process.exitCode = 1;
}
