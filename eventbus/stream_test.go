package eventbus_test

import (
	"testing"

	"github.com/spark-edge/spark/eventbus/bustest"
)

// The origin stream over a real HTTP server: Cut restarts the origin's
// StreamServer.
func TestStream(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Harness { return newStreamHarness(t) })
}
