package cache

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spark-edge/spark/internal/contract"
)

func FuzzParseDirectives(f *testing.F) {
	for _, s := range []string{
		"", "max-age=60", "no-store", `no-cache="Set-Cookie, X-A", max-age=5`, "max-age=99999999999999999999",
		"max-age=1, max-age=2", "MAX-AGE = 3 , Public", `private="a`, `x="\"", s-maxage=4`, "max-stale",
		"max-stale=5, min-fresh=6, stale-while-revalidate=7, stale-if-error=8", ",,,", "=", "\xff\xfe=\x00",
	} {
		f.Add(s, "")
	}
	f.Add("max-age=10", "max-age=5")
	f.Fuzz(func(t *testing.T, a, b string) {
		d := parseDirectives([]string{a, b})
		for _, v := range []time.Duration{d.maxAge, d.sMaxAge, d.maxStale, d.minFresh, d.staleWhileRevalidate, d.staleIfError} {
			if v < -1 || v > maxDelta*time.Second || v >= 0 && v%time.Second != 0 {
				t.Fatalf("out of range duration %v from %q, %q", v, a, b)
			}
		}
		// Splitting the field into two lines at an item boundary or joining
		// the lines with a comma changes nothing.
		if !strings.Contains(a, `"`) && !strings.Contains(b, `"`) {
			if j := parseDirectives([]string{a + "," + b}); j != d {
				t.Fatalf("joined lines differ: %+v vs %+v", j, d)
			}
		}
		// Order of independent lines does not matter (smallest value wins).
		if r := parseDirectives([]string{b, a}); !strings.Contains(a+b, `"`) && r != d {
			t.Fatalf("line order matters: %+v vs %+v", r, d)
		}
	})
}

func FuzzPrimaryKey(f *testing.F) {
	f.Add("Spark.Test", "/api/users/1", "b=2&a=1&utm_source=x", "utm_*")
	f.Add("h", "/", "", "")
	f.Add("h", "/a%2Fb", "x&y&&z=", "x")
	f.Add("h", "/\xff\xfe", "\xff=\xfe&a", "*")
	f.Add("h:8080", "/p", "a=1;b=2&c", "c")
	f.Fuzz(func(t *testing.T, host, path, query, ignore string) {
		var ig []string
		if ignore != "" {
			ig = strings.Split(ignore, ",")
		}
		k1, tag1 := primaryKey(host, path, query, ig)
		k2, tag2 := primaryKey(host, path, query, ig)
		if k1 != k2 || tag1 != tag2 {
			t.Fatalf("not deterministic: %q/%q vs %q/%q", k1, tag1, k2, tag2)
		}
		if !strings.HasPrefix(k1, path) || !strings.HasPrefix(tag1, uriTagPrefix+path) {
			t.Fatalf("key %q or tag %q does not start with the path %q", k1, tag1, path)
		}
		if !strings.HasSuffix(k1, hostSep+strings.ToLower(host)) {
			t.Fatalf("key %q does not end with the host", k1)
		}
		// Any permutation of the parameters gives the same key.
		params := strings.Split(query, "&")
		slices.Reverse(params)
		rev := strings.Join(params, "&")
		if len(params) > 2 {
			params[0], params[len(params)/2] = params[len(params)/2], params[0]
		}
		perm := strings.Join(params, "&")
		for _, q := range []string{rev, perm} {
			if k, tag := primaryKey(host, path, q, ig); k != k1 || tag != tag1 {
				t.Fatalf("query %q gives %q, permutation %q gives %q", query, k1, q, k)
			}
		}
		// Ignored parameters are gone.
		if len(ig) > 0 {
			// The URI tag is the path and query alone (no host to cut off:
			// a NUL in the query must not end it early).
			q := strings.TrimPrefix(strings.TrimPrefix(tag1, uriTagPrefix+path), "?")
			if !strings.HasPrefix(tag1, uriTagPrefix+path+"?") {
				q = ""
			}
			if strings.Contains(path, "?") {
				return // the path hides where the query starts
			}
			for _, p := range strings.Split(q, "&") {
				name, _, _ := strings.Cut(p, "=")
				if p != "" && ignored(name, ig) {
					t.Fatalf("ignored parameter %q kept in %q", name, k1)
				}
			}
		}
	})
}

func FuzzSecondaryKey(f *testing.F) {
	f.Add("Bearer alice-token-123", "session=abc123xyz", "gzip, br", "en-US, fr;q=0.5", "accept-encoding,authorization", true)
	f.Add("Basic dXNlcjpwYXNz", "", "*;q=0", "", "cookie,accept-language", false)
	f.Add("\xff\xfe token", "\x1e\x1f=", "gzip;q=0", "de", "authorization,cookie,proxy-authorization,x-a", false)
	f.Add("tok,en", "c;d", "", "", "", true)
	f.Fuzz(func(t *testing.T, auth, cookie, ae, al, vary string, private bool) {
		fields, star := parseVary([]string{vary})
		if star || len(fields) > maxVaryFields {
			return
		}
		h := http.Header{}
		if auth != "" {
			h["Authorization"] = []string{auth}
			h["Proxy-Authorization"] = []string{auth}
		}
		if cookie != "" {
			h["Cookie"] = []string{cookie}
		}
		h["Accept-Encoding"] = []string{ae}
		h["Accept-Language"] = []string{al}
		const pk = "/p\x00h"
		k := variantKey(pk, h, fields, private)
		if k != variantKey(pk, h.Clone(), fields, private) {
			t.Fatal("not deterministic")
		}
		if !strings.HasPrefix(k, pk+varySep) {
			t.Fatalf("key %q does not start with the primary key", k)
		}
		// The same request with other credentials: what it shares with k
		// comes from elsewhere; a credential may appear in k only where it
		// appears without it too.
		const otherCred = "\x01other"
		other := h.Clone()
		for _, f := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
			if len(other[f]) > 0 {
				other[f] = []string{otherCred}
			}
		}
		k0 := variantKey(pk, other, fields, private)
		for _, secret := range []string{auth, cookie} {
			if len(secret) >= 6 && strings.Contains(k[len(pk):], secret) && !strings.Contains(k0[len(pk):], secret) {
				t.Fatalf("credential %q in clear in key %q", secret, k)
			}
		}
		// Keys that include a credential differ between users.
		changed := (private && (auth != "" && auth != otherCred || cookie != "" && cookie != otherCred)) ||
			auth != "" && auth != otherCred && (slices.Contains(fields, "authorization") || slices.Contains(fields, "proxy-authorization")) ||
			cookie != "" && cookie != otherCred && slices.Contains(fields, "cookie")
		if changed && k == k0 {
			t.Fatalf("users with different credentials share key %q", k)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(nil, sampleEntry()))
	f.Add(encodeEntry(nil, &entry{status: 304, stored: time.Unix(0, 1)}))
	f.Add(encodeVary([]string{"accept-encoding"}, true))
	f.Add([]byte{})
	f.Add([]byte{kindResponse, entryVersion})
	good := encodeEntry(nil, sampleEntry())
	f.Add(good[:fixedLen+3])
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		e, err := decodeEntry(b)
		if !bytes.Equal(in, b) {
			t.Fatal("decodeEntry modified its input")
		}
		if err != nil {
			if e != nil {
				t.Fatal("entry with error")
			}
			return
		}
		if e.status < 100 || e.status > 999 {
			t.Fatalf("decoded status %d", e.status)
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := decodeEntry(encodeEntry(nil, e))
		if err != nil {
			t.Fatalf("re-encoding a decoded entry: %v", err)
		}
		equalEntry(t, again, e)
		_, _, _ = decodeVary(b)
	})
}

// FuzzEntryRoundTrip builds entries from fuzzed parts and checks that
// encodeEntry and decodeEntry agree.
func FuzzEntryRoundTrip(f *testing.F) {
	f.Add(200, "Content-Type", "application/json", "X-Multi", "a\x00b", []byte(`{"a":1}`), int64(5), true)
	f.Add(404, "", "", "", "", []byte{}, int64(-1), false)
	f.Add(999, "\xff", "\xfe", "\xff", "", []byte{0, 1, 2}, int64(1<<62), true)
	f.Fuzz(func(t *testing.T, status int, n1, v1, n2, v2 string, body []byte, d int64, flag bool) {
		if status < 100 || status > 999 {
			return
		}
		h := http.Header{}
		h[n1] = append(h[n1], v1)
		h[n2] = append(h[n2], v2, v1)
		e := &entry{status: status, header: h, body: body, stored: time.Unix(0, d), age: time.Duration(d),
			fresh: time.Duration(-d), swr: time.Duration(d / 2), sie: -1, mustRevalidate: flag, noCache: !flag, authOK: flag,
			authFill: !flag, deny: denyList(appendDenyList(nil, []uint64{uint64(d) >> 1, uint64(d)>>1 + 1})), tagBlock: appendTags(nil, []string{v1, n2})}
		got, err := decodeEntry(encodeEntry(nil, e))
		if err != nil {
			t.Fatal(err)
		}
		equalEntry(t, got, e)
	})
}

func FuzzNormalizeField(f *testing.F) {
	f.Add("accept-language", "en-US, fr;q=0.5", "FR;q=0.5,en-us")
	f.Add("accept-encoding", "gzip;q=0, *", "br,zstd")
	f.Add("x-custom", "a  b", "\x1e")
	f.Fuzz(func(t *testing.T, field, v1, v2 string) {
		field = strings.ToLower(field)
		s := normalizeField(field, []string{v1, v2}, testEncodings)
		if len(s) > maxKeyPart && len(s) != 32 {
			t.Fatalf("normalized value of %d bytes", len(s))
		}
		if strings.ContainsAny(s, varySep+fieldSep) {
			t.Fatalf("normalized value %q holds a key separator", s)
		}
		if isCredentialField(field) && (len(s) != 32 || strings.Contains(s, v1) && len(v1) > 3) {
			t.Fatalf("credential field %q normalized to %q", field, s)
		}
	})
}

// FuzzEncodingBucket checks the one-pass bucket against the definition:
// each coding accepted as acceptsCoding says.
func FuzzEncodingBucket(f *testing.F) {
	f.Add("gzip, deflate, br", "", "zstd,br,gzip")
	f.Add("*;q=0, gzip", "br;q=0", "zstd,br,gzip")
	f.Add("GZIP;q=0.0, gzip", "*", "gzip,br")
	f.Add("x;q=1,*;q=0.000", "", "a,b,c,d,e,f,g,h,i")
	f.Add("*;q=0, *", " ,gzip", "*,gzip,")
	f.Fuzz(func(t *testing.T, v1, v2, encs string) {
		encodings := strings.Split(encs, ",")
		values := []string{v1, v2}
		var slow strings.Builder
		fast := string(appendEncodingBucket(nil, values, encodings))
		writeEncodingBucketSlow(&slow, values, encodings)
		if fast != slow.String() {
			t.Fatalf("bucket of %q for %q: %q, by definition %q", values, encodings, fast, slow.String())
		}
	})
}

// writeEncodingBucketSlow is encodingBucket by its definition, one coding at
// a time: the reference FuzzEncodingBucket holds the one-pass version to.
func writeEncodingBucketSlow(b *strings.Builder, values []string, encodings []string) {
	var accepted []string
	for _, enc := range encodings {
		if acceptsCoding(values, enc) {
			accepted = append(accepted, enc)
		}
	}
	b.WriteString(strings.Join(accepted, ","))
}

// acceptsCoding reports whether Accept-Encoding values accept coding with a
// non-zero q-value (explicitly or through "*").
func acceptsCoding(values []string, coding string) bool {
	star := false
	for _, v := range values {
		for v != "" {
			var name, params string
			name, params, v = cutItem(v)
			if strings.EqualFold(name, coding) {
				return contract.QValue(params) != 0
			}
			if name == "*" && contract.QValue(params) != 0 {
				star = true
			}
		}
	}
	return star
}
