package cache

import (
	"net/http"
	"strings"
	"testing"
)

var testEncodings = []string{"zstd", "br", "gzip"}

// variantKey is secondaryKey with the edge's test codings, keyed by the
// request's credential when private.
func variantKey(pk string, h http.Header, fields []string, private bool) string {
	cred := ""
	if private {
		cred = credentialHash(h)
	}
	return secondaryKey(pk, h, fields, cred, testEncodings)
}

func TestPrimaryKey(t *testing.T) {
	cases := []struct {
		name                string
		host, path, query   string
		ignore              []string
		wantKey, wantURITag string
	}{
		{"no query", "api.spark.test", "/api/users/1", "", nil,
			"/api/users/1\x00api.spark.test", uriTagPrefix + "/api/users/1"},
		{"host lower-cased", "API.Spark.TEST", "/a", "", nil, "/a\x00api.spark.test", uriTagPrefix + "/a"},
		{"single param kept", "h", "/a", "x=1", nil, "/a?x=1\x00h", uriTagPrefix + "/a?x=1"},
		{"params sorted", "h", "/a", "b=2&a=1&c=3", nil, "/a?a=1&b=2&c=3\x00h", uriTagPrefix + "/a?a=1&b=2&c=3"},
		{"empty params dropped", "h", "/a", "&b=2&&a=1&", nil, "/a?a=1&b=2\x00h", uriTagPrefix + "/a?a=1&b=2"},
		{"only ampersands", "h", "/a", "&&", nil, "/a\x00h", uriTagPrefix + "/a"},
		{"repeated param order kept stable by sorting", "h", "/a", "a=2&a=1", nil, "/a?a=1&a=2\x00h", uriTagPrefix + "/a?a=1&a=2"},
		{"ignore exact", "h", "/a", "session=9&id=1", []string{"session"}, "/a?id=1\x00h", uriTagPrefix + "/a?id=1"},
		{"ignore exact is not a prefix", "h", "/a", "sessionid=9&id=1", []string{"session"}, "/a?id=1&sessionid=9\x00h", uriTagPrefix + "/a?id=1&sessionid=9"},
		{"ignore prefix utm_*", "h", "/a", "utm_source=x&id=1&utm_campaign=y&utm=z", []string{"utm_*"}, "/a?id=1&utm=z\x00h", uriTagPrefix + "/a?id=1&utm=z"},
		{"ignore single param", "h", "/a", "utm_source=x", []string{"utm_*"}, "/a\x00h", uriTagPrefix + "/a"},
		{"ignore valueless param", "h", "/a", "fbclid&id=1", []string{"fbclid"}, "/a?id=1\x00h", uriTagPrefix + "/a?id=1"},
		{"star ignores everything", "h", "/a", "a=1&b=2", []string{"*"}, "/a\x00h", uriTagPrefix + "/a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, tag := primaryKey(tc.host, tc.path, tc.query, tc.ignore)
			if k != tc.wantKey || tag != tc.wantURITag {
				t.Errorf("primaryKey(%q, %q, %q, %q) = %q, %q; want %q, %q", tc.host, tc.path, tc.query, tc.ignore, k, tag, tc.wantKey, tc.wantURITag)
			}
			if !strings.HasPrefix(k, tc.path) {
				t.Errorf("key %q does not start with the path (prefix purges rely on it)", k)
			}
		})
	}
}

func TestPrimaryKeyDistinguishes(t *testing.T) {
	pairs := [][2][3]string{
		{{"h", "/a", "x=1"}, {"h", "/a", "x=2"}},
		{{"h", "/a", ""}, {"h", "/b", ""}},
		{{"h1", "/a", ""}, {"h2", "/a", ""}},
		{{"h", "/a", "x=1&y=2"}, {"h", "/a", "x=1"}},
		{{"h", "/a%2Fb", ""}, {"h", "/a/b", ""}},
	}
	for _, p := range pairs {
		k1, _ := primaryKey(p[0][0], p[0][1], p[0][2], nil)
		k2, _ := primaryKey(p[1][0], p[1][1], p[1][2], nil)
		if k1 == k2 {
			t.Errorf("%q and %q share key %q", p[0], p[1], k1)
		}
	}
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestSecondaryKeyAcceptLanguage(t *testing.T) {
	variants := []http.Header{
		hdr("Accept-Language", "en-US, fr;q=0.5"),
		hdr("Accept-Language", "fr;q=0.5,en-us"),
		hdr("Accept-Language", "FR; q=0.5 ,  EN-us"),
		hdr("Accept-Language", "en-US", "Accept-Language", "fr;q=0.5"),
		hdr("Accept-Language", "en-us,fr;q=0.5,en-US"),
	}
	fields := []string{"accept-language"}
	want := variantKey("pk", variants[0], fields, false)
	if want != "pk"+varySep+"accept-language=en-us,fr;q=0.5" {
		t.Fatalf("normalized key = %q", want)
	}
	for _, h := range variants[1:] {
		if got := variantKey("pk", h, fields, false); got != want {
			t.Errorf("Accept-Language %q: key %q, want %q", h["Accept-Language"], got, want)
		}
	}
	if got := variantKey("pk", hdr("Accept-Language", "de"), fields, false); got == want {
		t.Errorf("different language shares key %q", got)
	}
	if got := variantKey("pk", hdr("Accept-Language", "en-US;q=0.9, fr;q=0.5"), fields, false); got == want {
		t.Errorf("different q-value shares key %q", got)
	}
}

func TestEncodingBucket(t *testing.T) {
	cases := []struct {
		values []string
		want   string
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"identity"}, ""},
		{[]string{"gzip"}, "gzip"},
		{[]string{"GZIP"}, "gzip"},
		{[]string{"gzip, deflate, br"}, "br,gzip"},
		{[]string{"gzip, deflate, br, zstd"}, "zstd,br,gzip"},
		{[]string{"br;q=1.0, gzip;q=0.8, *;q=0.1"}, "zstd,br,gzip"},
		{[]string{"*"}, "zstd,br,gzip"},
		{[]string{"*;q=0"}, ""},
		{[]string{"*, gzip;q=0"}, "zstd,br"},
		{[]string{"gzip;q=0, *"}, "zstd,br"},
		{[]string{"br;q=0", "gzip"}, "gzip"},
		{[]string{"gzip;q=0.000"}, ""},
		{[]string{"gzip;q=0."}, ""},
		{[]string{"gzip; Q=0"}, ""},
		{[]string{"gzip;q=0.001"}, "gzip"},
		{[]string{"gzip;level=1;q=0"}, ""},
		{[]string{" gzip ; q=0.5 "}, "gzip"},
		{[]string{"compress, x-gzip"}, ""},
	}
	for _, tc := range cases {
		if got := encodingBucket(tc.values, testEncodings); got != tc.want {
			t.Errorf("encodingBucket(%q) = %q, want %q", tc.values, got, tc.want)
		}
	}
	// In a key: the thousands of Accept-Encoding spellings collapse.
	fields := []string{"accept-encoding"}
	a := variantKey("pk", hdr("Accept-Encoding", "gzip, deflate, br"), fields, false)
	b := variantKey("pk", hdr("Accept-Encoding", "br;q=0.9, gzip"), fields, false)
	c := variantKey("pk", hdr("Accept-Encoding", "gzip"), fields, false)
	if a != b {
		t.Errorf("equivalent Accept-Encoding give %q and %q", a, b)
	}
	if a == c {
		t.Errorf("gzip-only client shares the br variant %q", a)
	}
}

func TestSecondaryKeyCredentials(t *testing.T) {
	const (
		tokA   = "Bearer alice-secret-token-0123456789"
		tokB   = "Bearer bob-secret-token-9876543210"
		cookie = "session=cookie-secret-abcdef"
	)
	type tc struct {
		name    string
		h       http.Header
		fields  []string
		private bool
	}
	cases := []tc{
		{"vary authorization", hdr("Authorization", tokA), []string{"authorization"}, false},
		{"vary authorization, private", hdr("Authorization", tokA), []string{"authorization"}, true},
		{"private without vary", hdr("Authorization", tokA), nil, true},
		{"private with other vary", hdr("Authorization", tokA, "Accept-Encoding", "gzip"), []string{"accept-encoding"}, true},
		{"vary cookie", hdr("Cookie", cookie), []string{"cookie"}, false},
		{"private cookie", hdr("Cookie", cookie), nil, true},
		{"vary proxy-authorization", hdr("Proxy-Authorization", tokA), []string{"proxy-authorization"}, false},
		{"private both", hdr("Authorization", tokA, "Cookie", cookie), []string{"authorization", "cookie"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := variantKey("pk", c.h, c.fields, c.private)
			for _, secret := range []string{"alice-secret", "cookie-secret", "session=", tokA} {
				if strings.Contains(k, secret) {
					t.Fatalf("key %q contains credential material %q in clear", k, secret)
				}
			}
			// Another user's credential gives another key.
			other := c.h.Clone()
			for _, f := range []string{"Authorization", "Cookie", "Proxy-Authorization"} {
				if len(other[f]) > 0 {
					other.Set(f, tokB)
				}
			}
			if k2 := variantKey("pk", other, c.fields, c.private); k2 == k {
				t.Fatalf("two users share key %q", k)
			}
			if k3 := variantKey("pk", c.h.Clone(), c.fields, c.private); k3 != k {
				t.Fatalf("key not deterministic: %q vs %q", k, k3)
			}
		})
	}
}

// A private response that varies on Authorization, requested by users who
// authenticate with a cookie only: their keys must still differ.
func TestSecondaryKeyPrivateCookieUsersDiffer(t *testing.T) {
	fields := []string{"authorization"}
	a := variantKey("pk", hdr("Cookie", "session=alice"), fields, true)
	b := variantKey("pk", hdr("Cookie", "session=bob"), fields, true)
	if a == b {
		t.Fatalf("cookie users alice and bob share private key %q", a)
	}
	// And a user with Authorization and one with only a cookie differ.
	c := variantKey("pk", hdr("Authorization", "Bearer x"), fields, true)
	if a == c {
		t.Fatalf("cookie user and token user share private key %q", a)
	}
}

func TestSecondaryKeyLongAndOddValues(t *testing.T) {
	long := strings.Repeat("x", maxKeyPart+1)
	k := variantKey("pk", hdr("X-Client", long), []string{"x-client"}, false)
	if strings.Contains(k, long[:maxKeyPart]) {
		t.Errorf("long value not hashed: %q", k)
	}
	if want := "pk" + varySep + "x-client=" + hashValue(long); k != want {
		t.Errorf("key %q, want %q", k, want)
	}
	short := strings.Repeat("x", maxKeyPart)
	if k := variantKey("pk", hdr("X-Client", short), []string{"x-client"}, false); k != "pk"+varySep+"x-client="+short {
		t.Errorf("value of maxKeyPart bytes hashed: %q", k)
	}
	// A value with a separator cannot forge another field.
	forged := variantKey("pk", hdr("X-A", "1"+fieldSep+"x-b=2"), []string{"x-a"}, false)
	honest := variantKey("pk", hdr("X-A", "1", "X-B", "2"), []string{"x-a", "x-b"}, false)
	if forged == honest || strings.Count(forged, fieldSep) != 0 {
		t.Errorf("separator in a value forges a field: %q", forged)
	}
	// Whitespace in generic fields is collapsed; absent and empty fields agree.
	a := variantKey("pk", hdr("X-A", "  a   b "), []string{"x-a"}, false)
	b := variantKey("pk", hdr("X-A", "a b"), []string{"x-a"}, false)
	if a != b {
		t.Errorf("whitespace variants differ: %q %q", a, b)
	}
	// Long Accept-Language lists are hashed too.
	var langs []string
	for i := 0; i < 40; i++ {
		langs = append(langs, "l"+strings.Repeat("a", i))
	}
	al := strings.Join(langs, ", ") + ", zz-ZZ, yy-yy, xx"
	k = variantKey("pk", hdr("Accept-Language", al), []string{"accept-language"}, false)
	if len(k) > len("pk")+len(varySep)+len("accept-language=")+32 {
		t.Errorf("long Accept-Language not hashed: %q", k)
	}
}

func TestParseVary(t *testing.T) {
	cases := []struct {
		values []string
		want   []string
		star   bool
	}{
		{nil, nil, false},
		{[]string{"Accept-Encoding"}, []string{"accept-encoding"}, false},
		{[]string{"Accept-Encoding, Accept-Language", "accept-encoding"}, []string{"accept-encoding", "accept-language"}, false},
		{[]string{" Origin ,, Authorization "}, []string{"authorization", "origin"}, false},
		{[]string{"Accept, *"}, []string{"accept"}, true},
		{[]string{","}, nil, false},
	}
	for _, tc := range cases {
		got, star := parseVary(tc.values)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || star != tc.star {
			t.Errorf("parseVary(%q) = %q, %v; want %q, %v", tc.values, got, star, tc.want, tc.star)
		}
	}
}

func TestHashValue(t *testing.T) {
	a, b := hashValue("a"), hashValue("b")
	if len(a) != 32 || a == b || a != hashValue("a") {
		t.Fatalf("hashValue: %q %q", a, b)
	}
}

// With a verified user (Handler.Identity), a private variant is keyed by
// the user: two tokens of one user select one variant (Vary: Authorization
// included), two users never share one, a cookie still splits, and the
// user's id is not in the key in clear. A variant keyed by the token's hash
// is another variant.
func TestSecondaryKeyIdentity(t *testing.T) {
	fields := []string{"authorization", "accept-encoding"}
	key := func(user, tok, cookie string) string {
		h := hdr("Authorization", tok, "Accept-Encoding", "gzip")
		if cookie != "" {
			h.Set("Cookie", cookie)
		}
		return secondaryKey("pk", h, fields, identityCredential(user, h), testEncodings)
	}
	a1, a2 := key("41", "Bearer token-one", ""), key("41", "Bearer token-two", "")
	if a1 != a2 {
		t.Fatalf("one user's two tokens select %q and %q", a1, a2)
	}
	if strings.Contains(a1, "token-one") || strings.Contains(a1, "41") {
		t.Fatalf("key %q holds the token or the user id in clear", a1)
	}
	if b := key("42", "Bearer token-one", ""); b == a1 {
		t.Fatalf("users 41 and 42 share key %q", a1)
	}
	if c := key("41", "Bearer token-one", "session=x"); c == a1 {
		t.Fatalf("a cookie does not split user 41's key %q", a1)
	}
	h := hdr("Authorization", "Bearer token-one", "Accept-Encoding", "gzip")
	if byToken := secondaryKey("pk", h, fields, credentialHash(h), testEncodings); byToken == a1 {
		t.Fatalf("the token's hash and the verified user select one key %q", a1)
	}
}
