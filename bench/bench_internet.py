"""Internet standards: 500 HTTPS sites and 500 mail domains on loopback, 50 ms per answer.

1. Scan speed: the real `https` and `mail_auth` plugins through the real engine (`run_scan`, SQLite
   store), one by one (concurrency 1) versus the default concurrency, side by side in one run; the
   ratio of the medians is the speed-up (target >= 20x). Every HTTP(S) response and every DNS answer
   is delayed 50 ms by the loopback servers, which run in a separate process (so their TLS and
   threads do not share the scanner's interpreter lock).
2. The same 500 mail domains checked by our `mail_auth` and by the checkdmarc package: the SPF and
   DMARC verdicts must agree, and ours must be no slower (both through a pool of the same size,
   alternating runs). checkdmarc is installed for the run into a throwaway venv in the system's temporary
   folder, removed afterwards (`--no-checkdmarc` skips this part). Not in the project's test extra: it
   brings dnspython's DNS-over-HTTPS extra (httpx, h2), which dnspython then imports on every
   `import dns.resolver`, adding about 0.3 s to every command in that venv and so to the start-up figures.

Nothing is left behind: the test CA and the venv live in temporary folders removed at the end.

Run: python bench/bench_internet.py [--sites 500] [--domains 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DELAY = 0.05
ZONE = "bench.test"
GOOD_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'",
}


# --- what the loopback servers serve ------------------------------------------------------------

def site_headers(i: int) -> dict[str, str]:
    """Site i: every tenth has no HSTS, every tenth (another) a short one; the rest are fine."""
    headers = dict(GOOD_HEADERS)
    if i % 10 == 0:
        del headers["Strict-Transport-Security"]
    elif i % 10 == 1:
        headers["Strict-Transport-Security"] = "max-age=600"
    return headers


def domain(i: int) -> str:
    return f"d{i}.{ZONE}"


def expected_mail(i: int) -> dict[str, bool]:
    """The SPF and DMARC verdicts domain i must get (True = pass)."""
    kind = i % 10
    return {"spf": kind not in (1, 2, 3), "dmarc": kind not in (0, 4)}


def mail_zone(n: int) -> str:
    import base64

    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from tests.servers import txt_record

    public = rsa.generate_private_key(65537, 2048).public_key()
    key = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    dkim = "v=DKIM1; k=rsa; p=" + base64.b64encode(key).decode()
    lines = [f"$ORIGIN {ZONE}.", "$TTL 300", f"@ SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300",
             f"@ NS ns.{ZONE}.", '_spf TXT "v=spf1 ip4:198.51.100.0/24 ~all"']
    lines += [f'inc{k} TXT "v=spf1 ip4:203.0.113.{k}/32 ~all"' for k in range(11)]
    for i in range(n):
        name, kind = f"d{i}", i % 10
        spf = {1: ["v=spf1 ip4:192.0.2.0/24 ?all"],
               2: ["v=spf1 ip4:192.0.2.0/24 -all", "v=spf1 include:_spf.bench.test -all"],
               3: ["v=spf1 " + " ".join(f"include:inc{k}.{ZONE}" for k in range(11)) + " -all"]}.get(
            kind, [f"v=spf1 ip4:192.0.2.0/24 include:_spf.{ZONE} -all"])
        lines += [f"{name} TXT {txt_record(record)}" for record in spf]
        policy = "none" if kind == 0 else "reject"
        rua = "" if kind == 4 else f"; rua=mailto:dmarc@{domain(i)}"
        lines.append(f'_dmarc.{name} TXT "v=DMARC1; p={policy}{rua}"')
        lines.append(f"sel._domainkey.{name} TXT {txt_record(dkim)}")
    return "\n".join(lines) + "\n"


def serve(conn: Any, n_domains: int) -> None:
    """The server process: HTTPS and HTTP for the sites, DNS for the domains, until told to stop."""
    sys.path.insert(0, str(ROOT))
    import trustme


    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    with tempfile.TemporaryDirectory(prefix="bench-internet-") as folder:
        ca_path = f"{folder}/ca.pem"
        ca.cert_pem.write_to_path(ca_path)
        serve_sites(conn, n_domains, ca, ca_path)


def serve_sites(conn: Any, n_domains: int, ca: Any, ca_path: str) -> None:
    import trustme

    from tests.servers import DnsServer, HttpServer, Reply, server_context

    context = server_context(ca.issue_cert("127.0.0.1", key_type=trustme.KeyType.ECDSA))

    def https_routes(path: str, host: str) -> Reply:
        i = int(path.split("/")[2]) if path.startswith("/site/") else 0
        return Reply(200, site_headers(i), b"<html>gemeente</html>")

    with HttpServer(https_routes, context=context, delay=DELAY) as https_server:
        def http_routes(path: str, host: str) -> Reply:
            return Reply(301, {"Location": f"{https_server.url}{path}"})

        with HttpServer(http_routes, delay=DELAY) as http_server, \
                DnsServer({f"{ZONE}.": mail_zone(n_domains)}, delay=DELAY) as dns_server:
            conn.send({"https": https_server.url, "http": http_server.url, "nameserver": dns_server.nameserver,
                       "ca_file": ca_path})
            conn.recv()  # until told to stop


# --- scan through the engine --------------------------------------------------------------------

def controls(servers: dict[str, Any], n_sites: int, n_domains: int, per_control: int = 10) -> list[Any]:
    from compliance.catalog import Control

    sites = [{"url": f"{servers['https']}/site/{i}/", "http_url": f"{servers['http']}/site/{i}/"}
             for i in range(n_sites)]
    domains = [domain(i) for i in range(n_domains)]

    def make(prefix: str, plugin: str, params: dict[str, Any], targets: list[Any]) -> list[Any]:
        return [Control.model_validate({
            "id": f"{prefix}-{c:03d}", "title": f"{plugin} {c}", "theme": "technological", "severity": "high",
            "checks": [{"plugin": plugin, "params": params, "targets": targets[c:c + per_control]}]})
            for c in range(0, len(targets), per_control)]

    return make("WEB", "https", {}, sites) + make("MAIL", "mail_auth", {"dkim_selectors": ["sel"]}, domains)


def scan(ctrls: list[Any], servers: dict[str, Any], concurrency: int) -> tuple[float, dict[str, int]]:
    from bench.common import timed_scan

    elapsed, report = timed_scan(ctrls, concurrency, {
        "scan": {"timeout": 120},
        "network": {"nameserver": servers["nameserver"], "ca_file": servers["ca_file"], "timeout": 30}})
    counts: dict[str, int] = {}
    for outcome in report.outcomes:
        for plugin, _, result in outcome.results:
            key = f"{plugin} {result.status.value}"
            counts[key] = counts.get(key, 0) + 1
    return elapsed, counts


# --- our mail_auth versus checkdmarc ------------------------------------------------------------

def ours(domains: list[str], nameserver: str, concurrency: int) -> tuple[float, dict[str, dict[str, bool]]]:
    from compliance.api import Context, Status
    from compliance.checks.mail_auth import MailAuth

    def one(name: str) -> dict[str, bool]:
        params = MailAuth.Params(domain=name, dkim_selectors=["sel"], nameserver=nameserver, timeout=30)
        results = {r.evidence.get("standard"): r.status for r in MailAuth().run(params, Context("bench", 120))}
        return {"spf": results["spf"] == Status.PASS, "dmarc": results["dmarc"] == Status.PASS}

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        verdicts = dict(zip(domains, pool.map(one, domains), strict=True))
    return time.perf_counter() - started, verdicts


def checkdmarc_worker() -> None:
    """Runs in bench/.venv (checkdmarc installed): read a job on stdin, print timings and verdicts."""
    import dns.resolver
    from checkdmarc.dmarc import check_dmarc
    from checkdmarc.spf import check_spf
    from checkdmarc.utils import DNS_CACHE

    job = json.load(sys.stdin)
    host, port = job["nameserver"].rsplit(":", 1)

    def resolver() -> dns.resolver.Resolver:
        res = dns.resolver.Resolver(configure=False)
        res.nameservers, res.port, res.timeout, res.lifetime = [host], int(port), 30.0, 30.0
        return res

    def one(name: str) -> dict[str, bool]:
        spf = check_spf(name, resolver=resolver(), timeout=30.0)
        spf_ok = bool(spf.get("valid")) and (spf.get("parsed") or {}).get("all") in ("fail", "softfail") \
            and (spf.get("dns_lookups") or 0) <= 10
        dmarc = check_dmarc(name, resolver=resolver(), timeout=30.0)
        tags = dmarc.get("tags") or {}
        policy = (tags.get("p") or {}).get("value")
        rua = (tags.get("rua") or {}).get("value") or []
        dmarc_ok = bool(dmarc.get("valid")) and policy in ("quarantine", "reject") and bool(rua)
        return {"spf": spf_ok, "dmarc": dmarc_ok}

    DNS_CACHE.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(job["concurrency"]) as pool:
        verdicts = dict(zip(job["domains"], pool.map(one, job["domains"]), strict=True))
    json.dump({"seconds": time.perf_counter() - started, "verdicts": verdicts}, sys.stdout)


def ensure_checkdmarc(folder: Path) -> Path | None:
    """A Python with checkdmarc installed, in a venv made in FOLDER (temporary), or None if that fails."""
    python = folder / "bin" / "python"
    print("installing checkdmarc into a temporary venv ...", flush=True)
    steps = [[sys.executable, "-m", "venv", str(folder)], [str(python), "-m", "pip", "install", "-q", "checkdmarc"]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"could not install checkdmarc ({' '.join(step[-2:])}): {done.stderr.strip()[-300:]}")
            return None
    return python


def theirs(python: Path, domains: list[str], nameserver: str, concurrency: int) -> tuple[float, dict[str, Any]]:
    job = json.dumps({"domains": domains, "nameserver": nameserver, "concurrency": concurrency})
    done = subprocess.run([str(python), __file__, "--checkdmarc-worker"], input=job, capture_output=True, text=True,
                          check=True)
    answer = json.loads(done.stdout)
    return answer["seconds"], answer["verdicts"]


# --- main ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--domains", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant (medians are reported)")
    parser.add_argument("--no-checkdmarc", action="store_true", help="skip the comparison with checkdmarc")
    parser.add_argument("--checkdmarc-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.checkdmarc_worker:
        checkdmarc_worker()
        return
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-checkdmarc-") as venv:
        python = None if args.no_checkdmarc else ensure_checkdmarc(Path(venv))
        compare(args, python)


def compare(args: argparse.Namespace, python: Path | None) -> None:
    from compliance.settings import ScanSettings

    concurrency = ScanSettings().concurrency
    parent, child = multiprocessing.get_context("fork").Pipe()
    server = multiprocessing.get_context("fork").Process(target=serve, args=(child, args.domains), daemon=True)
    server.start()
    try:
        servers = parent.recv()
        ctrls = controls(servers, args.sites, args.domains)
        n_checks = args.sites + args.domains
        sequential, concurrent = [], []
        for _ in range(args.runs):  # alternate, so noise hits both alike
            seconds, seq_counts = scan(ctrls, servers, 1)
            sequential.append(seconds)
            seconds, con_counts = scan(ctrls, servers, concurrency)
            concurrent.append(seconds)
            assert seq_counts == con_counts, (seq_counts, con_counts)
        seq, con = statistics.median(sequential), statistics.median(concurrent)
        print(f"{args.sites} HTTPS sites + {args.domains} mail domains on loopback, every answer delayed "
              f"{DELAY * 1000:.0f} ms; real engine, SQLite store, {args.runs} runs")
        print(f"results: {', '.join(f'{k}: {v}' for k, v in sorted(con_counts.items()))}")
        print(f"one by one (concurrency 1):     median {seq:7.2f} s  "
              f"(runs: {', '.join(f'{s:.2f}' for s in sequential)})")
        print(f"concurrent (default {concurrency}):       median {con:7.2f} s  "
              f"(runs: {', '.join(f'{s:.2f}' for s in concurrent)})")
        print(f"speed-up {seq / con:.1f}x for {n_checks} checks (target >= 20x): "
              f"{'met' if seq / con >= 20 else 'NOT met'}")

        domains = [domain(i) for i in range(args.domains)]
        expected = {domain(i): expected_mail(i) for i in range(args.domains)}
        if python is None:
            print("checkdmarc comparison skipped" + (" (--no-checkdmarc)" if args.no_checkdmarc else
                                                     " (checkdmarc could not be installed)"))
            return
        our_times, their_times = [], []
        for _ in range(args.runs):
            seconds, our_verdicts = ours(domains, servers["nameserver"], concurrency)
            our_times.append(seconds)
            seconds, their_verdicts = theirs(python, domains, servers["nameserver"], concurrency)
            their_times.append(seconds)
        assert our_verdicts == expected, "our verdicts differ from the zone's design"
        differ = sorted(d for d in domains if our_verdicts[d] != their_verdicts[d])
        version = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('checkdmarc'))"],
                                 capture_output=True, text=True).stdout.strip()
        ours_median, theirs_median = statistics.median(our_times), statistics.median(their_times)
        print(f"\nSPF + DMARC verdicts of {args.domains} domains, ours vs checkdmarc {version} "
              f"(same DNS server, pool of {concurrency}, {args.runs} runs):")
        print(f"same verdicts: {args.domains - len(differ)} of {args.domains}" +
              (f"; differ: {', '.join(differ[:10])}" if differ else ""))
        print(f"mail_auth (SPF, DMARC and DKIM): median {ours_median:6.2f} s  "
              f"(runs: {', '.join(f'{s:.2f}' for s in our_times)})")
        print(f"checkdmarc (SPF and DMARC):      median {theirs_median:6.2f} s  "
              f"(runs: {', '.join(f'{s:.2f}' for s in their_times)})")
        print(f"ours is {theirs_median / ours_median:.2f}x the speed of checkdmarc: "
              f"{'no slower' if ours_median <= theirs_median else 'SLOWER'}")
    finally:
        parent.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
