package memory_test

import (
	"testing"

	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/memory"
	"github.com/spark-edge/spark/origin/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
}
