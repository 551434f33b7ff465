// Command spark is a Caddy build with Spark's edge modules, plus the
// origin and loadtest subcommands.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/spark-edge/spark/caddymodule/auth"
	_ "github.com/spark-edge/spark/caddymodule/cache"
	_ "github.com/spark-edge/spark/caddymodule/image"
)

func main() {
	caddycmd.Main()
}
