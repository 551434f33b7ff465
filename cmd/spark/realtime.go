package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/spark-edge/spark/internal/authtoken"
	"github.com/spark-edge/spark/loadtest/sparkv1"
)

// `spark realtime`: a terminal client of the edge's realtime chat, on the
// same spark.v1 client (loadtest/sparkv1) as the load test's chat scenario.
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "realtime",
		Usage: "--user <id> [--edge <url>] [--since <seq>] [--token <jwt>]",
		Short: "A terminal client of the edge's realtime chat (spark_realtime)",
		Long: `
Connects to an edge's /api/realtime as a user and prints every frame it
receives (events are acknowledged as they arrive). Lines typed are sent:

	/send <conversation> <text>    a chat message
	/typing <conversation>         a typing indicator
	/read <conversation> <message> a read receipt
	/ack <seq>                     an acknowledgement
	{…}                            a raw spark.v1 frame

The token is --token, else SPARK_TOKEN, else one minted for --user with
SPARK_JWT_SECRET (make run's development secret when unset).`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().Int64("user", 0, "the user to connect as")
			cmd.Flags().String("edge", "http://localhost:8080", "the edge's base URL")
			cmd.Flags().String("since", "", "resume after this seq (empty: live only)")
			cmd.Flags().String("token", "", "a bearer token (default: SPARK_TOKEN, or minted)")
			cmd.RunE = runRealtime
		},
	})
}

// runRealtime is `spark realtime`.
func runRealtime(cmd *cobra.Command, _ []string) error {
	fl := &flagReader{cmd: cmd}
	tok, user, edge, since := fl.String("token"), fl.Int64("user"), fl.String("edge"), fl.String("since")
	if err := fl.Err(); err != nil {
		return fmt.Errorf("realtime flags: %w", err)
	}
	if tok == "" {
		tok = os.Getenv("SPARK_TOKEN")
	}
	if tok == "" {
		if user <= 0 {
			return errors.New("realtime: --user or --token is required")
		}
		secret := os.Getenv("SPARK_JWT_SECRET")
		if secret == "" {
			secret = authtoken.DevSecret
		}
		var err error
		if tok, err = authtoken.Issue([]byte(secret), user, authtoken.IssueOptions{TTL: time.Hour}); err != nil {
			return fmt.Errorf("realtime: %w", err)
		}
	}
	o := sparkv1.Options{Edge: edge, Token: tok}
	if since != "" {
		n, err := strconv.ParseInt(since, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("realtime: --since %q: want a non-negative integer", since)
		}
		o.Since, o.HasSince = n, true
	}
	ctx, stop := signalContext()
	defer stop()
	c, err := sparkv1.Dial(ctx, o)
	if err != nil {
		return fmt.Errorf("realtime: %w", err)
	}
	defer c.Close()
	go func() {
		<-ctx.Done()
		_ = c.Close()
	}()
	fmt.Fprintf(os.Stderr, "connected to %s (%s); type /send <conversation> <text>\n", edge, sparkv1.Subprotocol)
	go sendLines(c, os.Stdin, os.Stderr)
	return printFrames(c, cmd.OutOrStdout())
}

// printFrames prints the server's frames, one a line, acking the events.
// It returns nil when the server closed the connection (after printing the
// code).
func printFrames(c *sparkv1.Conn, out io.Writer) error {
	for {
		msg, err := c.ReadMessage()
		if err != nil {
			if code := sparkv1.CloseCode(err); code != 0 {
				fmt.Fprintf(out, "closed: %d\n", code)
				return nil
			}
			return fmt.Errorf("realtime: %w", err)
		}
		var last int64
		for _, line := range bytes.Split(msg, []byte("\n")) {
			fmt.Fprintf(out, "%s\n", line)
			f, err := sparkv1.DecodeFrame(line)
			if err != nil {
				fmt.Fprintf(out, "undecodable: %v\n", err)
				continue
			}
			if f.Type == sparkv1.TypeEvent {
				last = f.Event.Seq
			}
		}
		if last > 0 {
			_ = c.Ack(last)
		}
	}
}

// sendLines turns typed lines into frames until in ends or a write fails.
func sendLines(c *sparkv1.Conn, in io.Reader, errOut io.Writer) {
	sc := bufio.NewScanner(in)
	n := 0
	for sc.Scan() {
		frame, err := lineFrame(sc.Text(), time.Now().UnixNano(), &n)
		if err != nil {
			fmt.Fprintln(errOut, err)
			continue
		}
		if frame != nil && c.Write(frame) != nil {
			return
		}
	}
}

// lineFrame makes the frame a typed line asks for (nil: nothing); now and
// n make the client_msg_id of a /send.
func lineFrame(line string, now int64, n *int) ([]byte, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, nil
	}
	if strings.HasPrefix(line, "{") {
		if !json.Valid([]byte(line)) {
			return nil, errors.New("not a JSON frame")
		}
		return []byte(line), nil
	}
	f := strings.SplitN(line, " ", 3)
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	num := func(i int) int64 {
		v, _ := strconv.ParseInt(arg(i), 10, 64)
		return v
	}
	switch f[0] {
	case "/send":
		*n++
		return sparkv1.SendFrame(num(1), arg(2), fmt.Sprintf("cli-%d-%d", now, *n)), nil
	case "/typing":
		return sparkv1.TypingFrame(num(1)), nil
	case "/read":
		return sparkv1.ReadFrame(num(1), num(2)), nil
	case "/ack":
		return sparkv1.AckFrame(num(1)), nil
	}
	return nil, errors.New("commands: /send <conversation> <text>, /typing <conversation>, /read <conversation> <message>, /ack <seq>, or a JSON frame")
}
