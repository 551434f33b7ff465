package postgis_test

import (
	"testing"

	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
)

func openTestStore(t testing.TB) *postgis.Store { return pgtest.Open(t, "test_postgis") }
