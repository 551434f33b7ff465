package deploy

import (
	"bytes"
	"flag"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite compose/edge.Caddyfile from the repository's Caddyfile")

// composeFile is the part of deploy/compose.yaml the checks read (anchors
// and merge keys resolved by the YAML decoder).
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Configs  map[string]struct {
		Content string `yaml:"content"`
	} `yaml:"configs"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Configs []struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	} `yaml:"configs"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(false)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// flagValue returns the value after flag in cmd.
func flagValue(cmd []string, flag string) string {
	for i, a := range cmd {
		if a == flag && i+1 < len(cmd) {
			return cmd[i+1]
		}
	}
	return ""
}

// TestComposeTopology checks deploy/compose.yaml without Docker (there is
// no daemon here): it is YAML, it has the services of the topology, and
// every name and port one service uses to reach another is that service's.
func TestComposeTopology(t *testing.T) {
	c := loadCompose(t)
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	want := "edge-1 edge-2 origin postgres-primary postgres-replica redis-1 redis-2 redis-3 redis-cluster-init"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("services %s, want %s", got, want)
	}

	for name, s := range c.Services {
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s uses volume %s, not declared under volumes", name, src)
			}
		}
		for _, cf := range s.Configs {
			if _, ok := c.Configs[cf.Source]; !ok {
				t.Errorf("%s uses config %s, not declared under configs", name, cf.Source)
			}
		}
		if name != "redis-cluster-init" && s.Image == "" {
			t.Errorf("%s has no image", name)
		}
		if strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("%s: image %s is not pinned", name, s.Image)
		}
		// Secrets only from the environment (.env), required.
		for k, v := range s.Environment {
			if regexp.MustCompile(`SECRET|TOKEN|PASSWORD`).MatchString(k) && !strings.HasPrefix(v, "${"+k+":?") &&
				!(k == "PGPASSWORD" && strings.HasPrefix(v, "${SPARK_REPLICATION_PASSWORD:?")) &&
				!(k == "POSTGRES_PASSWORD" && strings.HasPrefix(v, "${SPARK_DB_PASSWORD:?")) {
				t.Errorf("%s: %s=%q is not a required variable from .env", name, k, v)
			}
		}
	}

	// Published ports: distinct on the host.
	hostPorts := map[string]string{}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			hp, _, _ := strings.Cut(p, ":")
			if prev, dup := hostPorts[hp]; dup {
				t.Errorf("host port %s published by %s and %s", hp, prev, name)
			}
			hostPorts[hp] = name
		}
	}

	// Edges -> origin: the address the origin listens on.
	origin := c.Services["origin"]
	_, originPort, err := net.SplitHostPort(flagValue(origin.Command, "--listen"))
	if err != nil {
		t.Fatalf("origin --listen: %v", err)
	}
	for _, e := range []string{"edge-1", "edge-2"} {
		s := c.Services[e]
		if got := s.Environment["SPARK_ORIGIN"]; got != "origin:"+originPort {
			t.Errorf("%s: SPARK_ORIGIN=%q, want origin:%s", e, got, originPort)
		}
		if _, ok := s.DependsOn["origin"]; !ok {
			t.Errorf("%s does not depend on origin", e)
		}
		if _, port, _ := strings.Cut(s.Environment["SPARK_LISTEN"], ":"); len(s.Ports) != 1 || !strings.HasSuffix(s.Ports[0], ":"+port) {
			t.Errorf("%s publishes %v, not its SPARK_LISTEN port %s", e, s.Ports, port)
		}
		for _, k := range []string{"SPARK_JWT_SECRET", "SPARK_EVENTS_TOKEN"} {
			if s.Environment[k] != origin.Environment[k] {
				t.Errorf("%s: %s differs from the origin's", e, k)
			}
		}
	}

	// Origin -> PostgreSQL: the primary's user and database, the replica
	// cloned from that primary.
	primary := c.Services["postgres-primary"]
	for env, host := range map[string]string{"SPARK_DATABASE_URL": "postgres-primary", "SPARK_REPLICA_URL": "postgres-replica"} {
		raw := strings.ReplaceAll(origin.Environment[env], "${SPARK_DB_PASSWORD:?set SPARK_DB_PASSWORD in deploy/.env}", "pw")
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("origin %s: %v", env, err)
			continue
		}
		if u.Hostname() != host || u.Port() != "5432" {
			t.Errorf("origin %s reaches %s, want %s:5432", env, u.Host, host)
		}
		if u.User.Username() != primary.Environment["POSTGRES_USER"] || strings.TrimPrefix(u.Path, "/") != primary.Environment["POSTGRES_DB"] {
			t.Errorf("origin %s: user %s database %s, the primary makes %s and %s", env, u.User.Username(), u.Path,
				primary.Environment["POSTGRES_USER"], primary.Environment["POSTGRES_DB"])
		}
	}
	replicaCmd := strings.Join(c.Services["postgres-replica"].Command, " ")
	if !strings.Contains(replicaCmd, "pg_basebackup -h postgres-primary -p 5432 -U replicator") || !strings.Contains(replicaCmd, " -R ") {
		t.Errorf("postgres-replica is not cloned from postgres-primary with pg_basebackup -R: %s", replicaCmd)
	}
	if !strings.Contains(c.Configs["primary-replication"].Content, "CREATE ROLE replicator WITH REPLICATION") {
		t.Error("the primary's init config makes no replicator role")
	}

	// Redis: the Cluster init, the origin and the edges' Caddyfile name
	// exactly the three redis services.
	var redisNodes []string
	for _, n := range names {
		if regexp.MustCompile(`^redis-\d$`).MatchString(n) {
			redisNodes = append(redisNodes, n+":6379")
		}
	}
	nodes := strings.Join(redisNodes, " ")
	if len(redisNodes) != 3 {
		t.Fatalf("redis nodes %v, want 3 masters", redisNodes)
	}
	if init := strings.Join(c.Services["redis-cluster-init"].Command, " "); !strings.Contains(init, "--cluster create "+nodes+" --cluster-replicas 0") {
		t.Errorf("redis-cluster-init does not create the cluster of %s: %s", nodes, init)
	}
	if got := strings.ReplaceAll(flagValue(origin.Command, "--cell-cache-redis"), ",", " "); got != nodes {
		t.Errorf("origin --cell-cache-redis %q, want %q", got, nodes)
	}
	caddyfile, err := os.ReadFile("compose/edge.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(caddyfile, []byte("redis "+nodes+" {\n\t\t\tcluster\n")) {
		t.Errorf("compose/edge.Caddyfile's redis block does not name the cluster %s", nodes)
	}

	// Every variable compose requires is in env.example.
	b, _ := os.ReadFile("compose.yaml")
	example, err := os.ReadFile("env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+):\?`).FindAllStringSubmatch(string(b), -1) {
		if !bytes.Contains(example, []byte("\n"+m[1]+"=")) && !bytes.HasPrefix(example, []byte(m[1]+"=")) {
			t.Errorf("compose.yaml requires %s, env.example does not list it", m[1])
		}
	}
}

// TestComposeCaddyfile checks that compose/edge.Caddyfile is the
// repository's Caddyfile plus the Cluster's redis block, nothing else
// (go test -run TestComposeCaddyfile -update rewrites it), and that spark
// adapts it.
func TestComposeCaddyfile(t *testing.T) {
	repo, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := withRedisBlock(repo, composeRedisBlock)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("compose/edge.Caddyfile", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("compose/edge.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("compose/edge.Caddyfile is not the repository's Caddyfile plus the compose redis block: go test -run TestComposeCaddyfile -update")
	}
	cmd := exec.Command(sparkBinary(t), "adapt", "--config", "compose/edge.Caddyfile", "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "SPARK_JWT_SECRET=compose-test-secret-0123456789abcdef", "SPARK_EVENTS_TOKEN=compose-test-token-0123456789abcdef",
		"SPARK_PURGE_TOKEN=x", "SPARK_ORIGIN=origin:8081", "SPARK_LISTEN=:8080")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spark adapt compose/edge.Caddyfile: %v\n%s", err, stderr.String())
	}
	for _, s := range []string{`"redis-1:6379"`, `"cluster":true`, `"origin:8081"`} {
		if !bytes.Contains(out, []byte(s)) {
			t.Errorf("adapted config has no %s:\n%s", s, out)
		}
	}
}
