"""The shared dataset-file layer: where files are found, checksums, resumable downloads from a
local HTTP server (complete, resumed, cut off, wrong checksum, unreachable), error lines."""

import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest

from dlbench.data import files
from dlbench.errors import UserError

PAYLOAD = np.random.RandomState(0).bytes(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Server:
    """A local HTTP server for PAYLOAD that honours Range requests; `cut` ends a response early,
    `ignore_range` answers every request with the whole file."""

    def __init__(self):
        self.ranges, self.cut, self.ignore_range = [], None, False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                start = 0
                header = self.headers.get("Range")
                server.ranges.append(header)
                if header and not server.ignore_range:
                    start = int(header.split("=")[1].rstrip("-"))
                    if start >= len(PAYLOAD):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                else:
                    self.send_response(200)
                body = PAYLOAD[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:server.cut] if server.cut else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data.bin"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _download(server, path, **kwargs):
    return files.download_file(server.url, path, {"md5": MD5}, by_hand="place data.bin by hand",
                               progress=False, **kwargs)


def test_download_writes_the_file_after_its_checksum(server, tmp_path):
    path = tmp_path / "sub" / "data.bin"
    assert _download(server, path) == path
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "data.bin.part").exists()
    assert server.ranges == [None]


def test_download_resumes_a_partial_file_with_a_range_request(server, tmp_path):
    path = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:123_456])
    _download(server, path)
    assert path.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=123456-"]


def test_a_complete_part_file_is_finished_without_refetching(server, tmp_path):
    path = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    _download(server, path)  # the server answers 416: nothing past the end
    assert path.read_bytes() == PAYLOAD


def test_a_server_ignoring_the_range_restarts_from_the_beginning(server, tmp_path):
    path = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)
    server.ignore_range = True
    _download(server, path)
    assert path.read_bytes() == PAYLOAD


def test_a_cut_connection_keeps_the_part_and_a_rerun_resumes(server, tmp_path):
    path = tmp_path / "data.bin"
    server.cut = 100_000
    with pytest.raises(UserError) as err:
        _download(server, path)
    message = str(err.value)
    assert server.url in message and "place data.bin by hand" in message and "resumes" in message
    assert "\n" not in message
    assert not path.exists()
    assert (tmp_path / "data.bin.part").read_bytes() == PAYLOAD[:100_000]
    server.cut = None
    _download(server, path)
    assert path.read_bytes() == PAYLOAD
    assert server.ranges[-1] == "bytes=100000-"


def test_a_wrong_checksum_writes_nothing(server, tmp_path):
    path = tmp_path / "data.bin"
    with pytest.raises(UserError) as err:
        files.download_file(server.url, path, {"md5": "0" * 32}, by_hand="place it by hand", progress=False)
    message = str(err.value)
    assert server.url in message and MD5 in message and "place it by hand" in message
    assert not path.exists() and not (tmp_path / "data.bin.part").exists()


def test_an_unreachable_server_gives_one_line_naming_the_url(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.npz"
    with pytest.raises(UserError) as err:
        files.download_file(url, tmp_path / "new" / "deeper" / "x.npz", {"md5": MD5}, by_hand="copy x.npz there",
                            progress=False)
    assert url in str(err.value) and "copy x.npz there" in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # the folders it made for the file are gone again


def test_file_checksum_streams_and_matches_hashlib(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD)
    assert files.file_checksum(path, "md5", block=4096) == MD5
    assert files.file_checksum(path, "sha256", block=7) == hashlib.sha256(PAYLOAD).hexdigest()
    assert files.checksum_problem(path, {"md5": MD5}) is None
    assert files.checksum_problem(path, {"md5": "f" * 32}) == f"md5 {MD5} is not the published {'f' * 32}"


def test_locate_prefers_dlbench_data_then_disentanglement_lib_layout(tmp_path, monkeypatch):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    monkeypatch.setenv("DLBENCH_DATA", str(ours))
    monkeypatch.delenv(files.DISENTANGLEMENT_LIB_ENV, raising=False)
    own = ours / "mpi3d_toy" / "mpi3d_toy.npz"
    assert files.locate("mpi3d_toy", "mpi3d_toy.npz", "mpi3d_toy/mpi3d_toy.npz") == own
    monkeypatch.setenv(files.DISENTANGLEMENT_LIB_ENV, str(theirs))
    assert files.locate("mpi3d_toy", "mpi3d_toy.npz", "mpi3d_toy/mpi3d_toy.npz") == own  # not there either
    (theirs / "mpi3d_toy").mkdir(parents=True)
    (theirs / "mpi3d_toy" / "mpi3d_toy.npz").write_bytes(b"")
    assert files.locate("mpi3d_toy", "mpi3d_toy.npz", "mpi3d_toy/mpi3d_toy.npz") == \
        theirs / "mpi3d_toy" / "mpi3d_toy.npz"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"")
    assert files.locate("mpi3d_toy", "mpi3d_toy.npz", "mpi3d_toy/mpi3d_toy.npz") == own


def test_file_problem_is_one_line_naming_file_problem_and_fix(tmp_path):
    err = files.file_problem(tmp_path / "a.h5", "images is float32", "delete it")
    assert isinstance(err, UserError)
    assert str(err) == f"{tmp_path / 'a.h5'}: images is float32; delete it"
