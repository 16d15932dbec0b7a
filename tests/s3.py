"""A real S3-compatible server for tests: moto's server mode on 127.0.0.1.

The server runs ``moto.server.ThreadedMotoServer`` in a child process rather
than a thread of the test process: the file storage tests bound the memory of
the test process with ``tracemalloc``, which would count moto's copy of every
uploaded object, and moto's in-memory state stays out of the tests' process.
The child prints its port once it listens and exits when its stdin closes, so
it never outlives the tests.

The session-scoped ``s3_server`` fixture creates no bucket by itself;
:meth:`S3Server.url` creates one and returns the ``s3://`` URL for it, with the
dummy credentials in the URL (the environment is left alone).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3.session
import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

HOST = "127.0.0.1"

_SERVER = """
import sys
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address=sys.argv[1], port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes stdin, or dies
server.stop()
"""


class S3Server:
    """A moto S3 server listening on 127.0.0.1.

    Args:
        endpoint: The server's base URL, ``http://127.0.0.1:PORT``.

    Attributes:
        endpoint: The server's base URL.
        region: The region buckets are created in.
        access_key: A dummy access key id (moto accepts any).
        secret_key: A dummy secret access key.
    """

    region = "us-east-1"
    access_key = "keel-test-key"
    secret_key = "keel/test+secret"  # "/" and "+" must survive the URL's encoding

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    @functools.cached_property
    def client(self) -> S3Client:
        """A boto3 client for the server, to arrange and inspect buckets directly."""
        session = boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )
        return session.client("s3", endpoint_url=self.endpoint)

    def url(self, bucket: str, prefix: str = "") -> str:
        """Create ``bucket`` (if needed) and return the storage URL for it.

        The URL carries the credentials and the endpoint:
        ``s3://KEY:SECRET@bucket/prefix?endpoint=…&region=…&force_path_style=1``.
        """
        existing = {b.get("Name") for b in self.client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            self.client.create_bucket(Bucket=bucket)
        quote = functools.partial(urllib.parse.quote, safe="")
        query = urllib.parse.urlencode(
            {"endpoint": self.endpoint, "region": self.region, "force_path_style": "1"}
        )
        path = f"/{prefix}" if prefix else ""
        return f"s3://{quote(self.access_key)}:{quote(self.secret_key)}@{bucket}{path}?{query}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 for the whole session, stopped at its end."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, HOST],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,  # a file, not a pipe: nobody reads the log while tests run
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            port = process.stdout.readline().strip()  # blocks until it listens
            if not port.isdigit():
                process.wait(timeout=30)
                log.seek(0)
                raise RuntimeError(f"moto server did not start:\n{log.read().decode()}")
            server = S3Server(f"http://{HOST}:{port}")
            yield server
            if "client" in vars(server):  # created on first use
                server.client.close()
        finally:
            process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
