package deploy

import (
	"bytes"
	"errors"
)

// cacheAnchor is the line of the repository's Caddyfile that opens the
// spark_cache block (its matcher keeps handled paths and foreign hosts
// out); a redis block goes right after it.
const cacheAnchor = "\tspark_cache @routed {\n"

// withRedisBlock returns caddyfile with block (tab-indented lines, each
// ending in a newline) inserted at the top of its spark_cache block: the
// repository's Caddyfile on a shared second tier.
func withRedisBlock(caddyfile []byte, block string) ([]byte, error) {
	if bytes.Count(caddyfile, []byte(cacheAnchor)) != 1 {
		return nil, errors.New("the Caddyfile has no single \"\\tspark_cache @routed {\" line to add a redis block to")
	}
	return bytes.Replace(caddyfile, []byte(cacheAnchor), []byte(cacheAnchor+block), 1), nil
}

// composeRedisBlock is what deploy/compose/edge.Caddyfile adds to the
// repository's Caddyfile: the compose file's 3-master Redis Cluster.
const composeRedisBlock = "\t\t# Added for deploy/compose.yaml: the shared tier on its Redis Cluster.\n" +
	"\t\tredis redis-1:6379 redis-2:6379 redis-3:6379 {\n" +
	"\t\t\tcluster\n" +
	"\t\t\tkey_prefix spark:\n" +
	"\t\t}\n"
