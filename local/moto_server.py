"""moto in server mode, with DynamoDB's, Kinesis's and KMS's atomicity.

`moto_server` serves each request on its own thread, and moto's backends do not lock: two
concurrent `UpdateItem ... ADD n :1` on one item can both read the old value and one increment is
lost, and two conditional writes can both pass their condition. DynamoDB guarantees neither can
happen, and the code under test relies on it (atomic counters, conditional approvals, the audit
head, per-tenant limits). So requests to those three services are served one at a time, as a
linearizable store would order them; everything else (the moto API, other services) stays
concurrent. The request is still read and answered on its own thread.

Usage: python local/moto_server.py -H 127.0.0.1 -p 4566
"""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

# X-Amz-Target prefixes of the JSON protocols served one at a time.
SERIAL = ("DynamoDB_", "Kinesis_", "TrentService.")


def serialized(app):
    lock = threading.Lock()

    def wsgi(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(SERIAL):
            return app(environ, start_response)
        with lock:
            # Consume the body inside the lock: the backend's work may be lazy.
            return [b"".join(app(environ, start_response))]

    return wsgi


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    # moto builds some URLs (SQS queue URLs) from it.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
