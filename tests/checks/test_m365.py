"""m365 against a loopback server that plays the Microsoft identity platform and Microsoft Graph."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from compliance.api import Context, Result, Status
from compliance.checks.m365 import M365
from tests.checks.graph_server import (
    CLIENT_ID,
    SECRET,
    TENANT,
    GraphServer,
    ca_policy,
    graph_error,
    guest,
    registration,
    user,
)

ENV = "M365_TEST_CLIENT_SECRET"


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphServer]:
    monkeypatch.setenv(ENV, SECRET)
    with GraphServer() as server:
        yield server


def run(server: GraphServer | None, test: str | list[str], ctx: Context | None = None,
        **params: Any) -> list[Result]:
    base = {"tenant": TENANT, "client_id": CLIENT_ID, "client_secret_env": ENV, "test": test,
            "authority": server.authority if server else "http://127.0.0.1:9",
            "graph_url": server.graph_url if server else "http://127.0.0.1:9/v1.0"}
    p = M365.Params.model_validate({**base, **params})
    results = list(M365().run(p, ctx or Context("C", 20, net_timeout=5)))
    for result in results:
        text = json.dumps(result.evidence)  # evidence must be plain JSON, and never carry the secret
        assert SECRET not in text and SECRET not in result.message
    return results


def one(server: GraphServer | None, test: str, ctx: Context | None = None, **params: Any) -> Result:
    [result] = run(server, test, ctx, **params)
    return result


def ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- MFA registration ---------------------------------------------------------------------------------------

def test_all_members_with_mfa_pass_over_several_pages(graph: GraphServer) -> None:
    graph.registrations = [registration(f"u{i}@gemeente.nl", mfa=True) for i in range(5)]
    graph.registrations.append(registration("gast_x.nl#EXT#@gemeente.onmicrosoft.com", mfa=False, user_type="guest"))
    result = one(graph, "mfa_registered")
    assert result.status == Status.PASS, result.message
    assert result.message == f"All 5 users of tenant {TENANT} have an MFA method registered (0 excepted)."
    assert result.target == f"{TENANT}/mfa_registered"
    assert len(graph.gets("/reports/authenticationMethods/userRegistrationDetails")) == 3  # 6 rows, pages of 2
    assert any("%24skiptoken=" in p for p in graph.gets("/reports/"))
    assert result.evidence["permissions"] == ["AuditLog.Read.All"]


def test_users_without_mfa_are_named_and_exceptions_are_honoured(graph: GraphServer) -> None:
    graph.registrations = [registration("anna@gemeente.nl", mfa=True), registration("bert@gemeente.nl", mfa=False),
                           registration("carla@gemeente.nl", mfa=False),
                           registration("breakglass1@gemeente.onmicrosoft.com", mfa=False)]
    result = one(graph, "mfa_registered", mfa_exceptions=["breakglass*@gemeente.onmicrosoft.com"])
    assert result.status == Status.FAIL
    assert result.message == (f"2 of 4 users of tenant {TENANT} have no MFA method registered: bert@gemeente.nl, "
                              "carla@gemeente.nl.")
    assert result.evidence["excepted"] == ["breakglass1@gemeente.onmicrosoft.com"]
    capped = one(graph, "mfa_registered", max_listed=1)
    assert capped.message.endswith(": bert@gemeente.nl (+2).")
    assert capped.evidence["users_without_mfa"] == ["bert@gemeente.nl"] and capped.evidence["without_mfa"] == 3


def test_an_empty_report_is_an_error_not_a_pass(graph: GraphServer) -> None:
    result = one(graph, "mfa_registered")
    assert result.status == Status.ERROR
    assert "lists no users" in result.message


# --- Conditional Access -------------------------------------------------------------------------------------

def test_an_enabled_policy_requiring_mfa_for_all_passes_and_lists_its_exclusions(graph: GraphServer) -> None:
    graph.policies = [ca_policy("Block legacy", client_apps=["exchangeActiveSync", "other"], controls=["block"]),
                      ca_policy("MFA for all", exclude_users=["bg-1", "bg-2"], exclude_groups=["g-1"])]
    result = one(graph, "ca_mfa_all_users")
    assert result.status == Status.PASS, result.message
    assert result.message == (f"Conditional Access of tenant {TENANT} requires MFA for all users and all cloud apps: "
                              "MFA for all (exclusions: 2 users, 1 groups, 0 roles, 0 other).")
    [counting] = result.evidence["counting"]
    assert counting["excluded"] == {"users": ["bg-1", "bg-2"], "groups": ["g-1"]}
    assert result.evidence["not_counting"][0]["name"] == "Block legacy"


def test_an_authentication_strength_that_grants_mfa_counts(graph: GraphServer) -> None:
    graph.strengths["00000000-0000-0000-0000-000000000004"] = {
        "id": "00000000-0000-0000-0000-000000000004", "displayName": "Phishing-resistant MFA",
        "policyType": "builtIn", "requirementsSatisfied": "mfa", "allowedCombinations": ["fido2"]}
    graph.policies = [ca_policy("Strong auth", controls=[],
                                strength={"id": "00000000-0000-0000-0000-000000000004"})]
    assert one(graph, "ca_mfa_all_users").status == Status.PASS
    assert graph.gets("/policies/authenticationStrengthPolicies/")  # looked up: the policy did not say


@pytest.mark.parametrize(("policy", "why"), [
    (ca_policy("Report only", state="enabledForReportingButNotEnforced"),
     "state is enabledForReportingButNotEnforced (report-only)"),
    (ca_policy("Disabled", state="disabled"), "state is disabled"),
    (ca_policy("Admins only", include_users=["None"]), "does not include all users"),
    (ca_policy("Office only", include_apps=["Office365"]), "does not include all cloud apps"),
    (ca_policy("MFA or compliant", controls=["mfa", "compliantDevice"]),
     "MFA is one of several alternatives (operator OR)"),
    (ca_policy("Risky only", sign_in_risk=["high"]), "applies only at signInRiskLevels"),
    (ca_policy("Browser only", client_apps=["browser"]), "applies only to some client apps"),
    (ca_policy("Compliant device", controls=["compliantDevice"]), "does not require MFA"),
])
def test_policies_that_do_not_require_mfa_for_all_fail(graph: GraphServer, policy: dict[str, Any], why: str) -> None:
    graph.policies = [policy]
    result = one(graph, "ca_mfa_all_users")
    assert result.status == Status.FAIL
    assert result.message == (f"No enabled Conditional Access policy of tenant {TENANT} requires MFA for all users "
                              "and all cloud apps (1 policies read; report-only policies do not count).")
    assert why in result.evidence["not_counting"][0]["does_not_count_because"]


def test_mfa_and_compliant_device_together_count(graph: GraphServer) -> None:
    graph.policies = [ca_policy("MFA and compliant", controls=["mfa", "compliantDevice"], operator="AND")]
    assert one(graph, "ca_mfa_all_users").status == Status.PASS


def test_legacy_authentication_blocked(graph: GraphServer) -> None:
    graph.policies = [ca_policy("Block legacy", client_apps=["exchangeActiveSync", "other"], controls=["block"],
                                exclude_users=["svc-scanner"])]
    result = one(graph, "legacy_auth_blocked")
    assert result.status == Status.PASS, result.message
    assert "Block legacy (exclusions: 1 users, 0 groups, 0 roles, 0 other)" in result.message


def test_legacy_authentication_not_blocked_fails_unless_security_defaults(graph: GraphServer) -> None:
    graph.policies = [ca_policy("Block legacy (report)", state="enabledForReportingButNotEnforced",
                                client_apps=["exchangeActiveSync", "other"], controls=["block"]),
                      ca_policy("Block EAS only", client_apps=["exchangeActiveSync"], controls=["block"])]
    result = one(graph, "legacy_auth_blocked")
    assert result.status == Status.FAIL
    assert result.evidence["security_defaults"] is False
    graph.policies, graph.security_defaults = [], True
    result = one(graph, "legacy_auth_blocked")
    assert result.status == Status.PASS
    assert result.message == f"Tenant {TENANT} has security defaults enabled, which block legacy authentication."


# --- Global Administrators ----------------------------------------------------------------------------------

def test_global_admins_within_the_range_pass(graph: GraphServer) -> None:
    graph.role_members = [user("admin1@gemeente.nl"), user("admin2@gemeente.nl"), user("breakglass@gemeente.nl")]
    result = one(graph, "global_admins")
    assert result.status == Status.PASS, result.message
    assert result.message == (f"Tenant {TENANT} has 3 Global Administrators (allowed 2 to 4): admin1@gemeente.nl, "
                              "admin2@gemeente.nl, breakglass@gemeente.nl.")


def test_too_many_global_admins_fail_counting_group_members_once(graph: GraphServer) -> None:
    group = user("GA-group", kind="group")
    shared = user("admin2@gemeente.nl")
    graph.role_members = [user("admin1@gemeente.nl"), shared, group, user("Backup app", kind="servicePrincipal")]
    graph.group_members[group["id"]] = [shared, user("admin3@gemeente.nl"), user("admin4@gemeente.nl"),
                                        user("nested", kind="group")]
    result = one(graph, "global_admins")
    assert result.status == Status.FAIL
    assert result.message == (f"Tenant {TENANT} has 5 Global Administrators, more than the maximum of 4: "
                              "admin1@gemeente.nl, admin2@gemeente.nl, admin3@gemeente.nl, admin4@gemeente.nl, "
                              "Backup app.")
    assert result.evidence["via_groups"] == ["GA-group"]


def test_a_single_global_admin_is_too_few(graph: GraphServer) -> None:
    graph.role_members = [user("admin1@gemeente.nl")]
    result = one(graph, "global_admins", min_global_admins=2, max_global_admins=3)
    assert result.status == Status.FAIL
    assert "fewer than the minimum of 2" in result.message


# --- guests -------------------------------------------------------------------------------------------------

def test_stale_guests_fail_and_recent_or_new_or_disabled_ones_do_not(graph: GraphServer) -> None:
    graph.users = [
        {"id": "m-1", "userPrincipalName": "anna@gemeente.nl", "userType": "Member", "accountEnabled": True,
         "createdDateTime": ago(900), "signInActivity": None},
        guest("recent@partner.nl", last=ago(10), created=ago(400)),
        guest("old@partner.nl", last=ago(200), created=ago(400)),
        guest("never@partner.nl", last=None, created=ago(120)),
        guest("invited@partner.nl", last=None, created=ago(3)),
        guest("disabled@partner.nl", last=ago(300), created=ago(400), enabled=False),
        guest("auditor@accountant.nl", last=ago(300), created=ago(400)),
    ]
    result = one(graph, "stale_guests", guest_exceptions=["*@accountant.nl"])
    assert result.status == Status.FAIL
    assert result.message == (f"2 of 6 guest accounts of tenant {TENANT} have not signed in for more than 90 days: "
                              "never@partner.nl, old@partner.nl.")
    assert result.evidence["skipped_disabled"] == 1 and result.evidence["excepted"] == 1
    [query] = {p.split("?")[1] for p in graph.gets("/users")[:1]}
    assert "$filter=userType%20eq%20'Guest'" in query and "signInActivity" in query
    relaxed = one(graph, "stale_guests", guest_max_inactive="365d", guest_exceptions=["*@accountant.nl"])
    assert relaxed.status == Status.PASS
    assert relaxed.message == (f"All 6 guest accounts of tenant {TENANT} signed in within the last 365 days "
                               "(1 disabled ones skipped).")


# --- several tests, one token ---------------------------------------------------------------------------------

def test_several_tests_share_one_token(graph: GraphServer) -> None:
    graph.registrations = [registration("anna@gemeente.nl", mfa=True)]
    graph.policies = [ca_policy("MFA for all")]
    results = run(graph, ["mfa_registered", "ca_mfa_all_users", "legacy_auth_blocked"])
    assert [r.status for r in results] == [Status.PASS, Status.PASS, Status.FAIL]
    assert len(graph.token_forms) == 1
    form = graph.token_forms[0]
    assert form["grant_type"] == "client_credentials" and form["client_id"] == CLIENT_ID
    assert form["scope"] == f"{graph.authority}/.default"


# --- throttling, refusals, errors -----------------------------------------------------------------------------

def test_a_429_with_retry_after_is_waited_out(graph: GraphServer) -> None:
    graph.role_members = [user("admin1@gemeente.nl"), user("admin2@gemeente.nl")]
    graph.script.append(("/directoryRoles", 429, {"Retry-After": "1"},
                         graph_error("TooManyRequests", "Too many requests.")))
    result = one(graph, "global_admins")
    assert result.status == Status.PASS, result.message
    times = [t for _, p, t in graph.requests if "directoryRoles" in p]
    assert len(times) == 2 and times[1] - times[0] >= 1.0
    assert result.evidence["throttle_wait_seconds"] == 1.0


def test_throttling_longer_than_the_time_budget_is_an_error(graph: GraphServer) -> None:
    graph.script.append(("/identity", 503, {"Retry-After": "120"}, graph_error("ServiceUnavailable", "Busy.")))
    started = time.monotonic()
    result = one(graph, "ca_mfa_all_users", Context("C", 5, net_timeout=5))
    assert time.monotonic() - started < 3
    assert result.status == Status.ERROR
    assert "is throttling or unavailable (HTTP 503, asked to retry after 120 s" in result.message
    assert result.evidence["throttled"] is True


def test_a_wrong_secret_is_an_error_naming_the_variable_not_the_secret(graph: GraphServer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "wrong-secret-value-123")
    results = run(graph, ["mfa_registered", "global_admins"])
    assert [r.status for r in results] == [Status.ERROR, Status.ERROR]
    assert len(graph.token_forms) == 1  # a refused secret is not tried again
    message = results[0].message
    assert message.startswith(f"Could not check MFA registration of Microsoft 365 tenant {TENANT}: the identity "
                              "platform refused the app's credentials (HTTP 401, invalid_client: AADSTS7000215: "
                              "Invalid client secret provided.")
    assert f"client secret in the environment variable {ENV}" in message
    assert "wrong-secret-value-123" not in message and "Trace ID" not in message
    assert results[0].evidence["aadsts"] == ["AADSTS7000215"]


def test_a_wrong_tenant_or_client_is_an_error(graph: GraphServer) -> None:
    tenant = one(graph, "global_admins", tenant="andere-gemeente.onmicrosoft.com")
    assert tenant.status == Status.ERROR and "invalid_request: AADSTS90002" in tenant.message
    client = one(graph, "global_admins", client_id="00000000-0000-0000-0000-000000000001")
    assert client.status == Status.ERROR and "unauthorized_client: AADSTS700016" in client.message


def test_a_missing_secret_variable_is_an_error(graph: GraphServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV)
    result = one(graph, "global_admins")
    assert result.status == Status.ERROR
    assert result.message == (f"Could not check the number of Global Administrators of Microsoft 365 tenant {TENANT}: "
                              f"the environment variable {ENV} with the client secret is not set.")
    assert graph.requests == []


def test_a_missing_permission_is_an_error_naming_it(graph: GraphServer) -> None:
    graph.denied = ["/reports/", "/users"]
    mfa, guests = run(graph, ["mfa_registered", "stale_guests"])
    assert mfa.status == Status.ERROR
    assert mfa.message == (f"Could not check MFA registration of Microsoft 365 tenant {TENANT}: Microsoft Graph "
                           "refused /reports/authenticationMethods/userRegistrationDetails (HTTP 403 "
                           "Authorization_RequestDenied: Insufficient privileges to complete the operation.): grant "
                           "the app registration the application permission AuditLog.Read.All with admin consent.")
    assert guests.status == Status.ERROR and "User.Read.All and AuditLog.Read.All" in guests.message


def test_no_premium_licence_is_an_error_saying_so(graph: GraphServer) -> None:
    graph.script.append(("/reports/", 403, {}, graph_error(
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
        "Neither tenant is B2C or tenant doesn't have premium license")))
    result = one(graph, "mfa_registered")
    assert result.status == Status.ERROR and "no Microsoft Entra ID P1 or P2 licence" in result.message


def test_a_page_link_to_another_host_is_refused(graph: GraphServer) -> None:
    graph.script.append(("/identity", 200, {}, {"value": [], "@odata.nextLink": "https://evil.example/v1.0/x"}))
    result = one(graph, "ca_mfa_all_users")
    assert result.status == Status.ERROR and "leaves" in result.message
    assert not any("evil" in p for _, p, _ in graph.requests)


def test_malformed_answers_are_errors(graph: GraphServer) -> None:
    graph.script.append(("/identity", 200, {}, {"policies": []}))
    result = one(graph, "ca_mfa_all_users")
    assert result.status == Status.ERROR and "without a list of objects" in result.message


def test_unreachable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = one(None, "ca_mfa_all_users", authority=f"http://127.0.0.1:{port}",
                 graph_url=f"http://127.0.0.1:{port}/v1.0")
    assert result.status == Status.ERROR
    assert result.message == (f"Could not check Conditional Access MFA for all users of Microsoft 365 tenant {TENANT}: "
                              "cannot reach 127.0.0.1: connection refused.")


def test_a_server_that_does_not_answer_is_a_timeout_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = one(None, "global_admins", authority=f"http://127.0.0.1:{port}",
                     graph_url=f"http://127.0.0.1:{port}/v1.0", timeout="0.5s")
    assert result.status == Status.ERROR
    assert result.message.endswith("cannot reach 127.0.0.1: no answer within 0.5 s.")


# --- parameters -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "error"), [
    ({"tenant": "not a tenant"}, "is not a tenant id"),
    ({"client_id": "my-app"}, "is not an application (client) id"),
    ({"client_secret_env": "s3cr3t value!"}, "is not the name of an environment variable"),
    ({"test": "mfa"}, "Input should be"),
    ({"graph_url": "http://graph.example.org/v1.0"}, "plain http"),
    ({"min_global_admins": 5, "max_global_admins": 4}, "larger than max_global_admins"),
    ({"unknown": 1}, "Extra inputs are not permitted"),
])
def test_parameters_are_validated(params: dict[str, Any], error: str) -> None:
    base = {"tenant": "gemeente.onmicrosoft.com", "client_id": CLIENT_ID}
    with pytest.raises(ValidationError, match=error.replace("(", r"\(").replace(")", r"\)")):
        M365.Params.model_validate({**base, **params})


def test_defaults_test_everything_against_the_public_cloud() -> None:
    p = M365.Params.model_validate({"tenant": "gemeente.onmicrosoft.com", "client_id": CLIENT_ID})
    assert p.test == ("mfa_registered", "ca_mfa_all_users", "legacy_auth_blocked", "global_admins", "stale_guests")
    assert p.graph_url == "https://graph.microsoft.com/v1.0"
    assert p.authority == "https://login.microsoftonline.com"
    assert p.client_secret_env == "M365_CLIENT_SECRET"


def test_a_server_that_speaks_no_http_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setenv(ENV, SECRET)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def garble() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        threading.Thread(target=garble, daemon=True).start()
        result = one(None, "global_admins", authority=f"http://127.0.0.1:{port}",
                     graph_url=f"http://127.0.0.1:{port}/v1.0")
    assert result.status == Status.ERROR
    assert result.message.startswith(f"Could not check the number of Global Administrators of Microsoft 365 tenant "
                                     f"{TENANT}: cannot reach 127.0.0.1: ")
