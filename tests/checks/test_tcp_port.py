"""tcp_port against real sockets on loopback."""

from __future__ import annotations

from compliance.api import Context, Result, Status
from compliance.checks.tcp_port import TcpPort
from compliance.project import BannerServer, free_port


def run(**params: object) -> Result:
    p = TcpPort.Params.model_validate(params)
    [result] = TcpPort().run(p, Context("C", 5))
    return result


def test_open_port_expected_open_passes() -> None:
    with BannerServer() as server:
        result = run(host="127.0.0.1", port=server.port)
    assert result.status == Status.PASS and result.target == f"127.0.0.1:{server.port}"


def test_open_port_expected_closed_fails() -> None:
    with BannerServer() as server:
        result = run(host="127.0.0.1", port=server.port, expect="closed")
    assert result.status == Status.FAIL
    assert result.message == f"Port 127.0.0.1:{server.port} is open; it must be closed."


def test_closed_port() -> None:
    port = free_port()
    assert run(host="127.0.0.1", port=port, expect="closed").status == Status.PASS
    result = run(host="127.0.0.1", port=port)
    assert result.status == Status.FAIL and "closed (refused); it must be open" in result.message


def test_banner_is_read_even_when_it_comes_late() -> None:
    with BannerServer(b"SSH-2.0-OpenSSH_9.6\r\n", delay=0.1) as server:
        ok = run(host="127.0.0.1", port=server.port, banner=r"^SSH-2\.0-OpenSSH_9")
        wrong = run(host="127.0.0.1", port=server.port, banner=r"^SSH-2\.0-Dropbear")
    assert ok.status == Status.PASS and ok.evidence["banner"].startswith("SSH-2.0-OpenSSH")
    assert wrong.status == Status.FAIL and "'SSH-2.0-OpenSSH_9.6'" in wrong.message


def test_unresolvable_host_is_an_error() -> None:
    result = run(host="no-such-host.invalid", port=22)
    assert result.status == Status.ERROR and result.message.startswith("Cannot resolve no-such-host.invalid")
