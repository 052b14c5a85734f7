"""TLS: our `tls` check versus sslyze on the same five local servers, suite by suite and in speed.

The five servers of issue 16, started here on loopback (tests/checks/tls_servers.py): `openssl s_server` with
a good configuration, one that also accepts an RSA key-exchange suite (TLS_RSA_WITH_AES_128_GCM_SHA256), one
that only does TLS 1.0, one with a weak DH group (ffdhe2048), and `gnutls-serv` without secure renegotiation
(RFC 5746; OpenSSL always has it; Debian package gnutls-bin, skipped when missing).

1. Agreement: per server and protocol version, the cipher suites each tool finds accepted (so the verdict on
   each suite, as both are rated by checks/ncsc_tls.yaml), the rating of the key-exchange group each suite
   uses (the group itself may differ: each client offers its own groups in its own order), secure
   renegotiation, TLS compression, the extended master secret, client-initiated renegotiation and 0-RTT.
   Printed side by side; every difference is named.
2. Speed: ours (the whole `tls` check: versions, certificate chain, every suite, cipher order, groups,
   renegotiation, compression, key-exchange hash; the five servers concurrently, as the engine runs checks)
   versus sslyze's CLI (`--json_out`, the five servers in one invocation, which sslyze scans concurrently)
   with the matching scan commands. Both are timed as wall time; sslyze's also without its interpreter's
   start-up (the time sslyze itself reports). Target: ours at least as fast. Runs alternate.

sslyze is installed for the run into a throwaway venv in the system's temporary folder and removed afterwards
(never into .venv or the checkout; `--no-sslyze` runs ours only). Nothing talks to the internet but pip.

Run: python bench/bench_tls.py [--runs 5]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = {"ssl_2_0": "SSL 2.0", "ssl_3_0": "SSL 3.0", "tls_1_0": "TLS 1.0", "tls_1_1": "TLS 1.1",
            "tls_1_2": "TLS 1.2", "tls_1_3": "TLS 1.3"}
SSLYZE_COMMANDS = ["--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3", "--reneg", "--compression",
                   "--ems", "--elliptic_curves", "--early_data"]
CURVES = {"prime256v1": "secp256r1", "X25519": "x25519", "X448": "x448"}


def ensure_sslyze(folder: Path) -> Path | None:
    """sslyze's CLI, installed into a venv made in FOLDER (temporary), or None if that fails."""
    python = folder / "bin" / "python"
    print("installing sslyze into a temporary venv ...", flush=True)
    steps = [[sys.executable, "-m", "venv", str(folder)], [str(python), "-m", "pip", "install", "-q", "sslyze"]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"could not install sslyze ({' '.join(step[-2:])}): {done.stderr.strip()[-300:]}")
            return None
    return folder / "bin" / "sslyze"


# --- ours ---------------------------------------------------------------------------------------------


def ours(ports: dict[str, int], ca_file: str) -> tuple[float, dict[str, dict[str, Any]]]:
    from compliance.api import Context
    from compliance.checks.tls import Tls

    def one(port: int) -> dict[str, Any]:
        params = Tls.Params.model_validate({"host": "127.0.0.1", "port": port, "ca_file": ca_file})
        [result] = Tls().run(params, Context("bench", 60, net_timeout=10))
        return {"status": str(result.status), "message": result.message, **result.evidence}

    started = time.perf_counter()
    with ThreadPoolExecutor(len(ports)) as pool:
        found = dict(zip(ports, pool.map(one, ports.values()), strict=True))
    return time.perf_counter() - started, found


def our_view(evidence: dict[str, Any]) -> dict[str, Any]:
    """The comparable part of our evidence."""
    suites = {version: {entry["suite"]: entry.get("group") for entry in entries}
              for version, entries in evidence.get("accepted_suites", {}).items() if entries}
    return {"suites": suites, "secure_renegotiation": evidence.get("secure_renegotiation"),
            "compression": evidence.get("compression") not in (None, "none"),
            "extended_master_secret": evidence.get("extended_master_secret"),
            "client_renegotiation": evidence.get("client_renegotiation") == "accepted",
            "zero_rtt": evidence.get("zero_rtt") == "accepted"}


# --- sslyze ----------------------------------------------------------------------------------------------


def theirs(sslyze: Path, ports: dict[str, int], folder: Path) -> tuple[float, float, dict[str, dict[str, Any]]]:
    """(wall seconds, seconds sslyze reports for its scans, per server the comparable view)."""
    out = folder / "sslyze.json"
    started = time.perf_counter()
    done = subprocess.run([str(sslyze), *SSLYZE_COMMANDS, f"--json_out={out}",
                           *(f"127.0.0.1:{port}" for port in ports.values())], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"sslyze failed: {done.stderr[-500:]}")
    data = json.loads(out.read_text())
    scanned = (datetime.fromisoformat(data["date_scans_completed"].replace("Z", "+00:00"))
               - datetime.fromisoformat(data["date_scans_started"].replace("Z", "+00:00"))).total_seconds()
    by_port = {int(result["server_location"]["port"]): result for result in data["server_scan_results"]}
    return wall, scanned, {name: sslyze_view(by_port[port]) for name, port in ports.items()}


def sslyze_view(result: dict[str, Any]) -> dict[str, Any]:
    from compliance.checks import _tlsprobe as probes

    scan = result.get("scan_result") or {}

    def result_of(key: str) -> dict[str, Any]:
        return (scan.get(key) or {}).get("result") or {}

    suites: dict[str, dict[str, str | None]] = {}
    for key, label in VERSIONS.items():
        accepted = result_of(f"{key}_cipher_suites").get("accepted_cipher_suites") or []
        if not accepted:
            continue
        suites[label] = {}
        for entry in accepted:
            key_info = entry.get("ephemeral_key") or {}
            group = None
            if key_info.get("type_name") == "DH" and key_info.get("prime"):
                group = probes.dh_group_name(int.from_bytes(base64.b64decode(key_info["prime"]), "big"))
            elif key_info.get("curve_name"):
                group = CURVES.get(key_info["curve_name"], key_info["curve_name"])
            suites[label][entry["cipher_suite"]["name"]] = group
    reneg = result_of("session_renegotiation")
    ems = result_of("tls_extended_master_secret")
    return {"suites": suites,
            "secure_renegotiation": reneg.get("supports_secure_renegotiation") if reneg else None,
            "compression": bool(result_of("tls_compression").get("supports_compression")),
            "extended_master_secret": ems.get("supports_ems_extension") if ems else None,
            "client_renegotiation": bool(reneg.get("client_renegotiations_success_count")
                                         or reneg.get("is_vulnerable_to_client_renegotiation_dos")),
            "zero_rtt": bool(result_of("tls_1_3_early_data").get("supports_early_data"))}


# --- comparison ----------------------------------------------------------------------------------------


def compare(name: str, our: dict[str, Any], their: dict[str, Any], rules: dict[str, Any]) -> list[str]:
    """Print both side by side; return the differences."""
    from compliance.checks.tls import rate_cipher, rate_group

    differences = []
    print(f"\n{name}")
    for version in sorted(set(our["suites"]) | set(their["suites"]), reverse=True):
        mine, other = our["suites"].get(version, {}), their["suites"].get(version, {})
        for suite in sorted(set(mine) | set(other)):
            rating = rate_cipher(rules, suite)
            in_ours, in_theirs = suite in mine, suite in other
            # the group: the same rating (each client offers its own groups in its own order, so a server
            # that follows the client picks x25519 for one and secp256r1 for the other: both good)
            same_group = (not in_ours or mine[suite] == other[suite]
                          or (None not in (mine[suite], other[suite])
                              and rate_group(rules, str(mine[suite])) == rate_group(rules, str(other[suite]))))
            agree = in_ours == in_theirs and same_group
            shown = (f"  {version}  {suite:<48} {rating:<12} ours: {'accepted' if in_ours else '-':<8} "
                     f"{mine.get(suite) or '':<10} sslyze: {'accepted' if in_theirs else '-':<8} "
                     f"{other.get(suite) or '':<10} {'' if agree else 'DIFFER'}")
            print(shown)
            if not agree:
                differences.append(f"{name}: {version} {suite}")
    for key in ("secure_renegotiation", "compression", "extended_master_secret", "client_renegotiation", "zero_rtt"):
        agree = our[key] == their[key]
        print(f"  {key:<24} ours: {our[key]!s:<8} sslyze: {their[key]!s:<8} {'' if agree else 'DIFFER'}")
        if not agree:
            differences.append(f"{name}: {key}")
    return differences


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):6.3f} s (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each tool (medians are reported)")
    parser.add_argument("--no-sslyze", action="store_true", help="run ours only")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import trustme

    from compliance.checks.tls import profile
    from tests.checks.tls_servers import GNUTLS_SERV, PROFILES, GnuTlsServer, OpenSslServer

    with tempfile.TemporaryDirectory(prefix="bench-tls-") as folder, ExitStack() as stack:
        sslyze = None if args.no_sslyze else ensure_sslyze(Path(folder) / "venv")
        ca = trustme.CA()
        ca_file = str(Path(folder) / "ca.pem")
        ca.cert_pem.write_to_path(ca_file)
        cert = ca.issue_cert("127.0.0.1", key_type=trustme.KeyType.RSA)
        ports = {name: stack.enter_context(OpenSslServer(cert, *options)).port for name, options in PROFILES.items()}
        if GNUTLS_SERV:
            ports["no_secure_renegotiation"] = stack.enter_context(GnuTlsServer(cert)).port
        else:
            print("gnutls-serv not installed (Debian gnutls-bin): the server without secure renegotiation is left out")
        our_times, their_walls, their_scans = [], [], []
        found: dict[str, dict[str, Any]] = {}
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(args.runs):  # alternate, so noise hits both alike
            seconds, found = ours(ports, ca_file)
            our_times.append(seconds)
            if sslyze is not None:
                wall, scanned, seen = theirs(sslyze, ports, Path(folder))
                their_walls.append(wall)
                their_scans.append(scanned)

        rules = profile("ncsc-2025-05")
        print(f"\n{len(ports)} servers on loopback ({', '.join(ports)}); {args.runs} runs; ratings: ncsc-2025-05")
        print("\nour verdicts:")
        for name, evidence in found.items():
            print(f"  {name:<24} {evidence['status']:<5} {evidence['message'][:200]}")
        if sslyze is None:
            print(f"\nours:   {spread(our_times)}")
            print("sslyze comparison skipped" + (" (--no-sslyze)" if args.no_sslyze else
                                                 " (sslyze could not be installed)"))
            return
        version = subprocess.run([str(sslyze.parent / "python"), "-c",
                                  "import importlib.metadata as m; print(m.version('sslyze'))"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"\nsuite by suite, ours vs sslyze {version} (rating from ncsc_tls.yaml; the group each suite used):")
        differences = [d for name in ports for d in compare(name, our_view(found[name]), seen[name], rules)]
        agreement = "all suites and options agree" if not differences else "DIFFER: " + "; ".join(differences)
        print(f"\nagreement: {agreement}")
        print(f"\nours (whole tls check, 5 servers concurrently):  {spread(our_times)}")
        print(f"sslyze CLI (same servers, one invocation):        {spread(their_walls)}")
        print(f"sslyze's own scan time (without start-up):        {spread(their_scans)}")
        ours_median, theirs_median = statistics.median(our_times), statistics.median(their_walls)
        print(f"ours is {theirs_median / ours_median:.1f}x the speed of sslyze's CLI, "
              f"{statistics.median(their_scans) / ours_median:.1f}x its scan alone; target: ours at least as fast: "
              f"{'met' if ours_median <= min(theirs_median, statistics.median(their_scans)) else 'NOT met'}")


if __name__ == "__main__":
    main()
