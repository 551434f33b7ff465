package cache

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Provision leaves validation to Caddy, which calls Validate next (and
// Cleanup when it fails): a config Validate refuses provisions.
func TestProvisionLeavesValidationToCaddy(t *testing.T) {
	// Provision registers the store with the config's spark_cache app:
	// it needs a loaded config.
	if err := caddy.Load([]byte(`{"admin":{"disabled":true}}`), true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = caddy.Stop() }()
	ctx, cancel := caddy.NewContext(caddy.ActiveContext())
	defer cancel()
	h := &Handler{Name: "provision-test", Capacity: 16 << 20, MaxEntrySize: 64 << 10, Encodings: []string{"not a coding"}}
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	defer h.Cleanup()
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "invalid encoding") {
		t.Fatalf("Validate: %v, want the encoding refused", err)
	}
}
