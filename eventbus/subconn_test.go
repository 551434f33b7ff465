package eventbus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spark-edge/spark/internal/testredis"
)

// push is a reply as a node sends it: an array of bulk strings.
func push(args ...string) []byte { return testredis.EncodeCommand(args) }

// readerConn is a subConn that reads from a byte stream and records what
// it delivers.
func readerConn(sharded bool) (*subConn, *[]Message) {
	var got []Message
	return &subConn{
		addr: "test", sharded: sharded, names: newNaming("spark:"),
		handler: func(m Message) { got = append(got, m) },
		pings:   make(map[uint64]chan struct{}), unsubbing: make(map[string]int),
	}, &got
}

// confirm is a (un)subscribe confirmation: kind, channel, count.
func confirm(kind, ch string) []byte {
	return fmt.Appendf(nil, "*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n:1\r\n", len(kind), kind, len(ch), ch)
}

func readAll(c *subConn, stream []byte) error {
	return c.read(respReader{bufio.NewReaderSize(bytes.NewReader(stream), 64<<10)})
}

func TestSubConnRead(t *testing.T) {
	c, got := readerConn(false)
	barrier := make(chan struct{})
	c.pings[1] = barrier
	big := bytes.Repeat([]byte("x"), 100<<10) // longer than the read buffer
	env := func(seq int64, p []byte) string { return string(appendEnvelope(nil, Message{Seq: seq, Payload: p})) }
	var stream []byte
	for _, b := range [][]byte{
		confirm("subscribe", "spark:u:5"),
		push("message", "spark:u:5", env(1, []byte(`{"a":1}`))),
		push("message", "other:u:5", env(2, nil)),           // not our prefix
		push("message", "spark:u:5", "\x07not an envelope"), // not our format
		push("pong", "1"),
		push("pong", ""), // a health check's
		push("message", "spark:u:6", env(0, big)),
		push("message", "spark:u:8", strings.Repeat("z", maxBulk+1)), // dropped unread
		push("smessage", "spark:u:7", env(3, []byte(`"s"`))),
		[]byte("+OK\r\n:12\r\n$-1\r\n*-1\r\n*0\r\n"),
		push("psubscribe", "x", "y"),
	} {
		stream = append(stream, b...)
	}
	if err := readAll(c, stream); !errors.Is(err, io.EOF) {
		t.Fatalf("read ended with %v, want EOF", err)
	}
	select {
	case <-barrier:
	default:
		t.Fatal("the PONG did not release its barrier")
	}
	want := []Message{{5, 1, []byte(`{"a":1}`)}, {6, 0, big}, {7, 3, []byte(`"s"`)}}
	if len(*got) != len(want) {
		t.Fatalf("delivered %d messages, want %d", len(*got), len(want))
	}
	for i, m := range *got {
		if m.UserID != want[i].UserID || m.Seq != want[i].Seq || !bytes.Equal(m.Payload, want[i].Payload) {
			t.Fatalf("message %d: {%d %d %.20q}, want {%d %d %.20q}", i, m.UserID, m.Seq, m.Payload, want[i].UserID, want[i].Seq, want[i].Payload)
		}
	}
}

func TestSubConnReadErrors(t *testing.T) {
	c, _ := readerConn(false)
	if err := readAll(c, []byte("-MOVED 1234 127.0.0.1:7000\r\n")); err == nil || !strings.Contains(err.Error(), "MOVED") {
		t.Fatalf("error reply: %v", err)
	}
	c, _ = readerConn(true)
	c.unsubbing["spark:u:1"] = 1
	if err := readAll(c, confirm("sunsubscribe", "spark:u:1")); !errors.Is(err, io.EOF) {
		t.Fatalf("the answer to our SUNSUBSCRIBE: %v", err)
	}
	if err := readAll(c, confirm("sunsubscribe", "spark:u:1")); !errors.Is(err, errSlotMoved) {
		t.Fatalf("an SUNSUBSCRIBE we did not ask for: %v, want errSlotMoved", err)
	}
}

// The subscriber's read path allocates once per message: the payload the
// handler keeps.
func TestSubConnReadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	const n = 1000
	payload := bytes.Repeat([]byte("p"), 150)
	var stream []byte
	for i := range n {
		stream = append(stream, push("message", "spark:u:42", string(appendEnvelope(nil, Message{Seq: int64(i + 1), Payload: payload})))...)
	}
	c, got := readerConn(false)
	r := bufio.NewReaderSize(nil, 64<<10)
	allocs := testing.AllocsPerRun(5, func() {
		*got = (*got)[:0]
		r.Reset(bytes.NewReader(stream))
		if err := c.read(respReader{r}); !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	})
	if len(*got) != n {
		t.Fatalf("%d messages delivered, want %d", len(*got), n)
	}
	if per := allocs / n; per > 1.01 {
		t.Fatalf("%.2f allocations per message, want 1", per)
	}
}

// FuzzSubConnRead: whatever a node sends, the reader returns an error
// instead of panicking, and delivers only our users' messages.
func FuzzSubConnRead(f *testing.F) {
	f.Add(push("message", "spark:u:5", "\x01\x05{}"))
	f.Add(push("pong", "1"))
	f.Add([]byte("*3\r\n$7\r\nmessage\r\n$9999\r\nx"))
	f.Add([]byte("*2\r\n*1\r\n$1\r\na\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, got := readerConn(true)
		if err := readAll(c, b); err == nil {
			t.Fatal("read of a finite stream ended without an error")
		}
		for _, m := range *got {
			if m.UserID <= 0 || m.Seq < 0 {
				t.Fatalf("delivered %+v", m)
			}
		}
	})
}
