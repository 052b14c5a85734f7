"""directory against a real OpenLDAP slapd on loopback (ldaps:// and StartTLS, certificates from the test CA).

One subtree (dc=ad,dc=test) imitates Active Directory with its attribute names and INTEGER syntax
(userAccountControl, lastLogonTimestamp as a FILETIME, the domain object's password policy), so the AD
logic runs for real; the other (dc=ol,dc=test) is plain OpenLDAP with ppolicy and lastbind. The reader
may get 10 entries per plain search; there are more accounts than that, read in pages of 5.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme
from pydantic import ValidationError

from compliance.api import Context, Result, Status
from compliance.checks._net import load_libraries
from compliance.checks.directory import Directory, parse_time
from tests.checks.ldap_server import (
    READER_DN,
    READER_PASSWORD,
    LdapServer,
    filetime,
    free_port,
    generalized,
    sid,
)

ENV = "TEST_LDAP_READER_PASSWORD"
NOW = datetime.now(UTC)
SURNAMES = ["jansen", "devries", "bakker", "visser", "smit", "meijer", "mulder", "bos", "vos", "peters", "hendriks",
            "dekker", "brouwer", "dijkstra", "vermeulen", "kok", "jacobs", "vandam", "schouten", "willems", "hoekstra",
            "koster"]


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def entry(dn: str, **attrs: Any) -> str:
    lines = [f"dn: {dn}"]
    for name, value in attrs.items():
        for v in value if isinstance(value, list) else [value]:
            lines.append(f"{name}: {v}")
    return "\n".join(lines) + "\n\n"


def ad_user(name: str, *, control: int = 512, logon_days: float | None = 3, created_days: float = 400,
            primary: int = 513) -> str:
    attrs: dict[str, Any] = {"objectClass": ["inetOrgPerson", "user"], "cn": name, "sn": name,
                             "sAMAccountName": name, "objectCategory": "person", "userAccountControl": control,
                             "whenCreated": generalized(ago(created_days)), "primaryGroupID": primary}
    if logon_days is not None:
        attrs["lastLogonTimestamp"] = filetime(ago(logon_days))
    return entry(f"cn={name},ou=users,dc=ad,dc=test", **attrs)


def ol_user(uid: str, *, logon_days: float | None = 2, created_days: float = 400, **extra: Any) -> str:
    attrs: dict[str, Any] = {"objectClass": "inetOrgPerson", "uid": uid, "cn": uid, "sn": uid,
                             "createTimestamp": generalized(ago(created_days)), **extra}
    if logon_days is not None:
        attrs["authTimestamp"] = generalized(ago(logon_days))
    return entry(f"uid={uid},ou=people,dc=ol,dc=test", **attrs)


def seed() -> str:
    users = "ou=users,dc=ad,dc=test"
    parts = [
        entry("dc=test", objectClass=["dcObject", "organization"], o="test", dc="test"),
        entry(READER_DN, objectClass=["organizationalRole", "simpleSecurityObject"], cn="reader",
              userPassword=READER_PASSWORD),
        # the "domain" with AD's password policy attributes on the domain object
        entry("dc=ad,dc=test", objectClass=["dcObject", "organization", "domainPolicy"], o="ad", dc="ad",
              minPwdLength=8, pwdHistoryLength=24, lockoutThreshold=0, maxPwdAge=-36288000000000),
        entry(users, objectClass="organizationalUnit", ou="users"),
        entry("ou=groups,dc=ad,dc=test", objectClass="organizationalUnit", ou="groups"),
    ]
    parts += [ad_user(f"{name}{i:02d}", logon_days=1 + i) for i, name in enumerate(SURNAMES)]
    parts += [
        ad_user("oud.account", logon_days=200),
        ad_user("uitgeschakeld", control=514, logon_days=300),
        ad_user("nooit.ingelogd", logon_days=None, created_days=100),
        ad_user("nieuw.account", logon_days=None, created_days=2),
        ad_user("svc_backup", control=512 | 0x10000),
        ad_user("balie1"),
        ad_user("testgebruiker"),
        ad_user("Administrator", control=512 | 0x10000),
        ad_user("krbtgt", control=514, logon_days=None, created_days=3000),
        ad_user("adm-devries"),
        ad_user("adm-bakker"),
        ad_user("verstopt", primary=512),  # in Domain Admins through primaryGroupID only, not in `member`
        entry("cn=Domain Admins,ou=groups,dc=ad,dc=test", objectClass="group", cn="Domain Admins",
              sAMAccountName="Domain Admins", **{"objectSid:": sid(5, 21, 1, 2, 3, 512)},
              member=[f"cn=Administrator,{users}", f"cn=adm-devries,{users}", "cn=ICT Beheer,ou=groups,dc=ad,dc=test"]),
        # nested, and back again: a cycle the check must survive
        entry("cn=ICT Beheer,ou=groups,dc=ad,dc=test", objectClass="group", cn="ICT Beheer",
              member=[f"cn=adm-bakker,{users}", "cn=Domain Admins,ou=groups,dc=ad,dc=test"]),
        entry("cn=Enterprise Admins,ou=groups,dc=ad,dc=test", objectClass="group", cn="Enterprise Admins",
              member=[f"cn=Administrator,{users}", f"cn=uitgeschakeld,{users}"]),
        # plain OpenLDAP
        entry("dc=ol,dc=test", objectClass=["dcObject", "organization"], o="ol", dc="ol"),
        entry("ou=people,dc=ol,dc=test", objectClass="organizationalUnit", ou="people"),
        entry("ou=groups,dc=ol,dc=test", objectClass="organizationalUnit", ou="groups"),
        entry("ou=policies,dc=ol,dc=test", objectClass="organizationalUnit", ou="policies"),
        entry("cn=default,ou=policies,dc=ol,dc=test", objectClass=["organizationalRole", "pwdPolicy"], cn="default",
              pwdAttribute="userPassword", pwdMinLength=12, pwdInHistory=5, pwdMaxFailure=5, pwdCheckQuality=2,
              pwdMaxAge=0),
        entry("cn=noexpire,ou=policies,dc=ol,dc=test", objectClass=["organizationalRole", "pwdPolicy"],
              cn="noexpire", pwdAttribute="userPassword", pwdMinLength=12, pwdMaxFailure=0),
        entry("cn=beheerders,ou=groups,dc=ol,dc=test", objectClass="groupOfNames", cn="beheerders",
              member=["uid=beheerder,ou=people,dc=ol,dc=test", "cn=helpdesk,ou=groups,dc=ol,dc=test"]),
        entry("cn=helpdesk,ou=groups,dc=ol,dc=test", objectClass="groupOfUniqueNames", cn="helpdesk",
              uniqueMember=["uid=hd1,ou=people,dc=ol,dc=test"]),
    ]
    parts += [ol_user(f"medewerker{i}") for i in range(4)]
    parts += [
        ol_user("beheerder"), ol_user("hd1"),
        ol_user("oud", logon_days=200),
        ol_user("geblokkeerd", logon_days=300, pwdAccountLockedTime="000001010000Z"),
        ol_user("nooit", logon_days=None, created_days=100),
        ol_user("vast", pwdPolicySubentry="cn=noexpire,ou=policies,dc=ol,dc=test"),
        ol_user("live", logon_days=150, userPassword="live-secret-1"),
    ]
    return "".join(parts)


@pytest.fixture(scope="module")
def slapd(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    with LdapServer(tmp_path_factory.mktemp("slapd"), ca, seed()) as server:
        yield server


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, READER_PASSWORD)


def run(server: LdapServer | None, ca_file: str | None, *, tls: str = "ldaps", **params: Any) -> list[Result]:
    url = None if server is None else (server.ldaps_url if tls == "ldaps" else server.url)
    base = {"url": url, "base_dn": "dc=ad,dc=test", "bind_dn": READER_DN, "password_env": ENV, "page_size": 5}
    p = Directory.Params.model_validate({**base, **params})
    results = list(Directory().run(p, Context("C", 20, net_timeout=5, ca_file=ca_file)))
    for result in results:
        encoded = json.dumps(result.evidence)
        assert READER_PASSWORD not in encoded and READER_PASSWORD not in result.message
    return results


def one(server: LdapServer | None, ca_file: str | None, **params: Any) -> Result:
    [result] = run(server, ca_file, **params)
    return result


def accounts(result: Result) -> list[str]:
    return [f["account"] for f in result.evidence["findings"]]


# Active Directory logic ------------------------------------------------------------------------------------------

def test_stale_accounts_are_found_across_pages(slapd: LdapServer, ca_file: str) -> None:
    result = one(slapd, ca_file, test="stale_accounts", max_inactive="90d")
    assert result.status == Status.FAIL
    # the disabled account, the one created two days ago and the 22 active ones are not stale
    assert accounts(result) == ["nooit.ingelogd", "oud.account"]
    assert result.message == (f"2 enabled accounts at {slapd.ldaps_url} have not logged on for more than 90d: "
                              "nooit.ingelogd, oud.account.")
    ev = result.evidence
    # the reader may get 10 entries per plain search: all 34 arrive only because the check pages (by 5)
    assert ev["accounts_total"] == 34 and ev["enabled"] == 32 and ev["pages"] >= 7
    assert ev["transport"] == "ldaps" and ev["insecure"] is False
    old = next(f for f in ev["findings"] if f["account"] == "oud.account")
    assert abs(datetime.fromisoformat(old["last_logon"]) - ago(200)) < timedelta(seconds=2)


def test_the_reader_gets_no_more_than_10_entries_without_paging(slapd: LdapServer) -> None:
    load_libraries("ldap3")
    import ldap3

    conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=slapd.port), READER_DN, READER_PASSWORD, auto_bind=True)
    conn.search("ou=users,dc=ad,dc=test", "(objectClass=user)", attributes=["cn"])
    assert conn.result["description"] == "sizeLimitExceeded" and len(conn.entries) == 10
    conn.unbind()


def test_stale_accounts_pass_when_the_stale_ones_are_allowed(slapd: LdapServer, ca_file: str) -> None:
    result = one(slapd, ca_file, test="stale_accounts",
                 allowed=["OUD.ACCOUNT", "cn=nooit.ingelogd,ou=users,dc=ad,dc=test"])
    assert result.status == Status.PASS, result.message
    assert result.evidence["allowed_skipped"] == ["oud.account", "nooit.ingelogd"]
    assert "All 32 enabled accounts" in result.message


def test_password_never_expires_reads_the_account_control_flag(slapd: LdapServer, ca_file: str) -> None:
    result = one(slapd, ca_file, test="password_never_expires")
    assert result.status == Status.FAIL and accounts(result) == ["Administrator", "svc_backup"]
    allowed = one(slapd, ca_file, test="password_never_expires", allowed=["administrator", "svc_backup"])
    assert allowed.status == Status.PASS
    assert allowed.message == (f"None of the 32 enabled accounts at {slapd.ldaps_url} has a password that never "
                               "expires, apart from 2 approved exceptions.")


def test_generic_accounts(slapd: LdapServer, ca_file: str) -> None:
    result = one(slapd, ca_file, test="generic_accounts", allowed=["Administrator"])
    assert result.status == Status.FAIL
    assert accounts(result) == ["balie1", "svc_backup", "testgebruiker"]  # krbtgt is disabled
    assert result.evidence["allowed_skipped"] == ["Administrator"]
    own = one(slapd, ca_file, test="generic_accounts", patterns=["^kiosk"])
    assert own.status == Status.PASS and own.evidence["patterns"] == ["^kiosk"]


def test_privileged_groups_resolve_nesting_and_compare_with_the_approved(slapd: LdapServer, ca_file: str) -> None:
    results = run(slapd, ca_file, test="privileged_groups",
                  approved={"Domain Admins": ["Administrator", "adm-devries", "vertrokken"],
                            "Enterprise Admins": ["Administrator"]})
    by_group = {r.evidence["group"]: r for r in results}
    assert list(by_group) == ["Domain Admins", "Enterprise Admins", "Schema Admins", "Administrators"]
    domain = by_group["Domain Admins"]
    assert domain.status == Status.FAIL and domain.target == f"{slapd.ldaps_url} (Domain Admins)"
    assert domain.message == (f"2 members of Domain Admins at {slapd.ldaps_url} were not approved: adm-bakker, "
                              "verstopt.")
    members = {m["account"]: m["via"] for m in domain.evidence["members"]}
    # the cycle back to Domain Admins adds no member; the primary group member is found by primaryGroupID
    assert members == {"Administrator": [], "adm-devries": [], "adm-bakker": ["ICT Beheer"],
                       "verstopt": ["(primary group)"]}
    assert domain.evidence["approved_not_member"] == ["vertrokken"]
    enterprise = by_group["Enterprise Admins"]
    assert enterprise.status == Status.FAIL and enterprise.evidence["unapproved"] == ["uitgeschakeld"]
    assert {m["account"]: m["enabled"] for m in enterprise.evidence["members"]} == {
        "Administrator": True, "uitgeschakeld": False}
    assert by_group["Schema Admins"].status == Status.SKIPPED  # a default group this domain does not have

    [ok] = run(slapd, ca_file, test="privileged_groups", groups=["Domain Admins"],
               approved=["administrator", "ADM-DEVRIES", "adm-bakker", "verstopt", "vertrokken"])
    assert ok.status == Status.PASS
    assert ok.message == (f"All 4 members of Domain Admins at {slapd.ldaps_url} are approved; approved but no "
                          "longer members: vertrokken.")


def test_a_group_the_control_names_must_exist(slapd: LdapServer, ca_file: str) -> None:
    [result] = run(slapd, ca_file, test="privileged_groups", groups=["Backup Operators"], approved=[])
    assert result.status == Status.ERROR and "Group Backup Operators was not found" in result.message


def test_ad_password_policy(slapd: LdapServer, ca_file: str) -> None:
    result = one(slapd, ca_file, test="password_policy", max_password_age="60d")
    assert result.status == Status.FAIL
    assert result.message == (f"The password policy at {slapd.ldaps_url} (dc=ad,dc=test) falls short: minimum length "
                              "8, below 12; accounts are never locked after failed logons.")
    assert result.evidence["policy"]["max_age_days"] == 42
    too_long = one(slapd, ca_file, test="password_policy", min_password_length=8, max_lockout_threshold=None,
                   max_password_age="30d")
    assert too_long.status == Status.FAIL and "passwords expire after 42d, later than 30d" in too_long.message
    ok = one(slapd, ca_file, test="password_policy", min_password_length=8, max_lockout_threshold=None)
    assert ok.status == Status.PASS
    assert ok.message.endswith("meets the minimums: length 8, history 24, lockout: none.")


# OpenLDAP over StartTLS -------------------------------------------------------------------------------------------

OL = {"flavor": "openldap", "base_dn": "ou=people,dc=ol,dc=test", "tls": "starttls"}


def test_openldap_stale_accounts_by_auth_timestamp(slapd: LdapServer, ca_file: str) -> None:
    result = one(slapd, ca_file, **OL, test="stale_accounts", disabled_filter="(pwdAccountLockedTime=000001010000Z)",
                 allowed=["live"])
    assert result.status == Status.FAIL and accounts(result) == ["nooit", "oud"]
    assert result.evidence["transport"] == "starttls" and result.evidence["logon_attribute"] == "authTimestamp"
    assert result.evidence["accounts_total"] == 11 and result.evidence["enabled"] == 10


def test_lastbind_refreshes_the_logon_time(slapd: LdapServer, ca_file: str) -> None:
    load_libraries("ldap3")
    import ldap3

    before = one(slapd, ca_file, **OL, test="stale_accounts", allowed=["oud", "nooit", "geblokkeerd"])
    assert accounts(before) == ["live"]
    conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=slapd.port), "uid=live,ou=people,dc=ol,dc=test",
                            "live-secret-1")
    assert conn.bind(), conn.result
    conn.unbind()
    after = one(slapd, ca_file, **OL, test="stale_accounts", allowed=["oud", "nooit", "geblokkeerd"])
    assert after.status == Status.PASS, after.message


def test_openldap_never_expires_and_policy_and_groups(slapd: LdapServer, ca_file: str) -> None:
    never = one(slapd, ca_file, **OL, test="password_never_expires",
                never_expires_filter="(pwdPolicySubentry=cn=noexpire,ou=policies,dc=ol,dc=test)")
    assert never.status == Status.FAIL and accounts(never) == ["vast"]
    policy = one(slapd, ca_file, **OL, test="password_policy", policy_dn="cn=default,ou=policies,dc=ol,dc=test")
    assert policy.status == Status.PASS, policy.message
    assert policy.message.endswith("meets the minimums: length 12, history 5, lockout: after 5 failed logons.")
    assert policy.evidence["policy"]["pwdMinLength"] == 12 and policy.evidence["policy"]["pwdCheckQuality"] == 2
    weak = one(slapd, ca_file, **OL, test="password_policy", policy_dn="cn=noexpire,ou=policies,dc=ol,dc=test")
    assert weak.status == Status.FAIL
    assert weak.evidence["problems"] == ["pwdCheckQuality is 0, so the minimum length of 12 is not enforced",
                                         "password history 0, below 5",
                                         "accounts are never locked after failed logons"]
    [groups] = run(slapd, ca_file, **{**OL, "base_dn": "dc=ol,dc=test"}, test="privileged_groups",
                   groups=["beheerders"], approved=["beheerder"])
    assert groups.status == Status.FAIL and groups.evidence["unapproved"] == ["hd1"]
    assert {m["account"]: m["via"] for m in groups.evidence["members"]} == {"beheerder": [], "hd1": ["helpdesk"]}


def test_missing_policy_entry_is_an_error(slapd: LdapServer, ca_file: str) -> None:
    result = one(slapd, ca_file, **OL, test="password_policy", policy_dn="cn=nope,ou=policies,dc=ol,dc=test")
    assert result.status == Status.ERROR and "does not exist" in result.message


# transport and errors ---------------------------------------------------------------------------------------------

def test_plain_ldap_is_refused_unless_insecure(slapd: LdapServer, ca_file: str) -> None:
    with pytest.raises(ValidationError, match="plain LDAP sends the bind password unencrypted"):
        run(slapd, ca_file, tls="plain", starttls=False, test="generic_accounts")
    result = one(slapd, ca_file, tls="plain", starttls=False, insecure=True, test="generic_accounts",
                 allowed=["administrator"])
    assert result.status == Status.FAIL
    assert result.evidence["transport"] == "plain" and result.evidence["insecure"] is True


def test_wrong_password_names_the_variable(slapd: LdapServer, ca_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "wrong-secret-99")
    result = one(slapd, ca_file, test="stale_accounts")
    assert result.status == Status.ERROR
    assert result.message == (f"The directory at {slapd.ldaps_url} refused the bind as {READER_DN}: invalid "
                              f"credentials (the password comes from the environment variable {ENV}).")
    assert "wrong-secret-99" not in json.dumps(result.evidence)


def test_missing_variable(slapd: LdapServer, ca_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV)
    result = one(slapd, ca_file, test="stale_accounts")
    assert result.status == Status.ERROR
    assert result.message == (f"The environment variable {ENV} with the bind password for {slapd.ldaps_url} "
                              "is not set (or empty).")


@pytest.mark.parametrize("tls", ["ldaps", "starttls"])
def test_untrusted_certificate_is_a_tls_error(slapd: LdapServer, tls: str) -> None:
    result = one(slapd, None, tls=tls, test="stale_accounts")  # the test CA is not trusted
    assert result.status == Status.ERROR
    url = slapd.ldaps_url if tls == "ldaps" else slapd.url
    assert result.message.startswith(f"TLS with the directory at {url} failed: ")
    assert "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed" in result.message
    assert result.message.endswith(")."), result.message  # no tuple wrappings left: "...(_ssl.c:1006)."


def test_starttls_on_the_ldaps_port_is_refused(slapd: LdapServer, ca_file: str) -> None:
    result = one(None, ca_file, url=f"ldap://127.0.0.1:{slapd.tls_port}", test="stale_accounts", timeout=1)
    assert result.status == Status.ERROR


def test_unreachable() -> None:
    port = free_port()
    result = one(None, None, url=f"ldaps://127.0.0.1:{port}", test="stale_accounts", timeout=2)
    assert result.status == Status.ERROR
    assert result.message.startswith(f"Could not reach the directory at ldaps://127.0.0.1:{port}: ")
    assert result.evidence["reachable"] is False


def test_a_silent_server_times_out(ca_file: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts into its backlog, never answers
        port = silent.getsockname()[1]
        result = one(None, ca_file, url=f"ldap://127.0.0.1:{port}", test="stale_accounts", timeout=0.5)
    assert result.status == Status.ERROR and result.evidence["timed_out"] is True
    assert "did not answer in time" in result.message


def test_wrong_base_and_empty_filter(slapd: LdapServer, ca_file: str) -> None:
    missing = one(slapd, ca_file, test="stale_accounts", base_dn="ou=nope,dc=ad,dc=test")
    assert missing.status == Status.ERROR and "The search under ou=nope,dc=ad,dc=test" in missing.message
    assert "noSuchObject" in missing.message
    empty = one(slapd, ca_file, test="generic_accounts", user_filter="(objectClass=device)")
    assert empty.status == Status.ERROR and "cannot judge an empty list" in empty.message


# parameters -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "error"), [
    ({"test": "stale_accounts", "approved": ["x"]}, "'approved' is a parameter of test privileged_groups"),
    ({"test": "password_policy", "flavor": "openldap"}, "needs 'policy_dn'"),
    ({"test": "password_never_expires", "flavor": "openldap"}, "needs 'never_expires_filter'"),
    ({"test": "stale_accounts", "url": "https://dc01"}, "is not an LDAP URL"),
    ({"test": "stale_accounts", "password_env": "hunter2 secret"}, "is not an environment variable name"),
    ({"test": "stale_accounts", "user_filter": "objectClass=user"}, "is not an LDAP filter"),
    ({"test": "generic_accounts", "patterns": ["(unclosed"]}, "not a valid regular expression"),
    ({"test": "stale_accounts", "url": "ldaps://dc01", "starttls": True}, "already encrypted"),
    ({"test": "everything"}, "test"),
    ({"test": "privileged_groups", "approved": {"Domain Admin": ["x"]}}, "approved names group.s. Domain Admin"),
    ({"test": "stale_accounts", "base_dn": ""}, "base_dn"),
])
def test_parameters_are_validated(params: dict[str, Any], error: str) -> None:
    base = {"url": "ldaps://dc01.gemeente.local", "base_dn": "DC=gemeente,DC=local", "bind_dn": "svc@gemeente.local",
            "password_env": ENV}
    with pytest.raises(ValidationError, match=error):
        Directory.Params.model_validate({**base, **params})


def test_what_describes_the_directory_may_stand_in_a_shared_target_entry() -> None:
    shared = {"url": "ldap://ldap.gemeente.nl", "flavor": "openldap", "base_dn": "dc=gemeente,dc=nl",
              "bind_dn": "cn=compliance,dc=gemeente,dc=nl", "password_env": ENV, "groups": ["beheerders"],
              "policy_dn": "cn=default,ou=policies,dc=gemeente,dc=nl", "never_expires_filter": "(pwdPolicySubentry=*)"}
    for test in ("stale_accounts", "password_never_expires", "privileged_groups", "generic_accounts",
                 "password_policy"):
        assert Directory.Params.model_validate({**shared, "test": test}).test == test


def test_long_lists_are_shortened_to_fit_the_evidence_limit() -> None:
    from compliance.api import EVIDENCE_LIMIT
    from compliance.checks.directory import _fit

    many = [{"account": f"account{i:05d}", "dn": f"cn=account{i:05d},ou=users,dc=example"} for i in range(2000)]
    fitted = _fit(Result.failed("t", "x", findings=many, findings_total=2000))
    assert len(json.dumps(fitted.evidence)) < EVIDENCE_LIMIT and fitted.evidence["shortened"] is True
    assert fitted.evidence["findings_total"] == 2000 and fitted.evidence["findings"][0] == many[0]


def test_times_are_read_in_all_forms() -> None:
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert parse_time(str(filetime(moment))) == moment
    assert parse_time("20260301123000Z") == moment
    assert parse_time("20260301143000+0200") == moment
    assert parse_time("20260301123000.5Z") == moment + timedelta(seconds=0.5)
    assert parse_time(str(int(moment.timestamp()))) == moment
    assert parse_time("0") is None and parse_time("9223372036854775807") is None and parse_time(None) is None
    with pytest.raises(ValueError, match="is not a time"):
        parse_time("yesterday")
