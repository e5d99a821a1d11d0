"""The port check's fast path: a LISTEN socket in the container's own /proc socket tables."""

from __future__ import annotations

from pathlib import Path

from lattice.cell.healthcheck import listening_in

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue\n"


def proc_with(tmp_path: Path, tcp: str = "", tcp6: str = "") -> Path:
    net = tmp_path / "42" / "net"
    net.mkdir(parents=True)
    (net / "tcp").write_text(HEADER + tcp)
    (net / "tcp6").write_text(HEADER + tcp6)
    return tmp_path


def test_a_listener_on_any_address_passes(tmp_path: Path) -> None:
    proc = proc_with(tmp_path, tcp6="   0: 00000000000000000000000000000000:1F90 "
                                    "00000000000000000000000000000000:0000 0A 0\n")
    assert listening_in(42, 8080, proc) is True
    assert listening_in(42, 9090, proc) is False


def test_loopback_only_or_not_listening_fails(tmp_path: Path) -> None:
    proc = proc_with(tmp_path, tcp="   0: 0100007F:1F90 00000000:0000 0A 0\n"
                                   "   1: 00000000:1F90 0100007F:D431 01 0\n",
                     tcp6="   0: 00000000000000000000000001000000:1F90 "
                          "00000000000000000000000000000000:0000 0A 0\n")
    assert listening_in(42, 8080, proc) is False


def test_unreadable_tables_leave_it_to_the_dialling_check(tmp_path: Path) -> None:
    assert listening_in(42, 8080, tmp_path) is None


def test_a_listener_in_a_long_table_is_found(tmp_path: Path) -> None:
    # More than one read's worth of lines before the listener, split across reads.
    others = "".join(f"{i:4}: 0100007F:{i:04X} 0100007F:1F90 01 0\n" for i in range(1, 4000))
    proc = proc_with(tmp_path, tcp=others + "4000: 00000000:1F90 00000000:0000 0A 0\n")
    assert listening_in(42, 8080, proc) is True
    assert listening_in(42, 8081, proc) is False


def test_a_match_in_tcp6_leaves_tcp_unread(tmp_path: Path) -> None:
    proc = proc_with(tmp_path, tcp6="   0: 00000000000000000000000000000000:1F90 "
                                    "00000000000000000000000000000000:0000 0A 0\n")
    (proc / "42" / "net" / "tcp").unlink()
    (proc / "42" / "net" / "tcp").mkdir()       # reading it would fail
    assert listening_in(42, 8080, proc) is True
