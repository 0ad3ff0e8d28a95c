"""The authorization code flow as requests-oauthlib runs it against rotor.

OAuth2Session with pkce="S256" must get tokens whose scope is exactly the one
asked for (oauthlib raises when it differs) and refresh them; with pkce="plain"
the authorization request must come back to the redirect URI as invalid_request,
which fetch_token raises: both as OAuth2Session sends it (oauthlib leaves the
challenge out for plain) and with the plain challenge added. The session's own cookies carry the sign-in through
rotor's login form, parsed with html.parser.

Reads ROTOR_ISSUER, ROTOR_USERNAME, ROTOR_PASSWORD and ROTOR_CLIENT_FIRST_PARTY;
run.sh sets them. Exits non-zero when a check fails.
"""

import os
import random
import sys
import traceback
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

# oauthlib refuses http URLs without this; rotor under test listens on loopback http.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
# Never relax the scope check: a silently different scope must fail the check.
os.environ.pop("OAUTHLIB_RELAX_TOKEN_SCOPE", None)

from oauthlib.oauth2.rfc6749.errors import OAuth2Error  # noqa: E402
from requests_oauthlib import OAuth2Session  # noqa: E402

ISSUER = os.environ.get("ROTOR_ISSUER", "")
USERNAME = os.environ.get("ROTOR_USERNAME", "alice")
PASSWORD = os.environ.get("ROTOR_PASSWORD", "")
CLIENT_ID = os.environ.get("ROTOR_CLIENT_FIRST_PARTY", "spa")


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


class Page(HTMLParser):
    """The title and the POST forms of a page, with their inputs and buttons."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.forms = []
        self._in_title = False
        self._form = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self._form = {
                "method": attrs.get("method", "get").lower(),
                "action": attrs.get("action", ""),
                "inputs": [],
                "buttons": [],
            }
            self.forms.append(self._form)
        elif self._form is not None and tag == "input":
            if attrs.get("type", "text").lower() == "submit":
                self._form["buttons"].append(attrs)
            else:
                self._form["inputs"].append(attrs)
        elif self._form is not None and tag == "button":
            if attrs.get("type", "submit").lower() == "submit":
                self._form["buttons"].append(attrs)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag == "form":
            self._form = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def is_redirect_uri(url, redirect_uri):
    a, b = urlsplit(url), urlsplit(redirect_uri)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)


def user_agent(session, authorize_url, redirect_uri):
    """Follows the authorization request by hand through rotor's login page (and
    a consent page, answered with allow) until a redirect goes to the redirect
    URI, and returns that URL. The session keeps the cookies."""
    url, method, data, origin = authorize_url, "GET", None, None
    logins = 0
    for _ in range(12):
        headers = {"Origin": origin} if data is not None else {}
        response = session.request(method, url, data=data, headers=headers, allow_redirects=False)
        for cookie in response.cookies:
            expect(not (cookie.secure and url.startswith("http:")),
                   f"the cookie {cookie.name} is set with Secure over http ({urlsplit(url).path}): "
                   "requests never sends it back there, so the sign-in cannot go on")
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location")
            expect(location, f"{method} {url} answered {response.status_code} without Location")
            target = urljoin(url, location)
            if is_redirect_uri(target, redirect_uri):
                return target
            url, method, data, origin = target, "GET", None, None
            continue
        page = Page(response.text)
        title = page.title.strip()
        where = f"{method} {urlsplit(url).path} (status {response.status_code}, title {title!r})"
        if title not in ("Sign in", "Authorize"):
            text = " ".join(response.text.split())[:300]
            raise CheckFailed(f"expected the login page, the consent page or a redirect; got {where}: {text}")
        posts = [f for f in page.forms if f["method"] == "post"]
        expect(len(posts) == 1, f"{where}: expected one POST form, found {len(posts)}")
        form = posts[0]
        data = {i["name"]: i.get("value", "") for i in form["inputs"]
                if i.get("type", "").lower() == "hidden" and i.get("name")}
        if title == "Sign in":
            expect(response.status_code in (200, 400), f"{where}: the login page should come with 200 or 400")
            expect(logins == 0, f"{where}: the login page came back after signing in")
            names = {i.get("name") for i in form["inputs"]}
            for field in ("username", "password", "csrf_token"):
                expect(field in names, f"{where}: the login form has no input named {field}")
            data["username"] = USERNAME
            data["password"] = PASSWORD
            logins += 1
        else:
            data["decision"] = "allow"
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        url, method = urljoin(url, form["action"]), "POST"
    raise CheckFailed("no redirect to the redirect URI after 12 requests")


def metadata():
    session = OAuth2Session()
    response = session.get(ISSUER.rstrip("/") + "/.well-known/oauth-authorization-server")
    expect(response.status_code == 200, f"metadata answered {response.status_code}")
    return response.json()


def redirect_uri():
    # Registered as http://127.0.0.1/callback: any loopback port matches (RFC 8252 §7.3).
    return f"http://127.0.0.1:{random.randint(20000, 59999)}/callback"


def check_s256(meta):
    callback_uri = redirect_uri()
    session = OAuth2Session(CLIENT_ID, redirect_uri=callback_uri, scope=["read", "write"], pkce="S256")
    url, state = session.authorization_url(meta["authorization_endpoint"])
    query = parse_qs(urlsplit(url).query)
    expect(query.get("code_challenge_method") == ["S256"], f"the authorize URL asks for S256: {query}")

    callback = user_agent(session, url, callback_uri)
    params = parse_qs(urlsplit(callback).query)
    expect("code" in params, f"the callback has no code: {urlsplit(callback).query}")
    expect(params.get("state") == [state], "the callback carries the state sent")
    expect(params.get("iss") == [meta["issuer"]], f"the callback carries iss={meta['issuer']}: {params.get('iss')}")

    # A public client sends its client_id in the body and no Authorization header.
    # oauthlib raises a Warning when the response scope differs from the one asked for.
    token = session.fetch_token(meta["token_endpoint"], authorization_response=callback, include_client_id=True)
    expect(token.get("token_type", "").lower() == "bearer", f"token_type: {token.get('token_type')}")
    expect(token.get("scope") == ["read", "write"], f"the response scope is the one asked for: {token.get('scope')}")
    expect(token.get("access_token", "").count(".") == 2, "the access token is a JWT")
    expect(token.get("refresh_token"), "a refresh token is issued")

    renewed = session.refresh_token(meta["token_endpoint"], client_id=CLIENT_ID)
    expect(renewed.get("refresh_token") and renewed["refresh_token"] != token["refresh_token"],
           "the refresh answer carries a new refresh token")
    expect(renewed.get("scope") == ["read", "write"], f"the refreshed scope: {renewed.get('scope')}")


def refused_as_invalid_request(session, meta, url, state, callback_uri):
    """Signs in for the authorize URL and expects the redirect to carry
    invalid_request and no code, which fetch_token must raise."""
    callback = user_agent(session, url, callback_uri)
    params = parse_qs(urlsplit(callback).query)
    expect("code" not in params, f"the request got a code: {urlsplit(callback).query}")
    expect(params.get("error") == ["invalid_request"], f"the callback error: {params.get('error')}")
    expect(params.get("state") == [state], "the error redirect carries the state sent")
    expect(params.get("iss") == [meta["issuer"]], f"the error redirect carries iss: {params.get('iss')}")
    # oauthlib raises the first of its error classes with that code, which for
    # invalid_request is InvalidClientIdError: the code is what counts.
    try:
        session.fetch_token(meta["token_endpoint"], authorization_response=callback, include_client_id=True)
    except OAuth2Error as error:
        expect(error.error == "invalid_request", f"fetch_token raised {type(error).__name__} ({error.error})")
        return
    raise CheckFailed("fetch_token did not raise on the invalid_request callback")


def plain_session():
    callback_uri = redirect_uri()
    session = OAuth2Session(CLIENT_ID, redirect_uri=callback_uri, scope=["read"], pkce="plain")
    return session, callback_uri


def check_plain_as_sent(meta):
    # oauthlib (3.x and 4.0.1) computes no challenge for "plain", so OAuth2Session
    # sends no code_challenge at all, and a code_verifier later: a public client
    # without PKCE must be refused all the same (OAuth 2.1 §4.1.1).
    session, callback_uri = plain_session()
    url, state = session.authorization_url(meta["authorization_endpoint"])
    refused_as_invalid_request(session, meta, url, state, callback_uri)


def check_plain_challenge(meta):
    # The request pkce="plain" means to send (RFC 7636 §4.3: the challenge is the
    # verifier), added when the library left it out.
    session, callback_uri = plain_session()
    url, state = session.authorization_url(meta["authorization_endpoint"])
    query = parse_qs(urlsplit(url).query)
    if "code_challenge" not in query:
        url += "&" + urlencode({"code_challenge": session._code_verifier, "code_challenge_method": "plain"})
    query = parse_qs(urlsplit(url).query)
    expect(query.get("code_challenge_method") == ["plain"], f"the authorize URL asks for plain: {query}")
    refused_as_invalid_request(session, meta, url, state, callback_uri)


def main():
    if not ISSUER:
        print("ROTOR_ISSUER is not set: run tests/clients/run.sh, or export it")
        return 2
    found = {}

    def check_metadata():
        meta = metadata()
        for key in ("issuer", "authorization_endpoint", "token_endpoint"):
            expect(meta.get(key), f"the metadata has no {key}")
        found["meta"] = meta

    def with_metadata(check):
        def run():
            expect("meta" in found, "no metadata: discovery failed")
            check(found["meta"])
        return run

    checks = [
        ("metadata: issuer, authorization and token endpoints", check_metadata),
        ("pkce=S256: sign-in, code, token with the scope asked for, refresh", with_metadata(check_s256)),
        ("pkce=plain as OAuth2Session sends it (no challenge): invalid_request", with_metadata(check_plain_as_sent)),
        ("pkce=plain with its challenge: invalid_request", with_metadata(check_plain_challenge)),
    ]
    passed = failed = 0
    for name, check in checks:
        try:
            check()
        except Exception as error:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}")
            if os.environ.get("ROTOR_CLIENTS_DEBUG"):
                traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"requests-oauthlib: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
