package testredis

import (
	"bufio"
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// A Fail rule fails exactly the commands it names, inside a pipeline too,
// and everything else reaches Redis; a Drop rule fails the call it drops.
func TestProxyFailsChosenCommands(t *testing.T) {
	p := NewProxy(t, Shared(t))
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: 1})
	defer c.Close()
	ctx := context.Background()
	k := Prefix(t)
	p.FailNext(1, Fail, func(args []string) bool { return strings.EqualFold(args[0], "set") && args[1] == k+"b" })
	cmds, err := c.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.Set(ctx, k+"a", "1", 0)
		pl.Set(ctx, k+"b", "2", 0)
		pl.Set(ctx, k+"c", "3", 0)
		return nil
	})
	if err == nil || cmds[0].Err() != nil || cmds[1].Err() == nil || cmds[2].Err() != nil {
		t.Fatalf("pipeline with the second SET failed: %v; %v %v %v", err, cmds[0].Err(), cmds[1].Err(), cmds[2].Err())
	}
	if n := c.Exists(ctx, k+"a", k+"b", k+"c").Val(); n != 2 {
		t.Fatalf("%d of the keys exist, want 2 (a and c)", n)
	}
	// The rule is spent: the same command now passes.
	if err := c.Set(ctx, k+"b", "2", 0).Err(); err != nil {
		t.Fatalf("SET after the failure: %v", err)
	}
	// Dropping twice defeats go-redis's one retry.
	p.FailNext(2, Drop, func(args []string) bool { return strings.EqualFold(args[0], "get") })
	if err := c.Get(ctx, k+"a").Err(); err == nil {
		t.Fatal("GET through two dropped connections succeeded")
	}
	if v := c.Get(ctx, k+"a").Val(); v != "1" {
		t.Fatalf("GET after the drops = %q", v)
	}
	if p.Failed() != 3 {
		t.Fatalf("Failed() = %d, want 3", p.Failed())
	}
	c.Del(ctx, k+"a", k+"b", k+"c")
}

// Cut closes the connections through the proxy and refuses new ones until
// Restore.
func TestProxyCut(t *testing.T) {
	p := NewProxy(t, Shared(t))
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	for i := range 3 { // the pooled connection, then fresh ones
		if err := c.Ping(ctx).Err(); err == nil {
			t.Fatalf("PING %d through a cut proxy answered", i+1)
		}
	}
	p.Restore()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restore: %v", err)
	}
}

// A Sentinel started for a master names it.
func TestStartSentinel(t *testing.T) {
	master := Start(t)
	s := StartSentinel(t, "m", master.Addr())
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(context.Background(), "m").Result()
	if err != nil || strings.Join(hp, ":") != master.Addr() {
		t.Fatalf("sentinel names %v (%v), want %s", hp, err, master.Addr())
	}
}

func TestReadCommand(t *testing.T) {
	in := "*2\r\n$3\r\nGET\r\n$5\r\na\r\nbc\r\nPING x\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	raw, args, err := ReadCommand(r)
	if err != nil || !slices.Equal(args, []string{"GET", "a\r\nbc"}) || string(raw) != in[:len(in)-8] {
		t.Fatalf("array: %q %q %v", raw, args, err)
	}
	if _, args, err = ReadCommand(r); err != nil || !slices.Equal(args, []string{"PING", "x"}) {
		t.Fatalf("inline: %q %v", args, err)
	}
	for _, bad := range []string{"*1\r\n$4\r\nab\r\n", "*1\r\n:1\r\n", "*-2\r\n", "*1\r\n$99999999999\r\n", "x\n"} {
		if _, _, err := ReadCommand(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("ReadCommand(%q) accepted", bad)
		}
	}
}

// FuzzReadCommand: never a panic; what parses re-encodes to a command that
// parses to the same arguments.
func FuzzReadCommand(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"))
	f.Add([]byte("*1\r\n$0\r\n\r\n"))
	f.Add([]byte("PING\r\n"))
	f.Add([]byte("*3\r\n$1\r\n"))
	f.Add([]byte("*1\r\n$2147483647\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, args, err := ReadCommand(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		if !bytes.HasPrefix(b, raw) {
			t.Fatalf("raw %q is not what was read from %q", raw, b)
		}
		if raw[0] != '*' {
			return
		}
		_, again, err := ReadCommand(bufio.NewReader(bytes.NewReader(EncodeCommand(args))))
		if err != nil || !slices.Equal(args, again) {
			t.Fatalf("round trip of %q: %q, %v", args, again, err)
		}
	})
}
