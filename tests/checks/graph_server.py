"""A loopback server that plays the Microsoft identity platform's token endpoint and Microsoft Graph.

`GraphServer()` is a threading HTTP server on 127.0.0.1 (a context manager) with the documented
shapes, seeded per test through its fields:

- `POST /{tenant}/oauth2/v2.0/token` (client credentials flow, form-encoded): a bearer token for
  `TENANT`/`CLIENT_ID`/`SECRET`; an unknown tenant answers 400 `invalid_request` (AADSTS90002), an
  unknown client 400 `unauthorized_client` (AADSTS700016), a wrong secret 401 `invalid_client`
  (AADSTS7000215).
- Graph under `/v1.0`: every request needs the bearer token issued (else 401
  InvalidAuthenticationToken); collections answer `{"@odata.context", "value": [...]}` in pages of
  `page_size` with an `@odata.nextLink` that carries a `$skiptoken`.
  `/reports/authenticationMethods/userRegistrationDetails` (`registrations`),
  `/identity/conditionalAccess/policies` (`policies`), `/policies/authenticationStrengthPolicies/{id}`
  (`strengths`), `/policies/identitySecurityDefaultsEnforcementPolicy` (`security_defaults`),
  `/directoryRoles(roleTemplateId='...')/members` (`role_members`), `/groups/{id}/transitiveMembers`
  (`group_members`) and `/users` (`users`, `$filter=userType eq 'Guest'` understood).
- `denied`: path prefixes answered 403 Authorization_RequestDenied; `script`: (path prefix, status,
  headers, JSON body) answered once each before anything else (e.g. a 429 with Retry-After).

Every request is kept in `requests` (method, path with query, time).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRET = "Zq8~graph-client-secret-7c1e9b-not-in-results"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"


def graph_error(code: str, message: str) -> dict[str, Any]:
    """Graph's error body: {"error": {"code", "message", "innerError"}}."""
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": "2026-01-01T00:00:00", "request-id": "0f0e", "client-request-id": "0f0e"}}}


def token_error(error: str, code: int, text: str) -> dict[str, Any]:
    """The identity platform's error body, as it answers a refused token request."""
    return {"error": error, "error_description": f"AADSTS{code}: {text}\r\nTrace ID: 0a1b\r\nCorrelation ID: 2c3d\r\n"
            "Timestamp: 2026-01-01 00:00:00Z", "error_codes": [code], "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "0a1b", "correlation_id": "2c3d", "error_uri": "https://login.microsoftonline.com/error"}


@dataclass
class GraphServer:
    """The token endpoint and Microsoft Graph on loopback, for one test."""

    page_size: int = 2
    registrations: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    strengths: dict[str, dict[str, Any]] = field(default_factory=dict)
    security_defaults: bool = False
    role_members: list[dict[str, Any]] = field(default_factory=list)
    group_members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    script: list[tuple[str, int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, str, float]] = field(default_factory=list)
    token_forms: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self
        self.tokens: set[str] = set()

        class Handler(BaseHTTPRequestHandler):
            def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def scripted(self, path: str) -> bool:
                for entry in server.script:
                    if path.startswith(entry[0]):
                        server.script.remove(entry)
                        self.answer(entry[1], entry[3], entry[2])
                        return True
                return False

            def do_POST(self) -> None:
                server.requests.append(("POST", self.path, time.monotonic()))
                path = unquote(urlsplit(self.path).path)
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                server.token_forms.append(form)
                if self.scripted(path):
                    return
                if path != f"/{TENANT}/oauth2/v2.0/token":
                    tenant = path.strip("/").split("/")[0]
                    self.answer(400, token_error("invalid_request", 90002, f"Tenant '{tenant}' not found. Check "
                                                 "to make sure you have the correct tenant ID and are signing into "
                                                 "the correct cloud."))
                elif form.get("grant_type") != "client_credentials":
                    self.answer(400, token_error("unsupported_grant_type", 70003, "The app requested an "
                                                 "unsupported grant type."))
                elif form.get("client_id") != CLIENT_ID:
                    self.answer(400, token_error("unauthorized_client", 700016, f"Application with identifier "
                                                 f"'{form.get('client_id')}' was not found in the directory."))
                elif form.get("client_secret") != SECRET:
                    self.answer(401, token_error("invalid_client", 7000215, "Invalid client secret provided. "
                                                 "Ensure the secret being sent in the request is the client secret "
                                                 "value, not the client secret ID."))
                elif not str(form.get("scope", "")).endswith("/.default"):
                    self.answer(400, token_error("invalid_scope", 1002012, "The provided value for scope is not "
                                                 "valid. Client credential flows must have a scope value with "
                                                 "/.default suffixed to the resource identifier."))
                else:
                    token = "eyJ0eXAi." + secrets.token_urlsafe(24)
                    server.tokens.add(token)
                    self.answer(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                                      "access_token": token})

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, time.monotonic()))
                parts = urlsplit(self.path)
                path = unquote(parts.path)
                query = dict(parse_qsl(parts.query))
                if not path.startswith("/v1.0/"):
                    self.answer(404, graph_error("BadRequest", "Invalid version."))
                    return
                path = path.removeprefix("/v1.0")
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in server.tokens:
                    self.answer(401, graph_error("InvalidAuthenticationToken", "Access token validation failure."))
                    return
                if self.scripted(path):
                    return
                if any(path.startswith(prefix) for prefix in server.denied):
                    self.answer(403, graph_error("Authorization_RequestDenied",
                                                 "Insufficient privileges to complete the operation."))
                    return
                items = self.collection(path, query)
                if items is not None:
                    self.page(parts.path, query, items)
                elif path.startswith("/policies/authenticationStrengthPolicies/"):
                    strength = server.strengths.get(path.rsplit("/", 1)[1])
                    if strength is None:
                        self.answer(404, graph_error("ResourceNotFound", "Resource not found."))
                    else:
                        self.answer(200, strength)
                elif path == "/policies/identitySecurityDefaultsEnforcementPolicy":
                    self.answer(200, {"id": "00000000-0000-0000-0000-000000000005", "displayName":
                                      "Security Defaults", "isEnabled": server.security_defaults})
                else:
                    self.answer(404, graph_error("Request_ResourceNotFound", f"Resource '{path}' does not exist."))

            def collection(self, path: str, query: dict[str, str]) -> list[dict[str, Any]] | None:
                if path == "/reports/authenticationMethods/userRegistrationDetails":
                    return server.registrations
                if path == "/identity/conditionalAccess/policies":
                    return server.policies
                if path == f"/directoryRoles(roleTemplateId='{GLOBAL_ADMINISTRATOR}')/members":
                    return server.role_members
                if path.startswith("/groups/") and path.endswith("/transitiveMembers"):
                    return server.group_members.get(path.split("/")[2], [])
                if path == "/users":
                    wanted = query.get("$filter")
                    if wanted == "userType eq 'Guest'":
                        return [u for u in server.users if u.get("userType") == "Guest"]
                    return server.users
                return None

            def page(self, raw_path: str, query: dict[str, str], items: list[dict[str, Any]]) -> None:
                token = query.pop("$skiptoken", None)
                start = int(token.removeprefix("RFNwdAIAAQAAAC")) if token else 0
                body: dict[str, Any] = {"@odata.context": f"http://127.0.0.1:{server.port}/v1.0/$metadata#value",
                                        "value": items[start:start + server.page_size]}
                if start + server.page_size < len(items):
                    following = urlencode({**query, "$skiptoken": f"RFNwdAIAAQAAAC{start + server.page_size}"})
                    body["@odata.nextLink"] = f"http://127.0.0.1:{server.port}{raw_path}?{following}"
                self.answer(200, body)

            def log_message(self, *_: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])

    @property
    def authority(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    def gets(self, prefix: str) -> list[str]:
        """The GET requests whose path (after /v1.0) starts with `prefix`, with their queries."""
        return [p for m, p, _ in self.requests if m == "GET" and unquote(p).startswith("/v1.0" + prefix)]

    def __enter__(self) -> GraphServer:
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()


# --- documented shapes, for seeding -----------------------------------------------------------------------

def registration(upn: str, *, mfa: bool, user_type: str = "member", admin: bool = False) -> dict[str, Any]:
    """A userRegistrationDetails object."""
    return {"id": secrets.token_hex(4) + "-0000-0000-0000-000000000000", "userPrincipalName": upn,
            "userDisplayName": upn.split("@")[0], "userType": user_type, "isAdmin": admin,
            "isSsprRegistered": False, "isSsprEnabled": False, "isSsprCapable": False, "isMfaRegistered": mfa,
            "isMfaCapable": mfa, "isPasswordlessCapable": False,
            "methodsRegistered": ["microsoftAuthenticatorPush"] if mfa else [],
            "isSystemPreferredAuthenticationMethodEnabled": True,
            "systemPreferredAuthenticationMethods": ["push"] if mfa else [],
            "userPreferredMethodForSecondaryAuthentication": "push" if mfa else "none",
            "lastUpdatedDateTime": "2026-01-01T08:00:00Z"}


def ca_policy(name: str, *, state: str = "enabled", include_users: list[str] | None = None,
              exclude_users: list[str] | None = None, exclude_groups: list[str] | None = None,
              include_apps: list[str] | None = None, client_apps: list[str] | None = None,
              controls: list[str] | None = None, operator: str = "OR", strength: dict[str, Any] | None = None,
              sign_in_risk: list[str] | None = None) -> dict[str, Any]:
    """A conditionalAccessPolicy object (v1.0 shape)."""
    return {
        "id": secrets.token_hex(4) + "-1111-1111-1111-111111111111", "displayName": name,
        "createdDateTime": "2024-01-01T00:00:00Z", "modifiedDateTime": None, "state": state,
        "sessionControls": None,
        "conditions": {
            "userRiskLevels": [], "signInRiskLevels": sign_in_risk or [], "servicePrincipalRiskLevels": [],
            "clientAppTypes": client_apps or ["all"], "platforms": None, "locations": None, "devices": None,
            "clientApplications": None,
            "applications": {"includeApplications": include_apps or ["All"], "excludeApplications": [],
                             "includeUserActions": [], "includeAuthenticationContextClassReferences": [],
                             "applicationFilter": None},
            "users": {"includeUsers": include_users or ["All"], "excludeUsers": exclude_users or [],
                      "includeGroups": [], "excludeGroups": exclude_groups or [], "includeRoles": [],
                      "excludeRoles": [], "includeGuestsOrExternalUsers": None, "excludeGuestsOrExternalUsers": None},
        },
        "grantControls": {"operator": operator, "builtInControls": controls if controls is not None else ["mfa"],
                          "customAuthenticationFactors": [], "termsOfUse": [],
                          "authenticationStrength@odata.context": "...", "authenticationStrength": strength},
    }


def user(upn: str, *, kind: str = "user", enabled: bool = True) -> dict[str, Any]:
    """A directory object as a role or group member lists it."""
    return {"@odata.type": f"#microsoft.graph.{kind}", "id": secrets.token_hex(4) + "-2222-2222-2222-222222222222",
            "displayName": upn.split("@")[0], "userPrincipalName": upn if kind == "user" else None,
            "accountEnabled": enabled}


def guest(mail: str, *, last: str | None, created: str, enabled: bool = True) -> dict[str, Any]:
    """A guest user with signInActivity (`last` an ISO time, or None when the guest never signed in)."""
    upn = mail.replace("@", "_") + "#EXT#@gemeente.onmicrosoft.com"
    activity = None if last is None else {"lastSignInDateTime": last, "lastSignInRequestId": "r1",
                                          "lastNonInteractiveSignInDateTime": None,
                                          "lastNonInteractiveSignInRequestId": None,
                                          "lastSuccessfulSignInDateTime": last, "lastSuccessfulSignInRequestId": "r1"}
    return {"id": secrets.token_hex(4) + "-3333-3333-3333-333333333333", "displayName": mail.split("@")[0],
            "userPrincipalName": upn, "mail": mail, "userType": "Guest", "createdDateTime": created,
            "accountEnabled": enabled, "signInActivity": activity}
