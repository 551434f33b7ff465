package origin_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/testutil"
)

// sparkBinary is testutil.SparkBinary: $SPARK_BIN, or a binary built once.
func sparkBinary(t *testing.T) string { return testutil.SparkBinary(t) }

// caddyfileWithRedis is testutil.CaddyfileWithRedis: the repository's
// Caddyfile with a redis block (SPARK_REDIS, SPARK_REDIS_PREFIX).
func caddyfileWithRedis(t *testing.T) string { return testutil.CaddyfileWithRedis(t) }

// ownerField is the field startOwnerMarker writes into private bodies.
const ownerField = "_owner"

// startOwnerMarker runs a reverse proxy in front of the origin that writes
// the requesting user's id into every private JSON object it returns
// (`{"_owner":17,…}`), so a test can tell whose a response is wherever an
// edge serves it from. It returns the proxy's address (host:port).
func startOwnerMarker(t *testing.T, originAddr string) string {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: originAddr})
	rp.ModifyResponse = func(res *http.Response) error {
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Cache-Control"), "private") ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || res.Request.Method == http.MethodHead {
			return nil
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("read origin body: %w", err)
		}
		if len(body) > 1 && body[0] == '{' {
			mark := fmt.Sprintf(`{%q:%d`, ownerField, tokenSubject(res.Request.Header.Get("Authorization")))
			if rest := bytes.TrimSpace(body[1:]); len(rest) > 0 && rest[0] != '}' {
				mark += ","
			}
			body = append([]byte(mark), body[1:]...)
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
		res.ContentLength = int64(len(body))
		res.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// tokenSubject reads the sub claim of a bearer token without verifying it
// (the origin behind the marker does): 0 when there is none.
func tokenSubject(authorization string) int64 {
	tok, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		return 0
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return 0
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return 0
	}
	id, _ := strconv.ParseInt(claims.Sub, 10, 64)
	return id
}
