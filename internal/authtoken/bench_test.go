package authtoken

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify: a memo hit (the common case: a client's repeat) and a
// miss per algorithm (no memo: parse, claims and signature every time).
func BenchmarkVerify(b *testing.B) {
	testKeys(b)
	v, _ := allKeysVerifier(b)
	hit := "Bearer " + sign(b, jwt.SigningMethodHS256, testSecret, "", claims())
	if _, err := v.Verify(hit); err != nil {
		b.Fatal(err)
	}
	b.Run("memo-hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(hit); err != nil {
				b.Fatal(err)
			}
		}
	})
	nomemo, _ := allKeysVerifier(b, func(o *Options) { o.MemoSize = -1 })
	for _, tc := range []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
	}{
		{"miss-HS256", jwt.SigningMethodHS256, testSecret, ""},
		{"miss-EdDSA", jwt.SigningMethodEdDSA, testEd, "ed1"},
		{"miss-RS256", jwt.SigningMethodRS256, testRSA, "rs1"},
	} {
		header := "Bearer " + sign(b, tc.method, tc.key, tc.kid, claims())
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := nomemo.Verify(header); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
