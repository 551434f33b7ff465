vcl 4.1;
# Varnish in front of the bench origin with its built-in rules (TTL from the
# origin's Cache-Control; requests with Authorization or cookies pass, and
# the peers workload sends neither). @ORIGIN_HOST@/@ORIGIN_PORT@ are filled
# in by scripts/bench-peers.sh.
backend origin {
    .host = "@ORIGIN_HOST@";
    .port = "@ORIGIN_PORT@";
}
sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.Cache-Status = "varnish; hit";
    } else {
        set resp.http.Cache-Status = "varnish; fwd=miss; stored";
    }
}
