package redisconf

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/spark-edge/spark/caddymodule/internal/caddyargs"
)

// unmarshal reads a redis block with one extra option, "codec".
func unmarshal(block string) (Config, string, error) {
	var c Config
	var codec string
	d := caddyfile.NewTestDispenser(block)
	d.Next()
	err := c.UnmarshalBlock(d, func(opt string) []caddyargs.Setter {
		if opt == "codec" {
			return []caddyargs.Setter{caddyargs.String(&codec)}
		}
		return nil
	})
	return c, codec, err
}

func TestUnmarshalBlock(t *testing.T) {
	c, codec, err := unmarshal(`redis 10.0.0.1:6379 {
		addresses 10.0.0.2:6379 10.0.0.3:6379
		cluster
		username {env.U}
		password {env.P}
		db 0
		pool_size 20
		dial_timeout 2s
		read_timeout 100ms
		write_timeout 150ms
		key_prefix sp:
		codec zstd
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addresses: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}, Cluster: true,
		Username: "{env.U}", Password: "{env.P}", PoolSize: 20, KeyPrefix: "sp:",
		DialTimeout:  caddy.Duration(2 * time.Second),
		ReadTimeout:  caddy.Duration(100 * time.Millisecond),
		WriteTimeout: caddy.Duration(150 * time.Millisecond),
	}
	got, _ := json.Marshal(c)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) || codec != "zstd" {
		t.Fatalf("got %s codec %q\nwant %s", got, codec, exp)
	}
}

func TestUnmarshalBlockErrors(t *testing.T) {
	for _, block := range []string{
		"redis",                                  // no address
		"redis a {\n nope 1\n}",                  // unknown option
		"redis a {\n db\n}",                      // missing argument
		"redis a {\n db 1 2\n}",                  // one too many
		"redis a {\n db -1\n}",                   // negative
		"redis a {\n cluster yes\n}",             // cluster takes none
		"redis a {\n addresses\n}",               // addresses takes some
		"redis a {\n dial_timeout forever\n}",    // not a duration
		"redis a {\n cluster\n master_name m\n}", // Sentinel and Cluster
	} {
		if _, _, err := unmarshal(block); err == nil {
			t.Errorf("%q: no error", block)
		}
	}
}

func TestCredentials(t *testing.T) {
	t.Setenv("SPARK_TEST_REDIS_USER", "edge")
	t.Setenv("SPARK_TEST_REDIS_PASSWORD", "s3cret")
	c := Config{Username: "{env.SPARK_TEST_REDIS_USER}", Password: "{env.SPARK_TEST_REDIS_PASSWORD}"}
	u, p, err := c.Credentials()
	if err != nil || u != "edge" || p != "s3cret" {
		t.Fatalf("Credentials() = %q, %q, %v", u, p, err)
	}
	if u, p, err := (&Config{}).Credentials(); err != nil || u != "" || p != "" {
		t.Fatalf("no credentials: %q, %q, %v", u, p, err)
	}
	// An unset or unknown placeholder is an error that does not show a value.
	for _, c := range []Config{{Password: "{env.SPARK_TEST_REDIS_UNSET}"}, {Username: "{nope.x}"}} {
		if _, _, err := c.Credentials(); err == nil {
			t.Errorf("%+v: no error", c)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestTimeoutsKeepDefaultsForUnset(t *testing.T) {
	dial, read, write := time.Second, 250*time.Millisecond, 250*time.Millisecond
	(&Config{ReadTimeout: caddy.Duration(time.Second)}).Timeouts(&dial, &read, &write)
	if dial != time.Second || read != time.Second || write != 250*time.Millisecond {
		t.Fatalf("got %v %v %v", dial, read, write)
	}
}
