package authtoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// allKeysVerifier accepts HS256 (two secrets: rotation), Ed25519 under kid
// "ed1" and "ed2", and RS256 under "rs1" and without a kid.
func allKeysVerifier(t testing.TB, mutate ...func(*Options)) (*Verifier, *time.Time) {
	t.Helper()
	testKeys(t)
	now := t0
	o := Options{
		HS256:   []HMACKey{{Secret: testSecret}, {Secret: otherSecret}},
		Ed25519: []Ed25519Key{{ID: "ed1", Key: testEd.Public().(ed25519PublicKey)}, {ID: "ed2", Key: testEd2.Public().(ed25519PublicKey)}},
		RS256:   []RSAKey{{ID: "rs1", Key: &testRSA.PublicKey}, {Key: &testRSA2.PublicKey}},
		Leeway:  DefaultLeeway,
		Now:     fixedClock(&now),
	}
	for _, m := range mutate {
		m(&o)
	}
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	return v, &now
}

func TestVerifyAcceptsEachAlgorithmAndKey(t *testing.T) {
	v, _ := allKeysVerifier(t)
	c := func(sub string) jwt.MapClaims { m := claims(); m["sub"] = sub; return m }
	for name, tc := range map[string]struct {
		tok string
		id  int64
	}{
		"hs256 first secret":         {sign(t, jwt.SigningMethodHS256, testSecret, "", c("7")), 7},
		"hs256 second secret":        {sign(t, jwt.SigningMethodHS256, otherSecret, "", c("8")), 8},
		"eddsa kid ed1":              {sign(t, jwt.SigningMethodEdDSA, testEd, "ed1", c("9")), 9},
		"eddsa kid ed2":              {sign(t, jwt.SigningMethodEdDSA, testEd2, "ed2", c("10")), 10},
		"eddsa no kid tries each":    {sign(t, jwt.SigningMethodEdDSA, testEd2, "", c("11")), 11},
		"rs256 kid rs1":              {sign(t, jwt.SigningMethodRS256, testRSA, "rs1", c("12")), 12},
		"rs256 no kid, unnamed key":  {sign(t, jwt.SigningMethodRS256, testRSA2, "", c("13")), 13},
		"largest id":                 {sign(t, jwt.SigningMethodHS256, testSecret, "", c("9223372036854775807")), 9223372036854775807},
		"lower-case scheme and more": {sign(t, jwt.SigningMethodHS256, testSecret, "", c("14")), 14},
	} {
		t.Run(name, func(t *testing.T) {
			header := "Bearer " + tc.tok
			if strings.HasPrefix(name, "lower-case") {
				header = "bearer   " + tc.tok
			}
			id, err := v.Verify(header)
			if err != nil || id.UserID != tc.id || id.Subject != strconv.FormatInt(tc.id, 10) || !id.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("got %+v, %v; want user %d", id, err, tc.id)
			}
		})
	}
}

// Every way a token is refused, with its reason; the error never contains
// the token.
func TestVerifyRefusals(t *testing.T) {
	v, _ := allKeysVerifier(t, func(o *Options) { o.Issuer = "https://auth.spark.example"; o.Audience = "spark-api" })
	good := func() jwt.MapClaims {
		c := claims()
		c["iss"] = "https://auth.spark.example"
		c["aud"] = "spark-api"
		return c
	}
	with := func(k string, val any) jwt.MapClaims {
		c := good()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, testSecret, "", c) }
	ok := hs(good())
	if _, err := v.Verify("Bearer " + ok); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	rsaPubPEM := pkixPEM(t, &testRSA.PublicKey)
	rsaPubDER, _ := x509.MarshalPKIXPublicKey(&testRSA.PublicKey)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, good()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	lastDot := strings.LastIndexByte(ok, '.')
	for _, tc := range []struct {
		name   string
		header string
		want   Reason
	}{
		{"no header", "", ReasonMissing},
		{"basic scheme", "Basic dXNlcjpwYXNz", ReasonMissing},
		{"bearer alone", "Bearer", ReasonMissing},
		{"bearer no space", "Bearer" + ok, ReasonMissing},
		{"bearer tab", "Bearer\t" + ok, ReasonMissing},
		{"bearer empty token", "Bearer ", ReasonMalformed},
		{"two tokens", "Bearer " + ok + " " + ok, ReasonMalformed},
		{"comma list", "Bearer " + ok + ",x", ReasonMalformed},
		{"garbage", "Bearer garbage", ReasonMalformed},
		{"two segments", "Bearer a.b", ReasonMalformed},
		{"bad base64 header", "Bearer !!!.e30.x", ReasonMalformed},
		{"json junk", "Bearer e30.bm90anNvbg.c2ln", ReasonMalformed},
		{"too long", "Bearer " + ok + strings.Repeat("A", MaxTokenBytes), ReasonMalformed},
		{"alg none", "Bearer " + none, ReasonAlgorithm},
		{"alg none unsigned", "Bearer " + ok[:lastDot] + ".", ReasonSignature},
		{"unknown alg", "Bearer " + swapHeader(t, ok, `{"alg":"HS999","typ":"JWT"}`), ReasonAlgorithm},
		{"ES256 not configured", "Bearer " + sign(t, jwt.SigningMethodES256, ec, "", good()), ReasonAlgorithm},
		{"HS256 signed with the RSA public key PEM", "Bearer " + sign(t, jwt.SigningMethodHS256, rsaPubPEM, "", good()), ReasonSignature},
		{"HS256 signed with the RSA public key DER, kid rs1", "Bearer " + sign(t, jwt.SigningMethodHS256, rsaPubDER, "rs1", good()), ReasonUnknownKey},
		{"HS256 signed with the Ed25519 public key", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testEd.Public().(ed25519PublicKey)), "", good()), ReasonSignature},
		{"wrong secret", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-sufficient-length!!"), "", good()), ReasonSignature},
		{"forged signature", "Bearer " + ok[:lastDot+1] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ReasonSignature},
		{"claims swapped under a signature", "Bearer " + swapPayload(t, ok, with("sub", "2")), ReasonSignature},
		{"wrong kid", "Bearer " + sign(t, jwt.SigningMethodEdDSA, testEd, "nope", good()), ReasonUnknownKey},
		{"kid of another key", "Bearer " + sign(t, jwt.SigningMethodEdDSA, testEd, "ed2", good()), ReasonSignature},
		{"kid of another algorithm", "Bearer " + sign(t, jwt.SigningMethodEdDSA, testEd, "rs1", good()), ReasonUnknownKey},
		{"kid not a string", "Bearer " + sign(t, jwt.SigningMethodHS256, testSecret, "", good()) /* replaced below */, ""},
		{"crit header", "", ""}, // set below
		{"rs256 unknown key", "Bearer " + sign(t, jwt.SigningMethodRS256, testRSA3, "", good()), ReasonSignature},
		{"expired", "Bearer " + hs(with("exp", t0.Add(-time.Minute).Unix())), ReasonExpired},
		{"no exp", "Bearer " + hs(with("exp", nil)), ReasonClaims},
		{"exp not a number", "Bearer " + hs(with("exp", "tomorrow")), ReasonMalformed},
		{"nbf ahead", "Bearer " + hs(with("nbf", t0.Add(time.Minute).Unix())), ReasonNotYetValid},
		{"iat ahead", "Bearer " + hs(with("iat", t0.Add(time.Minute).Unix())), ReasonNotYetValid},
		{"wrong issuer", "Bearer " + hs(with("iss", "https://evil.example")), ReasonIssuer},
		{"no issuer", "Bearer " + hs(with("iss", nil)), ReasonIssuer},
		{"wrong audience", "Bearer " + hs(with("aud", "other-api")), ReasonAudience},
		{"no audience", "Bearer " + hs(with("aud", nil)), ReasonAudience},
		{"exp too far from now", "Bearer " + hs(with("exp", t0.Add(DefaultMaxLifetime+time.Hour).Unix())), ReasonLifetime},
		{"exp too far from iat", "Bearer " + hs(with("iat", t0.Add(-24*time.Hour).Unix())), ""}, // set below
		{"sub zero", "Bearer " + hs(with("sub", "0")), ReasonSubject},
		{"sub negative", "Bearer " + hs(with("sub", "-1")), ReasonSubject},
		{"sub plus", "Bearer " + hs(with("sub", "+1")), ReasonSubject},
		{"sub leading zero", "Bearer " + hs(with("sub", "01")), ReasonSubject},
		{"sub name", "Bearer " + hs(with("sub", "alice")), ReasonSubject},
		{"sub missing", "Bearer " + hs(with("sub", nil)), ReasonSubject},
		{"sub overflows", "Bearer " + hs(with("sub", "9223372036854775808")), ReasonSubject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header, want := tc.header, tc.want
			switch tc.name {
			case "kid not a string":
				tk := jwt.NewWithClaims(jwt.SigningMethodHS256, good())
				tk.Header["kid"] = 7
				s, _ := tk.SignedString(testSecret)
				header, want = "Bearer "+s, ReasonMalformed
			case "crit header":
				tk := jwt.NewWithClaims(jwt.SigningMethodHS256, good())
				tk.Header["crit"] = []string{"exp"}
				s, _ := tk.SignedString(testSecret)
				header, want = "Bearer "+s, ReasonMalformed
			case "exp too far from iat":
				// iat a day ago, exp an hour ahead: 25 h > 24 h.
				want = ReasonLifetime
			}
			id, err := v.Verify(header)
			if err == nil {
				t.Fatalf("accepted: %+v", id)
			}
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error %v does not match ErrUnauthenticated", err)
			}
			if got := ReasonOf(err); got != want {
				t.Fatalf("reason %q (%v), want %q", got, errors.Unwrap(err), want)
			}
			if tok, _ := strings.CutPrefix(header, "Bearer "); len(tok) > 8 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error echoes the token: %v", err)
			}
			if strings.Contains(err.Error(), "auth.spark.example") || strings.Contains(err.Error(), "evil") {
				t.Fatalf("error echoes claims: %v", err)
			}
		})
	}
}

// The memo: a repeat is not parsed again, but exp and nbf hold on every
// use, and a token differing in any byte is verified afresh.
func TestVerifyMemo(t *testing.T) {
	v, now := allKeysVerifier(t)
	c := claims()
	c["nbf"] = t0.Add(-time.Minute).Unix()
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", c)
	for i := 0; i < 3; i++ {
		if id, err := v.Verify("Bearer " + tok); err != nil || id.UserID != 1 {
			t.Fatalf("use %d: %+v, %v", i, id, err)
		}
	}
	if v.memo.len() != 1 {
		t.Fatalf("memo holds %d tokens, want 1", v.memo.len())
	}
	forged := tok[:strings.LastIndexByte(tok, '.')+1] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if _, err := v.Verify("Bearer " + forged); ReasonOf(err) != ReasonSignature {
		t.Fatalf("forged signature of a remembered token: %v", err)
	}
	*now = t0.Add(time.Hour + DefaultLeeway) // exp + leeway: no longer valid
	if _, err := v.Verify("Bearer " + tok); ReasonOf(err) != ReasonExpired {
		t.Fatalf("expired remembered token: %v", err)
	}
	*now = t0.Add(time.Hour + DefaultLeeway - time.Second)
	if _, err := v.Verify("Bearer " + tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	// nbf on a remembered token: remembered at t0, used before nbf-leeway.
	*now = t0
	c2 := claims()
	c2["nbf"] = t0.Add(20 * time.Second).Unix() // within the leeway now
	tok2 := sign(t, jwt.SigningMethodHS256, testSecret, "", c2)
	if _, err := v.Verify("Bearer " + tok2); err != nil {
		t.Fatal(err)
	}
	*now = t0.Add(-time.Minute) // a clock stepped back
	if _, err := v.Verify("Bearer " + tok2); ReasonOf(err) != ReasonNotYetValid {
		t.Fatalf("remembered token before nbf: %v", err)
	}
}

// The memo is bounded; a token it forgot is verified again.
func TestVerifyMemoBounded(t *testing.T) {
	v, _ := allKeysVerifier(t, func(o *Options) { o.MemoSize = 8 })
	var toks []string
	for i := int64(1); i <= 50; i++ {
		c := claims()
		c["sub"] = strconv.FormatInt(i, 10)
		toks = append(toks, sign(t, jwt.SigningMethodHS256, testSecret, "", c))
	}
	for round := 0; round < 2; round++ {
		for i, tok := range toks {
			if id, err := v.Verify("Bearer " + tok); err != nil || id.UserID != int64(i+1) {
				t.Fatalf("round %d token %d: %+v %v", round, i, id, err)
			}
			if n := v.memo.len(); n > 8 {
				t.Fatalf("memo holds %d tokens, bound 8", n)
			}
		}
	}
	// No memo at all.
	nv, _ := allKeysVerifier(t, func(o *Options) { o.MemoSize = -1 })
	if _, err := nv.Verify("Bearer " + toks[0]); err != nil || nv.memo != nil {
		t.Fatalf("without memo: %v", err)
	}
}

// A memo hit allocates nothing.
func TestVerifyMemoHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	v, _ := allKeysVerifier(t)
	header := "Bearer " + sign(t, jwt.SigningMethodEdDSA, testEd, "ed1", claims())
	if _, err := v.Verify(header); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() {
		if _, err := v.Verify(header); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("memo hit: %v allocations", n)
	}
}

func TestNewVerifierRefuses(t *testing.T) {
	testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"no key":           {},
		"empty secret":     {HS256: []HMACKey{{Secret: nil}}},
		"short ed25519":    {Ed25519: []Ed25519Key{{Key: make([]byte, 31)}}},
		"nil rsa":          {RS256: []RSAKey{{}}},
		"1024-bit rsa":     {RS256: []RSAKey{{Key: &small.PublicKey}}},
		"duplicate kid":    {HS256: []HMACKey{{ID: "a", Secret: testSecret}, {ID: "a", Secret: otherSecret}}},
		"negative leeway":  {HS256: []HMACKey{{Secret: testSecret}}, Leeway: -time.Second},
		"negative max age": {HS256: []HMACKey{{Secret: testSecret}}, MaxLifetime: -time.Second},
	} {
		if _, err := NewVerifier(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// One kid per algorithm: the same kid on two algorithms is fine.
	if _, err := NewVerifier(Options{HS256: []HMACKey{{ID: "a", Secret: testSecret}},
		Ed25519: []Ed25519Key{{ID: "a", Key: testEd.Public().(ed25519PublicKey)}}}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSecret(t *testing.T) {
	if err := CheckSecret([]byte(DevSecret)); !errors.Is(err, ErrDevSecret) {
		t.Fatalf("dev secret: %v", err)
	}
	short := "0123456789abcdef0123456789abcde" // 31 bytes
	if err := CheckSecret([]byte(short)); !errors.Is(err, ErrWeakSecret) || strings.Contains(err.Error(), short) {
		t.Fatalf("31 bytes: %v", err)
	}
	if err := CheckSecret([]byte("x")); !errors.Is(err, ErrWeakSecret) {
		t.Fatalf("one byte: %v", err)
	}
	if err := CheckSecret(testSecret); err != nil {
		t.Fatalf("38 bytes: %v", err)
	}
}

func TestIssueRoundTrip(t *testing.T) {
	now := t0
	v, err := NewVerifier(Options{HS256: []HMACKey{{ID: "2026-11", Secret: testSecret}}, Issuer: "spark-origin", Audience: "spark-api",
		MaxLifetime: time.Hour, Now: fixedClock(&now)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Issue(testSecret, 42, IssueOptions{TTL: time.Hour, Now: t0, Issuer: "spark-origin", Audience: "spark-api", KeyID: "2026-11"})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.VerifyToken(tok); err != nil || id.UserID != 42 || id.Subject != "42" || !id.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("issued token: %+v %v", id, err)
	}
	long, _ := Issue(testSecret, 42, IssueOptions{TTL: time.Hour + time.Second, Now: t0, Issuer: "spark-origin", Audience: "spark-api"})
	if _, err := v.VerifyToken(long); ReasonOf(err) != ReasonLifetime {
		t.Fatalf("token beyond the max lifetime: %v", err)
	}
	for _, bad := range []func() (string, error){
		func() (string, error) { return Issue(nil, 1, IssueOptions{TTL: time.Hour}) },
		func() (string, error) { return Issue(testSecret, 0, IssueOptions{TTL: time.Hour}) },
		func() (string, error) { return Issue(testSecret, 1, IssueOptions{}) },
	} {
		if _, err := bad(); err == nil {
			t.Error("issued with bad options")
		}
	}
}

// swapHeader replaces a token's header segment.
func swapHeader(t testing.TB, tok, headerJSON string) string {
	t.Helper()
	parts := strings.SplitN(tok, ".", 3)
	return base64.RawURLEncoding.EncodeToString([]byte(headerJSON)) + "." + parts[1] + "." + parts[2]
}

// swapPayload replaces a token's claims, keeping its signature.
func swapPayload(t testing.TB, tok string, c jwt.MapClaims) string {
	t.Helper()
	other := sign(t, jwt.SigningMethodHS256, []byte("whatever-secret"), "", c)
	p := strings.SplitN(tok, ".", 3)
	q := strings.SplitN(other, ".", 3)
	return p[0] + "." + q[1] + "." + p[2]
}
