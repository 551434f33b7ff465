package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/spark-edge/spark/loadtest/appopen"
	"github.com/spark-edge/spark/origin"
)

// loadtestAppOpenCmd is `spark loadtest appopen`: the app-open flow with
// /api/batch against five separate calls over a simulated mobile link.
func loadtestAppOpenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "appopen [--target <url>] [--user <id>] [--rtt <d>] [--mbps <n>] [--runs <n>]",
		Short: "Measures an app open (5 calls, 4 cached) as one /api/batch against five calls, over a simulated 3G link",
		Long: `
Opens the app as a phone on a slow link would: the deck, the first three
cards' profiles and the conversations, once as one POST /api/batch and, as
the references, as five parallel calls and as the slowest call alone. The
link is a delaying proxy on loopback (--rtt round trip, --mbps each way; a
new connection costs a round trip). The first run of each form is not
measured: it opens the connections and fills the edge's cache. The batch
is sent gzip-compressed and keeps the default sub-response fields; its
hits are counted on one more batch, after the measured runs, that asks
for Cache-Status.
Prints P50/P95, bytes on the link, round trips and the ratios against the
targets (batch P95 <= 1.2x the slowest call's; >= 3x fewer bytes and round
trips than the five calls).`,
		RunE: runAppOpen,
	}
	f := cmd.Flags()
	f.String("target", envOr("SPARK_LOADTEST_TARGET", "http://127.0.0.1:8080"), "base URL of the edge (loopback only)")
	f.Int64("user", 1, "the user whose app opens")
	f.String("jwt-secret", os.Getenv("SPARK_JWT_SECRET"), "HS256 secret for the user's token (env SPARK_JWT_SECRET; default the development secret)")
	f.Duration("rtt", appopen.ThreeG.RTT, "the link's round trip")
	f.Float64("mbps", appopen.ThreeG.Mbps, "the link's bandwidth each way, Mbit/s")
	f.Int("runs", 40, "app opens measured per form")
	f.Bool("fail-on-miss", false, "exit non-zero when a target is missed")
	f.Bool("h2c", false, "HTTP/2 without TLS instead of HTTP/1.1 (the edge needs `protocols h1 h2c`)")
	return cmd
}

func runAppOpen(cmd *cobra.Command, _ []string) error {
	fl := &flagReader{cmd: cmd}
	target, user, secret := fl.String("target"), fl.Int64("user"), fl.String("jwt-secret")
	link := appopen.Link{RTT: fl.Duration("rtt"), Mbps: fl.Float64("mbps")}
	runs, failOnMiss, h2c := fl.Int("runs"), fl.Bool("fail-on-miss"), fl.Bool("h2c")
	if err := fl.Err(); err != nil {
		return fmt.Errorf("appopen flags: %w", err)
	}
	if secret == "" {
		secret = origin.DevJWTSecret
	}
	tok, err := origin.IssueToken(secret, user, time.Hour, time.Now())
	if err != nil {
		return fmt.Errorf("appopen: token for user %d: %w", user, err)
	}
	hdr := appopen.PhoneHeader()
	ctx, stop := signalContext()
	defer stop()
	res, err := appopen.Run(ctx, appopen.Config{Target: target, Token: tok, Link: link, Runs: runs, Header: hdr, H2C: h2c,
		PartnerToken: func(u int64) (string, error) { return origin.IssueToken(secret, u, time.Hour, time.Now()) }})
	if err != nil {
		return err
	}
	res.Write(os.Stdout)
	if failOnMiss && !res.Verdicts().OK() {
		return errors.New("appopen: a target was missed")
	}
	return nil
}
