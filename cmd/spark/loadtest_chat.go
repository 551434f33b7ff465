package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/spark-edge/spark/loadtest"
	"github.com/spark-edge/spark/loadtest/chat"
	"github.com/spark-edge/spark/loadtest/refhub"
)

// chatScenario is the --scenario name that runs package loadtest/chat
// instead of an HTTP scenario.
const chatScenario = "chat"

// addChatFlags adds the chat scenario's flags to `spark loadtest`.
func addChatFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSlice("edges", nil, "chat: edges to spread the WebSockets over, round robin (default: --target)")
	f.Float64("typing-rate", 0, "chat: typing indicators per second, all users")
	f.Float64("rest-rate", 0, "chat: the app's REST calls per second (conversations, messages, matches)")
	f.Float64("drop", 0, "chat: share of connections dropped mid-run and resumed on another edge")
	f.Duration("drain", 15*time.Second, "chat: longest wait after the run for every message to arrive")
	f.Int64("first-user", 1, "chat: first user id (users first..first+--users-1, in pairs)")
	f.String("pairing", string(chat.PairingAPI), "chat: api (mutual likes through the edge) or fixed (conversation k+1 is the k-th pair: the reference hub)")
	f.String("ready-file", "", "chat: write the number of open connections to this file once all are open, before the traffic")
	f.Duration("target-p99", loadtest.DefaultChatTargets().DeliveryP99, "chat verdict: highest acceptable send→receive P99")
	f.Duration("target-typing-p99", loadtest.DefaultChatTargets().TypingP99, "chat verdict: highest acceptable typing P99")
}

// runChatLoadtest is `spark loadtest --scenario chat`: --rate is messages
// per second, --users the WebSocket users.
func runChatLoadtest(cmd *cobra.Command) error {
	fl := &flagReader{cmd: cmd}
	cfg := chat.Config{
		Edges:       fl.StringSlice("edges"),
		Users:       fl.Int("users"),
		FirstUser:   fl.Int64("first-user"),
		JWTSecret:   fl.String("jwt-secret"),
		Pairing:     chat.Pairing(fl.String("pairing")),
		Duration:    fl.Duration("duration"),
		MessageRate: fl.Float64("rate"),
		TypingRate:  fl.Float64("typing-rate"),
		RESTRate:    fl.Float64("rest-rate"),
		DropShare:   fl.Float64("drop"),
		Drain:       fl.Duration("drain"),
		Timeout:     fl.Duration("timeout"),
	}
	target := fl.String("target")
	ready := fl.String("ready-file")
	jsonPath, htmlPath := fl.String("json"), fl.String("html")
	quiet, failOnMiss := fl.Bool("quiet"), fl.Bool("fail-on-miss")
	targets := loadtest.DefaultChatTargets()
	targets.DeliveryP99, targets.TypingP99 = fl.Duration("target-p99"), fl.Duration("target-typing-p99")
	targets.RESTErrors = fl.Float64("target-errors")
	if err := fl.Err(); err != nil {
		return fmt.Errorf("loadtest flags: %w", err)
	}
	if len(cfg.Edges) == 0 {
		cfg.Edges = []string{target}
	}
	if cfg.Users == 0 {
		cfg.Users = 100
	}
	if cfg.Duration == 0 {
		cfg.Duration = 30 * time.Second
	}
	if !cmd.Flags().Changed("rate") {
		cfg.MessageRate = 20
	}
	if ready != "" {
		cfg.OnReady = func(n int) {
			if err := os.WriteFile(ready, fmt.Appendf(nil, "%d\n", n), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "loadtest: ready file: %v\n", err)
			}
		}
	}
	res, err := runWithProgress(quiet, &cfg.Progress, func(ctx context.Context) (*chat.Result, error) {
		return chat.Run(ctx, cfg)
	})
	if err != nil {
		return err
	}
	rep := res.Report(targets)
	return writeReport(cmd, rep, jsonPath, htmlPath, failOnMiss)
}

// loadtestRefhubCmd is the hidden `spark loadtest refhub`: the reference
// hub the realtime figures are compared with (make bench-realtime).
func loadtestRefhubCmd() *cobra.Command {
	c := &cobra.Command{
		Use:    "refhub --listen <addr>",
		Short:  "Serves the reference in-process WebSocket hub (spark.v1 subset) the realtime benchmark compares with",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := &flagReader{cmd: cmd}
			listen, secret, first := fl.String("listen"), fl.String("jwt-secret"), fl.Int64("first-user")
			if err := fl.Err(); err != nil {
				return fmt.Errorf("refhub flags: %w", err)
			}
			if secret == "" {
				secret = loadtest.DevJWTSecret
			}
			if _, err := loadtest.CheckTarget("http://" + listen); err != nil {
				return fmt.Errorf("refhub: --listen: %w", err)
			}
			srv := &http.Server{Addr: listen, Handler: refhub.New(refhub.Options{Secret: secret, FirstUser: first}), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signalContext()
			defer stop()
			go func() {
				<-ctx.Done()
				_ = srv.Close()
			}()
			fmt.Fprintf(os.Stderr, "refhub listening on %s\n", listen)
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("refhub: %w", err)
			}
			return nil
		},
	}
	c.Flags().String("listen", "127.0.0.1:8090", "loopback address to listen on")
	c.Flags().String("jwt-secret", os.Getenv("SPARK_JWT_SECRET"), "HS256 secret of the tokens (default the development secret)")
	c.Flags().Int64("first-user", 1, "first user of conversation 1 (conversation k: first+2(k-1) and the next)")
	return c
}
