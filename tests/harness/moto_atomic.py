"""moto's S3 server with atomic conditional creates, for auto-consul's tests.

moto 5.1 answers `PutObject` with `If-None-Match: *` by checking for the key and then storing
it, in a threaded server: two concurrent creates of one key can both succeed (seen under load:
"exists,created,created,..."). Real S3 (and MinIO, R2, GCS) decide it atomically, and
auto-consul's place claims depend on that. This launcher serializes PutObject with one lock, so
the test server behaves like the stores it stands for; everything else stays concurrent.
Usage: python3 moto_atomic.py -H HOST -p PORT (the arguments of `python3 -m moto.server`).
"""
import sys
import threading

from moto.s3.responses import S3Response
from moto.server import main

_lock = threading.Lock()
_put_object = S3Response.put_object


def _atomic_put_object(self, *args, **kwargs):
    with _lock:
        return _put_object(self, *args, **kwargs)


S3Response.put_object = _atomic_put_object

if __name__ == "__main__":
    main(sys.argv[1:])
