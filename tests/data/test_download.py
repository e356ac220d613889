"""`crossrank.data.download` and `crossrank download` against a real HTTP server on 127.0.0.1.

The server (ThreadingHTTPServer on a random port, in a daemon thread, shut down after each test)
serves bytes the tests put in `server.files`; it can honour Range requests (206/416), ignore them
(200), or drop the connection part-way, and logs every request it answers.
"""
from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import crossrank.cli.main as cli_main
from crossrank.data import download as dl
from crossrank.data.download import transfer
from crossrank.data.download import (
    ChecksumError,
    Dataset,
    DownloadError,
    RemoteFile,
    UnsafeArchiveError,
    download_file,
    extract_archive,
    missing_data_message,
)

PAYLOAD = bytes(range(256)) * 1200 + b"tail"  # 307,204 bytes, not a multiple of the chunk size


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a stuck client cannot hold a server thread forever

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        server = self.server
        name = self.path.lstrip("/")
        body = server.files.get(name)
        range_header = self.headers.get("Range")
        entry = {"path": name, "range": range_header, "status": None, "sent": 0}
        server.log.append(entry)
        if body is None:
            entry["status"] = 404
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        status = 200
        if range_header and server.honour_range:
            match = re.fullmatch(r"bytes=(\d+)-", range_header)
            assert match, range_header
            start = int(match.group(1))
            if start >= len(body):
                entry["status"] = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        chunk = body[start:]
        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Length", str(len(chunk)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if server.drop_after is not None and server.drops_left > 0:  # announce everything, send part
            server.drops_left -= 1
            chunk = chunk[: server.drop_after]
            self.close_connection = True
        self.wfile.write(chunk)
        entry["sent"] = len(chunk)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.files = {}
    httpd.log = []
    httpd.honour_range = True
    httpd.drop_after = None
    httpd.drops_left = 0
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def fetch(server, tmp_path: Path, name: str = "file.bin", **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("retry_wait", 0)
    kwargs.setdefault("timeout", 10)
    return download_file(f"{server.url}/{name}", tmp_path / name, **kwargs)


# ---------------------------------------------------------------------------------------------
# download_file
# ---------------------------------------------------------------------------------------------

def test_fresh_download_is_verified_and_renamed(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    result = fetch(server, tmp_path, md5=md5(PAYLOAD), size=len(PAYLOAD))
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD
    assert not (tmp_path / "file.bin.part").exists()
    assert (result.status, result.algorithm, result.digest, result.verified) == ("downloaded", "md5", md5(PAYLOAD), True)
    assert result.bytes_fetched == len(PAYLOAD)
    assert server.log == [{"path": "file.bin", "range": None, "status": 200, "sent": len(PAYLOAD)}]


def test_sha256_is_checked_when_given(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    result = fetch(server, tmp_path, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert (result.algorithm, result.verified) == ("sha256", True)


def test_resume_requests_only_the_remaining_bytes(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:100_000])
    result = fetch(server, tmp_path, md5=md5(PAYLOAD), size=len(PAYLOAD))
    assert result.status == "resumed" and result.bytes_fetched == len(PAYLOAD) - 100_000
    assert server.log == [{"path": "file.bin", "range": "bytes=100000-", "status": 206, "sent": len(PAYLOAD) - 100_000}]
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD
    assert not (tmp_path / "file.bin.part").exists()


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    server.honour_range = False
    # garbage in the part: appending the full body to it would fail the checksum
    (tmp_path / "file.bin.part").write_bytes(b"x" * 50_000)
    result = fetch(server, tmp_path, md5=md5(PAYLOAD))
    assert server.log == [{"path": "file.bin", "range": "bytes=50000-", "status": 200, "sent": len(PAYLOAD)}]
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD
    assert result.status == "downloaded"


def test_complete_part_answered_416_is_finished(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD)
    result = fetch(server, tmp_path, md5=md5(PAYLOAD))  # no size: must ask the server
    assert [e["status"] for e in server.log] == [416]
    assert server.log[0]["range"] == f"bytes={len(PAYLOAD)}-"
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD and result.verified


def test_complete_part_with_known_size_needs_no_request(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD)
    fetch(server, tmp_path, md5=md5(PAYLOAD), size=len(PAYLOAD))
    assert server.log == []
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_removes_the_part_and_names_everything(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as info:
        fetch(server, tmp_path, md5=wrong)
    message = str(info.value)
    assert "file.bin" in message and wrong in message and md5(PAYLOAD) in message
    assert (info.value.expected, info.value.actual) == (wrong, md5(PAYLOAD))
    assert not (tmp_path / "file.bin").exists()
    assert not (tmp_path / "file.bin.part").exists()


def test_size_mismatch_is_an_error_too(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    with pytest.raises(ChecksumError, match="size mismatch"):
        fetch(server, tmp_path, md5=md5(PAYLOAD), size=len(PAYLOAD) + 1)
    assert not (tmp_path / "file.bin").exists() and not (tmp_path / "file.bin.part").exists()


def test_present_verified_file_is_skipped_and_force_downloads_again(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    fetch(server, tmp_path, md5=md5(PAYLOAD))
    again = fetch(server, tmp_path, md5=md5(PAYLOAD))
    assert again.status == "skipped" and again.verified and len(server.log) == 1
    forced = fetch(server, tmp_path, md5=md5(PAYLOAD), force=True)
    assert forced.status == "downloaded" and len(server.log) == 2


def test_present_corrupt_file_is_reported_not_silently_replaced(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    (tmp_path / "file.bin").write_bytes(b"not it")
    with pytest.raises(ChecksumError, match="--force"):
        fetch(server, tmp_path, md5=md5(PAYLOAD))
    assert server.log == [] and (tmp_path / "file.bin").read_bytes() == b"not it"
    fetch(server, tmp_path, md5=md5(PAYLOAD), force=True)
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_dropped_connection_is_retried_from_where_it_stopped(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    server.drop_after, server.drops_left = 120_000, 1
    result = fetch(server, tmp_path, md5=md5(PAYLOAD), retries=2)
    assert [(e["range"], e["status"], e["sent"]) for e in server.log] == [
        (None, 200, 120_000), ("bytes=120000-", 206, len(PAYLOAD) - 120_000)]
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD and result.verified


def test_interruption_keeps_the_part_for_the_next_run(server, tmp_path):
    server.files["file.bin"] = PAYLOAD
    server.drop_after, server.drops_left = 70_000, 1
    with pytest.raises(DownloadError, match="run again to resume"):
        fetch(server, tmp_path, md5=md5(PAYLOAD), retries=0)
    assert (tmp_path / "file.bin.part").read_bytes() == PAYLOAD[:70_000]
    assert not (tmp_path / "file.bin").exists()
    result = fetch(server, tmp_path, md5=md5(PAYLOAD))
    assert result.status == "resumed" and server.log[-1]["range"] == "bytes=70000-"
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_without_published_checksum_the_sha256_is_recorded(server, tmp_path, caplog):
    server.files["file.bin"] = PAYLOAD
    with caplog.at_level("WARNING", logger="crossrank.data.download"):
        result = fetch(server, tmp_path)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert (result.algorithm, result.digest, result.verified) == ("sha256", sha, False)
    assert (tmp_path / "file.bin.sha256").read_text() == f"{sha}  file.bin\n"
    assert "no published checksum" in caplog.text
    assert fetch(server, tmp_path).status == "skipped"
    (tmp_path / "file.bin").write_bytes(b"changed")
    with pytest.raises(ChecksumError, match="recorded"):
        fetch(server, tmp_path)


def test_http_errors_name_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/absent\.bin: HTTP 404"):
        fetch(server, tmp_path, name="absent.bin")
    assert not (tmp_path / "absent.bin").exists() and not (tmp_path / "absent.bin.part").exists()


@pytest.mark.skipif(transfer.fcntl is None, reason="POSIX file locks only")
def test_a_part_locked_by_another_download_is_left_alone(server, tmp_path):
    import fcntl

    server.files["file.bin"] = PAYLOAD
    with open(tmp_path / "file.bin.part", "wb") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DownloadError, match="locked"):
            fetch(server, tmp_path, md5=md5(PAYLOAD))
    assert server.log == []


# ---------------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------------

def make_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def test_tar_gz_extraction(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", {"collection.tsv": b"0\tpassage\n", "./sub/q.tsv": b"1\tq\n"})
    dest = tmp_path / "out"
    written = extract_archive(archive, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in written) == ["collection.tsv", "sub/q.tsv"]
    assert (dest / "sub" / "q.tsv").read_bytes() == b"1\tq\n"
    assert not any(p.name.endswith(".extracting") for p in dest.iterdir())
    assert extract_archive(archive, dest) == written  # marker: second call is a no-op


@pytest.mark.parametrize("bad", ["../evil.txt", "sub/../../evil.txt", "/tmp/crossrank-evil.txt"])
def test_tar_path_traversal_is_rejected_and_nothing_written(tmp_path, bad):
    archive = make_tar(tmp_path / "bad.tar.gz", {"good.txt": b"ok", bad: b"evil"})
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="evil"):
        extract_archive(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/crossrank-evil.txt").exists()
    assert list(dest.iterdir()) == []  # good.txt stayed in the (removed) staging folder


def test_tar_links_are_rejected(tmp_path):
    archive = make_tar(tmp_path / "link.tar.gz", {"a.txt": b"a"}, links={"passwd": "/etc/passwd"})
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "passwd").exists()


def test_zip_extraction_and_traversal(tmp_path):
    good = tmp_path / "scifact.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("scifact/corpus.jsonl", '{"_id": "1"}\n')
        zf.writestr("scifact/qrels/test.tsv", "query-id\tcorpus-id\tscore\n")
    written = extract_archive(good, tmp_path / "out")
    assert (tmp_path / "out" / "scifact" / "qrels" / "test.tsv").is_file() and len(written) == 2
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("fine.txt", "x")
        zf.writestr("../escape.txt", "x")
    with pytest.raises(UnsafeArchiveError, match="escape"):
        extract_archive(bad, tmp_path / "out2")
    assert not (tmp_path / "escape.txt").exists() and list((tmp_path / "out2").iterdir()) == []


def test_safe_member_path():
    assert dl.safe_member_path("./a/b.txt").as_posix() == "a/b.txt"
    for bad in ("/etc/passwd", "C:\\Windows\\x", "a\\..\\..\\x", ".."):
        with pytest.raises(UnsafeArchiveError):
            dl.safe_member_path(bad)


# ---------------------------------------------------------------------------------------------
# registry, CLI, message
# ---------------------------------------------------------------------------------------------

def test_registry_entries_are_official_and_checksummed():
    assert {"msmarco-passage", "trec-dl-2019", "beir-scifact"} <= set(dl.REGISTRY)
    names = {f.name for f in dl.REGISTRY["msmarco-passage"].files}
    assert names == {"collection.tar.gz", "queries.tar.gz", "qrels.dev.small.tsv", "qrels.train.tsv",
                     "top1000.dev.tar.gz", "triples.train.small.tar.gz"}
    for dataset in dl.REGISTRY.values():
        for remote in dataset.files:
            assert remote.url.startswith("https://") and remote.url.endswith("/" + remote.name)
            assert remote.md5 and len(remote.md5) == 32
    hosts = {f.url.split("/")[2] for d in dl.REGISTRY.values() for f in d.files}
    assert hosts == {"msmarco.z22.web.core.windows.net", "trec.nist.gov", "public.ukp.informatik.tu-darmstadt.de"}
    with pytest.raises(ValueError):
        RemoteFile("x", "https://h/x", md5="not-hex")


@pytest.fixture
def toy_registry(server, tmp_path, monkeypatch):
    tar_path = make_tar(tmp_path / "toy.tar.gz", {"toy/collection.tsv": b"0\tfirst passage\n"})
    server.files["qrels.tsv"] = b"1 0 0 1\n"
    server.files["toy.tar.gz"] = tar_path.read_bytes()
    registry = {"toy": Dataset("toy", "a toy dataset", (
        RemoteFile("qrels.tsv", "https://example.invalid/qrels.tsv", md5=md5(b"1 0 0 1\n"), size=8),
        RemoteFile("toy.tar.gz", "https://example.invalid/toy.tar.gz", md5=md5(tar_path.read_bytes()),
                   contents=("toy/collection.tsv",)),
    ), terms="toy terms")}
    monkeypatch.setattr(dl, "REGISTRY", registry)
    return registry


@pytest.fixture
def crossrank(monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "COMMANDS", {"download": "download"})

    def call(*argv) -> tuple[int, str, str]:
        rc = cli_main.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return rc, out, err

    return call


def test_main_registers_download():
    assert cli_main.COMMANDS.get("download") == "download"


def test_cli_downloads_extracts_and_skips(server, toy_registry, tmp_path, crossrank):
    dest = tmp_path / "data" / "toy"
    rc, out, err = crossrank("download", "toy", "--dest", dest, "--base-url", server.url, "--extract", "--no-progress")
    assert rc == 0, err
    assert (dest / "qrels.tsv").read_bytes() == b"1 0 0 1\n"
    assert (dest / "toy" / "collection.tsv").read_bytes() == b"0\tfirst passage\n"
    assert out.count("downloaded") == 2 and "extracted" in out and "toy terms" in err
    rc, out, _ = crossrank("download", "toy", "--dest", dest, "--base-url", server.url, "--no-progress")
    assert rc == 0 and out.count("skipped") == 2 and len(server.log) == 2


def test_cli_only_and_errors(server, toy_registry, tmp_path, crossrank):
    dest = tmp_path / "d"
    rc, out, _ = crossrank("download", "toy", "--dest", dest, "--base-url", server.url, "--only", "qrels.tsv",
                           "--no-progress")
    assert rc == 0 and (dest / "qrels.tsv").exists() and not (dest / "toy.tar.gz").exists()
    server.files["toy.tar.gz"] = b"tampered"
    rc, _, err = crossrank("download", "toy", "--dest", dest, "--base-url", server.url, "--no-progress")
    assert rc == 1 and "toy.tar.gz" in err and "md5 mismatch" in err
    assert not (dest / "toy.tar.gz").exists() and not (dest / "toy.tar.gz.part").exists()
    rc, _, err = crossrank("download", "nope")
    assert rc == 2 and "unknown dataset 'nope'" in err
    rc, out, _ = crossrank("download", "--list")
    assert rc == 0 and "toy.tar.gz" in out


def test_cli_list_shows_the_real_registry(crossrank):
    rc, out, _ = crossrank("download", "--list")
    assert rc == 0
    for name in ("msmarco-passage", "trec-dl-2019", "beir-scifact", "2019qrels-pass.txt", "87dd01826da3e2ad45447ba5af577628"):
        assert name in out


def test_missing_data_message(tmp_path):
    message = missing_data_message(tmp_path, "trec-dl-2019")
    assert "trec-dl-2019/2019qrels-pass.txt" in message
    assert f"crossrank download trec-dl-2019 --dest {tmp_path / 'trec-dl-2019'}" in message
    message = missing_data_message(tmp_path, ["msmarco-passage/collection.tsv", "msmarco-passage/qrels.dev.small.tsv"])
    assert "msmarco-passage/collection.tsv" in message
    assert (f"crossrank download msmarco-passage --dest {tmp_path / 'msmarco-passage'} "
            "--only collection.tar.gz --only qrels.dev.small.tsv --extract") in message
    (tmp_path / "beir-scifact").mkdir()
    (tmp_path / "beir-scifact" / "scifact.zip").write_bytes(b"")
    assert missing_data_message(tmp_path, ["beir-scifact"]) == ""
    assert "not provided" in missing_data_message(tmp_path, "trec-dl19/qrels.dl19-passage.txt")
