package realtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/gorilla/websocket"
	"github.com/spf13/cobra"

	"github.com/spark-edge/spark/internal/authtoken"
)

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
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(runClient)
		},
	})
}

// runClient is `spark realtime`.
func runClient(fl caddycmd.Flags) (int, error) {
	tok := fl.String("token")
	if tok == "" {
		tok = os.Getenv("SPARK_TOKEN")
	}
	if tok == "" {
		user := int64(fl.Int("user"))
		if user <= 0 {
			return exitFailure, errors.New("--user or --token is required")
		}
		secret := os.Getenv("SPARK_JWT_SECRET")
		if secret == "" {
			secret = authtoken.DevSecret
		}
		var err error
		if tok, err = authtoken.Issue([]byte(secret), user, authtoken.IssueOptions{TTL: time.Hour}); err != nil {
			return exitFailure, err
		}
	}
	u := "ws" + strings.TrimPrefix(strings.TrimRight(fl.String("edge"), "/"), "http") + "/api/realtime"
	if s := fl.String("since"); s != "" {
		u += "?since=" + s
	}
	hdr := http.Header{"Authorization": {"Bearer " + tok}, "Sec-WebSocket-Protocol": {Subprotocol}}
	ws, res, err := websocket.DefaultDialer.Dial(u, hdr)
	if err != nil {
		if res != nil {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
			return exitFailure, fmt.Errorf("connect %s: %s %s", u, res.Status, body)
		}
		return exitFailure, fmt.Errorf("connect %s: %w", u, err)
	}
	defer ws.Close()
	fmt.Fprintf(os.Stderr, "connected to %s (%s); type /send <conversation> <text>\n", u, ws.Subprotocol())
	go sendLines(ws, os.Stdin)
	return printFrames(ws, os.Stdout)
}

// exitFailure is the exit status of a failed command.
const exitFailure = 1

// printFrames prints the server's frames, one a line, acking events.
func printFrames(ws *websocket.Conn, out io.Writer) (int, error) {
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				fmt.Fprintf(out, "closed: %d %s\n", ce.Code, ce.Text)
				return 0, nil
			}
			return exitFailure, err
		}
		frames, err := decodeServerMessage(msg)
		var last int64
		for _, f := range frames {
			line, _ := json.Marshal(f)
			fmt.Fprintln(out, string(line))
			if ev, err := decodeEvent(f.Event); f.Type == typeEvent && err == nil {
				last = ev.Seq
			}
		}
		if err != nil {
			fmt.Fprintf(out, "undecodable: %v\n", err)
		}
		if last > 0 {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ack","seq":`+strconv.FormatInt(last, 10)+`}`))
		}
	}
}

// sendLines turns typed lines into frames.
func sendLines(ws *websocket.Conn, in io.Reader) {
	sc := bufio.NewScanner(in)
	n := 0
	for sc.Scan() {
		frame, err := lineFrame(sc.Text(), time.Now().UnixNano(), &n)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			continue
		}
		if frame != nil && ws.WriteMessage(websocket.TextMessage, frame) != nil {
			return
		}
	}
}

// lineFrame makes the frame a typed line asks for (nil: nothing).
func lineFrame(line string, now int64, n *int) ([]byte, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, nil
	}
	if strings.HasPrefix(line, "{") {
		return []byte(line), nil
	}
	f := strings.SplitN(line, " ", 3)
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	m := map[string]any{}
	switch f[0] {
	case "/send":
		*n++
		m = map[string]any{"type": typeSend, "conversation_id": atoi(arg(1)), "body": arg(2), "client_msg_id": fmt.Sprintf("cli-%d-%d", now, *n)}
	case "/typing":
		m = map[string]any{"type": typeTyping, "conversation_id": atoi(arg(1))}
	case "/read":
		m = map[string]any{"type": typeRead, "conversation_id": atoi(arg(1)), "message_id": atoi(arg(2))}
	case "/ack":
		m = map[string]any{"type": typeAck, "seq": atoi(arg(1))}
	default:
		return nil, errors.New("commands: /send <conversation> <text>, /typing <conversation>, /read <conversation> <message>, /ack <seq>, or a JSON frame")
	}
	return json.Marshal(m)
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
