package origin_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spark-edge/spark/origin"
)

// A token verified once is remembered, but its expiry still holds on every
// later use, and a token differing in any byte is verified afresh.
func TestAuthenticatorRemembersVerifiedTokens(t *testing.T) {
	var clock atomic.Int64
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock.Store(start.UnixNano())
	a, err := origin.NewAuthenticator("auth-cache-secret", nil, func() time.Time { return time.Unix(0, clock.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	tok, err := origin.IssueToken("auth-cache-secret", 42, time.Hour, start)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if id, err := a.Authenticate("Bearer " + tok); err != nil || id != 42 {
			t.Fatalf("use %d: %d, %v", i, id, err)
		}
	}
	// Same claims, another signature: not accepted from the memory.
	forged := tok[:strings.LastIndexByte(tok, '.')+1] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if _, err := a.Authenticate("Bearer " + forged); !errors.Is(err, origin.ErrUnauthenticated) {
		t.Fatalf("forged signature: %v", err)
	}
	other, _ := origin.IssueToken("another-secret", 42, time.Hour, start)
	if _, err := a.Authenticate("Bearer " + other); !errors.Is(err, origin.ErrUnauthenticated) {
		t.Fatalf("token of another secret: %v", err)
	}
	clock.Store(start.Add(time.Hour + 31*time.Second).UnixNano()) // past exp and the leeway
	if _, err := a.Authenticate("Bearer " + tok); !errors.Is(err, origin.ErrUnauthenticated) {
		t.Fatalf("expired remembered token: %v", err)
	}
}
