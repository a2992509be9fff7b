"""mitmproxy addon for the TLS interception bench: resolves bench.test to
127.0.0.1 (the bench cannot edit /etc/hosts), like squid's hosts_file and
sluice's route. Loaded with `mitmdump -s bench/tls/mitm_hosts.py`."""

from mitmproxy import http

HOSTS = {"bench.test": "127.0.0.1"}


def http_connect(flow: http.HTTPFlow) -> None:
    # Changing the CONNECT request's host changes the address mitmproxy
    # connects to; the SNI and the certificate names stay bench.test.
    addr = HOSTS.get(flow.request.host)
    if addr is not None:
        flow.request.host = addr
