package deploy

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPITRDrill runs deploy/pitr-drill.sh, the procedure of RUNBOOK.md's
// point-in-time recovery: base backup, rows before and after a timestamp,
// restore of the backup plus the WAL archive to that timestamp, rows
// before present and rows after absent. It needs PostgreSQL 15's programs
// (scripts/test-deps.sh installs them) and fails saying so without them.
func TestPITRDrill(t *testing.T) {
	if _, err := exec.LookPath("pg_config"); err != nil {
		t.Fatalf("pg_config not found (run scripts/test-deps.sh): %v", err)
	}
	port := func() string {
		_, p, _ := net.SplitHostPort(freeAddr(t))
		return p
	}
	cmd := exec.Command("./pitr-drill.sh")
	cmd.Env = append(os.Environ(), "PITR_PORT="+port(), "PITR_RESTORE_PORT="+port(), "PITR_ROWS=50")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pitr-drill.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "pitr-drill: OK") {
		t.Fatalf("pitr-drill.sh printed no OK:\n%s", out)
	}
	t.Logf("%s", out)
}
