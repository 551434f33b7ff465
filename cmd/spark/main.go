// Command spark is a Caddy build with Spark's edge modules, plus the
// origin and loadtest subcommands.
package main

import (
	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/spark-edge/spark/caddymodule/auth"
	_ "github.com/spark-edge/spark/caddymodule/batch"
	_ "github.com/spark-edge/spark/caddymodule/cache"
	_ "github.com/spark-edge/spark/caddymodule/deck"
	_ "github.com/spark-edge/spark/caddymodule/gc"
	_ "github.com/spark-edge/spark/caddymodule/handover"
	_ "github.com/spark-edge/spark/caddymodule/image"
	_ "github.com/spark-edge/spark/caddymodule/realtime"
)

// longDescription is what `spark help` and `spark --help` open with.
const longDescription = `Spark runs the Spark dating app's edge and origin from one binary: it is a
Caddy build with Spark's modules (spark_cache, spark_image, spark_auth,
spark_batch, spark_realtime, spark_deck_hints, and the listener wrappers
spark_fastpath and spark_handover), plus the origin API, a load generator
and a terminal chat client.

As an edge node (every Caddy command works, named spark):

	spark run --config Caddyfile      run the edge in the foreground
	spark reload --config Caddyfile   apply a changed Caddyfile
	spark adapt --config Caddyfile    print the JSON config it makes
	spark validate --config Caddyfile check it without running it

The other jobs:

	spark origin [flags]              the origin API (in-memory demo store, or PostGIS)
	spark loadtest [flags]            dating-app traffic against an edge or origin
	spark realtime --user N [flags]   a terminal chat client over spark_realtime

'spark help <command>' shows a command's flags.`

func init() {
	// Caddy's command line names and describes this binary, not caddy.
	caddy.CustomBinaryName = "spark"
	caddy.CustomLongDescription = longDescription
}

func main() {
	caddycmd.Main()
}
