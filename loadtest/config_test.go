package loadtest

import (
	"context"
	"testing"
	"time"
)

func TestCheckTarget(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:8080/", "https://[::1]:8443", "http://127.3.2.1"} {
		if _, err := CheckTarget(ok); err != nil {
			t.Errorf("CheckTarget(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "http://example.com", "ftp://127.0.0.1", "http://192.168.1.2", "127.0.0.1:8080", "http://0.0.0.0:80"} {
		if _, err := CheckTarget(bad); err == nil {
			t.Errorf("CheckTarget(%q): accepted", bad)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	sc := mustScenario(t, oneEndpoint)
	for _, c := range []Config{
		{Target: "http://127.0.0.1:1", Scenario: sc, Mode: ModeOpen, Rate: 0, Duration: time.Second},
		{Target: "http://127.0.0.1:1", Scenario: sc, Mode: ModeClosed, Concurrency: 0, Duration: time.Second},
		{Target: "http://127.0.0.1:1", Scenario: sc, Mode: "bursty", Duration: time.Second},
		{Target: "http://127.0.0.1:1", Scenario: sc, Mode: ModeOpen, Rate: 1, Duration: 2 * time.Hour},
		{Target: "http://127.0.0.1:1", Scenario: sc, Mode: ModeOpen, Rate: 1, Duration: time.Second, Ramp: time.Second},
		// Refused by CheckTarget; were that check ever to regress, 0.0.0.0
		// still dials this machine, never another one.
		{Target: "http://0.0.0.0:9", Scenario: sc, Mode: ModeOpen, Rate: 1, Duration: time.Second},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run(%+v): no error", c)
		}
	}
}
