package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/spark-edge/spark/loadtest"
)

// errTargetsMissed makes `spark loadtest --fail-on-miss` exit non-zero.
var errTargetsMissed = errors.New("loadtest: some targets were missed")

// errStale makes `spark loadtest` exit non-zero when the correctness
// checker saw a response older than a write acknowledged before it.
var errStale = errors.New("loadtest: correctness violations")

// The loadtest subcommand: `spark loadtest [flags]`. All logic lives in
// package loadtest; this file only maps flags and environment.
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "loadtest",
		Usage: "[--target <url>] [--scenario <name|file>] [--rate <req/s> | --mode closed --concurrency <n>] [--duration <d>] [--json <file>] [--html <file>]",
		Short: "Sends dating-app traffic to an edge or origin on this machine and reports latency, throughput, errors and cache hits",
		Long: `
Sends dating-app traffic (app opens, profile browsing, swipes, location
updates, chat) to a Spark edge or origin on this machine and reports per
endpoint latency percentiles (HdrHistogram), achieved throughput, errors by
kind, the cache hit ratio from Cache-Status and bytes in/out, with a verdict
against the plan's targets (P95 < 200 ms, > 2000 req/s, < 0.1% errors, hit
ratio > 90%).

Open model (default): flows start at a planned rate, ramped up linearly, and
latency counts from when each request was due, so a slow server cannot hide
its queueing (no coordinated omission). Closed model (--mode closed
--concurrency N): N workers back to back, without think time by default,
for maximum-throughput runs.

Virtual users 1..--users get HS256 tokens signed with --jwt-secret
(SPARK_JWT_SECRET; default: the origin's development secret). Only
localhost / loopback targets are accepted.

Built-in scenarios: ` + strings.Join(loadtest.BuiltinScenarios(), ", ") + `; or pass a YAML file.

--scenario chat: --users WebSocket users in matched pairs on spark.v1,
spread over --edges (default --target) round robin; --rate messages per
second, --typing-rate typing indicators, --rest-rate the app's REST calls;
--drop of the connections dropped mid-run and resumed on the next edge with
since=<last ack>. Reports send→receive latency at the receiver and a ledger
of every message (lost, duplicated, misdelivered) after a --drain.`,
		CobraFunc: func(cmd *cobra.Command) {
			f := cmd.Flags()
			f.String("target", envOr("SPARK_LOADTEST_TARGET", "http://127.0.0.1:8080"), "base URL of the edge or origin (loopback only)")
			f.String("scenario", "dating", "built-in scenario name or YAML file")
			f.String("mode", "open", "open (arrival rate) or closed (fixed concurrency)")
			f.Float64("rate", 500, "open mode: target requests per second")
			f.Int("concurrency", 64, "closed mode: concurrent workers")
			f.Duration("duration", 0, "run length including ramp-up (default 30s)")
			f.Duration("ramp", 0, "time to reach the full rate or all workers (default: a sixth of the duration)")
			f.Float64("think", 1, "think-time multiplier (0: no pauses; closed mode defaults to 0)")
			f.Bool("poisson", false, "open mode: exponentially spaced arrivals instead of even ones")
			f.Int("users", 0, "virtual users, ids 1..N (default: the scenario's)")
			f.String("jwt-secret", os.Getenv("SPARK_JWT_SECRET"), "HS256 secret for the users' tokens (env SPARK_JWT_SECRET; default the development secret)")
			f.Duration("timeout", 0, "per-request timeout (default 10s)")
			f.Int("max-inflight", 0, "open mode: flows in flight before arrivals count as dropped (default 50000)")
			f.Bool("no-setup", false, "skip the scenario's per-user setup requests")
			f.Bool("no-read-after", false, "virtual users do not send back the Spark-Read-After position they got (the app does)")
			f.String("json", "", "write the report as JSON to this file")
			f.String("html", "", "write a self-contained HTML report to this file")
			f.String("trace", "", "write one JSON line per measured request to this file (user, endpoint, path, status, Cache-Status)")
			f.Bool("quiet", false, "no live progress line")
			f.Bool("fail-on-miss", false, "exit non-zero when a target is missed")
			f.Duration("target-p95", loadtest.DefaultTargets().P95, "verdict: highest acceptable P95")
			f.Float64("target-rps", loadtest.DefaultTargets().RPS, "verdict: lowest acceptable steady req/s")
			f.Float64("target-errors", loadtest.DefaultTargets().ErrorRate, "verdict: highest acceptable error share")
			f.Float64("target-hit", loadtest.DefaultTargets().HitRatio, "verdict: lowest acceptable cache hit ratio")
			addChatFlags(cmd)
			cmd.RunE = runLoadtest
			cmd.AddCommand(loadtestReportCmd(), loadtestRefhubCmd(), loadtestAppOpenCmd())
		},
	})
}

func runLoadtest(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	if sc, _ := f.GetString("scenario"); sc == chatScenario {
		return runChatLoadtest(cmd)
	}
	fl := &flagReader{cmd: cmd}
	cfg := loadtest.Config{
		Target:      fl.String("target"),
		Mode:        loadtest.Mode(fl.String("mode")),
		Rate:        fl.Float64("rate"),
		Concurrency: fl.Int("concurrency"),
		Duration:    fl.Duration("duration"),
		ThinkScale:  fl.Float64("think"),
		Poisson:     fl.Bool("poisson"),
		Users:       fl.Int("users"),
		JWTSecret:   fl.String("jwt-secret"),
		Timeout:     fl.Duration("timeout"),
		MaxInFlight: fl.Int("max-inflight"),
		SkipSetup:   fl.Bool("no-setup"),
		NoReadAfter: fl.Bool("no-read-after"),
	}
	ramp := fl.Duration("ramp")
	jsonPath, htmlPath, tracePath := fl.String("json"), fl.String("html"), fl.String("trace")
	quiet, failOnMiss := fl.Bool("quiet"), fl.Bool("fail-on-miss")
	targets := loadtest.Targets{P95: fl.Duration("target-p95"), RPS: fl.Float64("target-rps"),
		ErrorRate: fl.Float64("target-errors"), HitRatio: fl.Float64("target-hit")}
	scenario := fl.String("scenario")
	if err := fl.Err(); err != nil {
		return fmt.Errorf("loadtest flags: %w", err)
	}
	if cfg.Duration == 0 {
		cfg.Duration = 30 * time.Second
	}
	if !f.Changed("ramp") {
		ramp = cfg.Duration / 6
	}
	cfg.Ramp = ramp
	if !f.Changed("think") && cfg.Mode == loadtest.ModeClosed {
		cfg.ThinkScale = 0
	}
	sc, err := loadtest.LoadScenario(scenario)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	cfg.Scenario = sc
	if tracePath != "" {
		tf, err := os.Create(tracePath)
		if err != nil {
			return fmt.Errorf("loadtest: trace: %w", err)
		}
		defer tf.Close()
		cfg.Trace = tf
	}
	res, err := runWithProgress(quiet, &cfg.Progress, func(ctx context.Context) (*loadtest.Result, error) {
		return loadtest.Run(ctx, cfg)
	})
	if err != nil {
		return err
	}
	rep := loadtest.NewReport(res, targets)
	return writeReport(cmd, rep, jsonPath, htmlPath, failOnMiss)
}

// loadtestReportCmd renders a saved JSON report again: `spark loadtest
// report --json r.json --html r.html`.
func loadtestReportCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "report --json <file> [--html <file>]",
		Short: "Prints the summary of a saved JSON report and optionally renders its HTML report",
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, _ := cmd.Flags().GetString("json")
			out, _ := cmd.Flags().GetString("html")
			rep, err := loadtest.ReadReport(in)
			if err != nil {
				return fmt.Errorf("loadtest report: %w", err)
			}
			if err := rep.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			return writeReportFile(cmd, "HTML", out, rep.WriteHTML)
		},
	}
	c.Flags().String("json", "", "JSON report written by spark loadtest --json")
	c.Flags().String("html", "", "write the HTML report to this file")
	_ = c.MarkFlagRequired("json")
	return c
}

// writeReport prints rep, writes its JSON and HTML files when asked, and
// fails with errTargetsMissed when failOnMiss is set and a target was missed.
func writeReport(cmd *cobra.Command, rep *loadtest.Report, jsonPath, htmlPath string, failOnMiss bool) error {
	if err := rep.WriteText(cmd.OutOrStdout()); err != nil {
		return err
	}
	if err := writeReportFile(cmd, "JSON", jsonPath, rep.WriteJSON); err != nil {
		return err
	}
	if err := writeReportFile(cmd, "HTML", htmlPath, rep.WriteHTML); err != nil {
		return err
	}
	if rep.Checks != nil && rep.Checks.Violations > 0 {
		return fmt.Errorf("%w: %d stale responses", errStale, rep.Checks.Violations)
	}
	if failOnMiss && !rep.Pass {
		return errTargetsMissed
	}
	return nil
}

// writeReportFile writes one form of a report (kind: JSON, HTML) to path
// with write and says where, when path is set.
func writeReportFile(cmd *cobra.Command, kind, path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	if err := loadtest.WriteFile(path, write); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s report: %s\n", kind, path)
	return nil
}

// runWithProgress runs a load test until it ends or the process is
// interrupted, writing its progress over one line of stderr (unless quiet)
// through the config's Progress field, *progress.
func runWithProgress[P fmt.Stringer, R any](quiet bool, progress *func(P), run func(context.Context) (R, error)) (R, error) {
	if !quiet {
		*progress = func(p P) { fmt.Fprintf(os.Stderr, "\r%s\033[K", p) }
	}
	ctx, stop := signalContext()
	defer stop()
	res, err := run(ctx)
	if !quiet {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return res, fmt.Errorf("loadtest: %w", err)
	}
	return res, nil
}
