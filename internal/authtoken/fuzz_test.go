package authtoken

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzBearerToken: a token comes back only from a `Bearer` credential, as
// the b64token after the spaces, never empty, never over MaxTokenBytes.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer   x", "BEARER a==", "Bearer", "Bearer ", "Bearer a b", "Bearer\tx",
		"Basic dXNlcg==", "Bearer a=b", "Bearer ===", "Bearer ~+/-._", "Bearer \u00e9", "", "Bearer x\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := BearerToken(header)
		if err != nil {
			if r := ReasonOf(err); r != ReasonMissing && r != ReasonMalformed {
				t.Fatalf("reason %q", r)
			}
			return
		}
		if tok == "" || len(tok) > MaxTokenBytes || !strings.EqualFold(header[:7], "bearer ") || !strings.HasSuffix(header, tok) {
			t.Fatalf("%q -> %q", header, tok)
		}
		if strings.TrimLeft(header[6:len(header)-len(tok)], " ") != "" {
			t.Fatalf("%q: more than spaces before the token %q", header, tok)
		}
		if strings.ContainsAny(tok, " \t,;\"") || strings.Contains(strings.TrimRight(tok, "="), "=") {
			t.Fatalf("%q: token %q is not a b64token", header, tok)
		}
	})
}

// FuzzVerify: whatever the header, Verify refuses with a known reason and
// no token in the message, or accepts and returns a positive user id; the
// only tokens accepted are the ones signed with the verifier's keys.
func FuzzVerify(f *testing.F) {
	testKeys(f)
	good := sign(f, jwt.SigningMethodHS256, testSecret, "", claims())
	parts := strings.Split(good, ".")
	for _, s := range []string{"Bearer " + good, "Bearer " + parts[0] + "." + parts[1] + ".", "Bearer " + parts[0] + ".." + parts[2],
		"Bearer " + sign(f, jwt.SigningMethodEdDSA, testEd, "ed1", claims()), "Bearer " + sign(f, jwt.SigningMethodRS256, testRSA, "", claims()),
		"Bearer e30.e30.e30", "Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer a.b.c", "Bearer " + strings.Repeat("A", 100)} {
		f.Add(s)
	}
	v, _ := allKeysVerifier(f)
	f.Fuzz(func(t *testing.T, header string) {
		id, err := v.Verify(header)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			if tok, _ := strings.CutPrefix(header, "Bearer "); len(tok) > 16 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error echoes the token: %v", err)
			}
			return
		}
		if id.UserID <= 0 || id.Subject == "" {
			t.Fatalf("accepted %q as %+v", header, id)
		}
		// Accepted: it must verify with the same keys and no memo.
		fresh, _ := allKeysVerifier(t, func(o *Options) { o.MemoSize = -1 })
		if again, err := fresh.Verify(header); err != nil || again != id {
			t.Fatalf("accepted %q from the memo only: %v", header, err)
		}
	})
}
