// Package redisconn says where a Redis deployment is and how to reach it,
// for the libraries that talk to Redis (tiered and eventbus): one node, a
// Cluster, or a Sentinel-managed master, with credentials, pool size and
// timeouts. Each library embeds Options in its own options, adds what is
// its own (key prefix, codec, presence) and fills its own defaults.
package redisconn

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options locate a Redis deployment. One address is a single node; several
// addresses, or Cluster, a Redis Cluster; MasterName, a Sentinel-managed
// master (Addrs are then the sentinels).
type Options struct {
	// Addrs are the nodes (host:port), the Cluster's seed nodes, or the
	// sentinels.
	Addrs []string
	// Cluster forces Cluster mode with a single address.
	Cluster bool
	// MasterName selects Sentinel mode: the monitored master's name.
	MasterName string
	// Username and Password authenticate (an ACL user, or the requirepass
	// password alone when Username is empty).
	Username, Password string
	// DB is the database number (not in a Cluster).
	DB int
	// PoolSize and MinIdleConns are per node; 0 leaves go-redis's
	// defaults.
	PoolSize, MinIdleConns int
	// DialTimeout bounds connecting to a node, ReadTimeout waiting for a
	// reply, WriteTimeout sending a command.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
}

// IsCluster reports whether the options name a Cluster.
func (o *Options) IsCluster() bool {
	return o.Cluster || len(o.Addrs) > 1 && o.MasterName == ""
}

// Check reports options that cannot work: no address, or Sentinel and
// Cluster at once.
func (o *Options) Check() error {
	if len(o.Addrs) == 0 {
		return errors.New("at least one address is required")
	}
	if o.MasterName != "" && o.Cluster {
		return errors.New("Sentinel (MasterName) and Cluster exclude each other")
	}
	return nil
}

// Client opens a go-redis client for the deployment. A command is retried
// once on a network error.
func (o *Options) Client() redis.UniversalClient {
	return redis.NewUniversalClient(o.universal())
}

// ProbeClient opens a client for asking often, and cheaply, whether the
// deployment answers: one connection per node, no idle connections kept
// warm, no retry of a command or of a dial, and a dial bounded by dial
// (at most DialTimeout). A pool's own dialling backs off after failures
// (go-redis stops dialling and tries once a second), so a client that is
// also used for traffic learns late that a server is back; this one dials
// whenever it is asked.
func (o *Options) ProbeClient(dial time.Duration) redis.UniversalClient {
	u := o.universal()
	u.PoolSize, u.MinIdleConns, u.MaxRetries, u.DialerRetries = 1, 0, -1, 1
	if o.DialTimeout > 0 {
		dial = min(dial, o.DialTimeout)
	}
	u.DialTimeout = dial
	return redis.NewUniversalClient(u)
}

func (o *Options) universal() *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs:         o.Addrs,
		IsClusterMode: o.IsCluster(),
		MasterName:    o.MasterName,
		Username:      o.Username,
		Password:      o.Password,
		DB:            o.DB,
		PoolSize:      o.PoolSize,
		MinIdleConns:  o.MinIdleConns,
		DialTimeout:   o.DialTimeout,
		ReadTimeout:   o.ReadTimeout,
		WriteTimeout:  o.WriteTimeout,
		MaxRetries:    1,
	}
}
