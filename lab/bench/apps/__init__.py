"""The benchmark's reference apps, served like webgatos (gunicorn.conf.py here) so that the
difference in cost per request is the app's: `lab.bench_apps:bare_wsgi`, `lab.bench_apps:flask_hello`."""

from flask import Flask

HELLO = b"Hello, World!"


def bare_wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


flask_hello = Flask(__name__)


@flask_hello.get("/")
def hello():
    return HELLO
