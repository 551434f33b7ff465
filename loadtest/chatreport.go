package loadtest

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ChatReport is what the chat scenario (package loadtest/chat) measured
// beyond the REST calls: delivery over spark.v1 WebSockets and the ledger of
// every message.
type ChatReport struct {
	Edges        []string `json:"edges"`         // edges the connections were spread over (round robin)
	Connections  int      `json:"connections"`   // WebSocket users (two per pair)
	PairsSkipped int      `json:"pairs_skipped"` // candidate pairs that could not be matched (replaced by the next ids)
	MessageRate  float64  `json:"message_rate"`  // planned messages per second (all users)
	TypingRate   float64  `json:"typing_rate"`   // planned typing indicators per second
	RESTRate     float64  `json:"rest_rate"`     // planned REST calls per second
	DropShare    float64  `json:"drop_share"`    // share of connections dropped mid-run
	DrainS       float64  `json:"drain_s"`       // time the drain took (s)

	// The ledger: every message by its client_msg_id.
	Messages MessageLedger `json:"messages"`
	// Delivery is send → receive at the recipient, every message; Live
	// leaves out those whose sender or recipient was dropped in between
	// (they wait for the resume).
	Delivery            Latency    `json:"delivery"`
	DeliveryLive        Latency    `json:"delivery_live"`
	DeliveryPercentiles []Quantile `json:"delivery_percentiles"`
	// Stored is send → the sent frame (stored durably at the origin).
	Stored Latency `json:"stored"`

	Typing TypingCounts `json:"typing"`

	Dials         int64            `json:"dials"`          // connections opened (first ones and resumes)
	DialErrors    int64            `json:"dial_errors"`    // failed dials (retried)
	Drops         int64            `json:"drops"`          // connections dropped on purpose
	Resumes       int64            `json:"resumes"`        // reconnections with since (drops and server closes)
	ServerCloses  map[string]int64 `json:"server_closes"`  // connections the server ended, by close code (0: no close frame)
	ErrorFrames   map[string]int64 `json:"error_frames"`   // error frames by code
	ReplayedSeqs  int64            `json:"replayed_seqs"`  // events with a seq at or below one already processed (protocol breach)
	Resyncs       int64            `json:"resyncs"`        // resync frames
	ForeignEvents int64            `json:"foreign_events"` // events from before the run (since=0 replays)
}

// MessageLedger counts every message: exactly once is Received == Stored
// with Lost, Duplicated and Misdelivered zero.
type MessageLedger struct {
	Sent     int64 `json:"sent"`     // distinct messages sent (client_msg_id)
	Resent   int64 `json:"resent"`   // send frames repeated after a drop or an error (same client_msg_id)
	Stored   int64 `json:"stored"`   // confirmed stored (sent frame) or seen by the recipient
	Received int64 `json:"received"` // distinct messages the recipient got
	Lost     int64 `json:"lost"`     // stored, never received by the end of the drain, the recipient connected
	// RecipientOffline: stored, not received, the recipient not connected at
	// the end (its resume failed): in its log, not counted lost.
	RecipientOffline int64 `json:"recipient_offline"`
	Duplicated       int64 `json:"duplicated"`   // deliveries beyond the first
	Misdelivered     int64 `json:"misdelivered"` // deliveries to a user who is not the recipient
	Unconfirmed      int64 `json:"unconfirmed"`  // sent, never confirmed stored nor received
}

// TypingCounts are the typing indicators: ephemeral, so a missing one is
// counted, not an error.
type TypingCounts struct {
	Sent         int64      `json:"sent"`
	Received     int64      `json:"received"`
	Misdelivered int64      `json:"misdelivered"` // to a user who is not the typer's peer
	Latency      Latency    `json:"latency"`      // typing sent → received by the peer
	Percentiles  []Quantile `json:"percentiles"`
}

// ChatTargets are the goals of the chat scenario.
type ChatTargets struct {
	// DeliveryP99 is the highest acceptable send → receive P99.
	DeliveryP99 time.Duration
	// TypingP99 is the highest acceptable typing P99 (judged when typing
	// was sent).
	TypingP99 time.Duration
	// RESTErrors is the highest acceptable share of failed REST calls.
	RESTErrors float64
}

// DefaultChatTargets are issue 12's: P99 send → receive ≤ 50 ms, typing
// fan-out ≤ 5 ms, and the plan's < 0.1% errors.
func DefaultChatTargets() ChatTargets {
	return ChatTargets{DeliveryP99: 50 * time.Millisecond, TypingP99: 5 * time.Millisecond, RESTErrors: 0.001}
}

// LatencyOf summarises a histogram of microseconds.
func LatencyOf(h *hdrhistogram.Histogram) Latency { return latencyOf(h) }

// Spectrum samples a histogram of microseconds for the percentile plot.
func Spectrum(h *hdrhistogram.Histogram) []Quantile { return spectrum(h) }

// NewHistogram returns a histogram of microseconds with the report's range
// and precision.
func NewHistogram() *hdrhistogram.Histogram { return newHist() }

// NewChatReport is NewReport for the chat scenario: the REST calls' tables
// from res, the chat figures, and verdicts on delivery instead of the cache.
func NewChatReport(res *Result, chat *ChatReport, t ChatTargets) *Report {
	rep := NewReport(res, DefaultTargets())
	rep.Chat = chat
	rep.Targets = Targets{}
	rep.Verdicts, rep.Pass = chatVerdicts(rep, t)
	return rep
}

func chatVerdicts(r *Report, t ChatTargets) ([]Verdict, bool) {
	b := func(v bool) *bool { return &v }
	c := r.Chat
	m := c.Messages
	vs := []Verdict{
		{Name: "P99 send→receive", Target: "≤ " + fmtDur(t.DeliveryP99), Actual: fmtMs(c.Delivery.P99),
			Pass: b(m.Received > 0 && c.Delivery.P99 <= float64(t.DeliveryP99)/float64(time.Millisecond))},
		{Name: "Lost messages", Target: "0", Actual: fmt.Sprint(m.Lost), Pass: b(m.Lost == 0)},
		{Name: "Duplicated messages", Target: "0", Actual: fmt.Sprint(m.Duplicated), Pass: b(m.Duplicated == 0)},
		{Name: "Misdelivered", Target: "0", Actual: fmt.Sprint(m.Misdelivered + c.Typing.Misdelivered), Pass: b(m.Misdelivered+c.Typing.Misdelivered == 0)},
		{Name: "Unconfirmed sends", Target: "0", Actual: fmt.Sprint(m.Unconfirmed), Pass: b(m.Unconfirmed == 0)},
	}
	if c.Typing.Sent > 0 {
		vs = append(vs, Verdict{Name: "P99 typing", Target: "≤ " + fmtDur(t.TypingP99), Actual: fmtMs(c.Typing.Latency.P99),
			Pass: b(c.Typing.Received > 0 && c.Typing.Latency.P99 <= float64(t.TypingP99)/float64(time.Millisecond))})
	}
	if r.Requests > 0 {
		vs = append(vs, Verdict{Name: "REST errors", Target: fmt.Sprintf("< %.2g%%", 100*t.RESTErrors), Actual: fmt.Sprintf("%.3f%%", 100*r.ErrorRate),
			Pass: b(r.ErrorRate < t.RESTErrors)})
	}
	pass := true
	for _, v := range vs {
		if v.Pass != nil && !*v.Pass {
			pass = false
		}
	}
	return vs, pass
}

// writeChatText writes the chat section of the text report.
func (c *ChatReport) writeText(b *strings.Builder) error {
	fmt.Fprintf(b, "\nchat: %d connections over %d edges (%s), %.0f msg/s, %.0f typing/s, %.0f REST/s, %.0f%% dropped and resumed",
		c.Connections, len(c.Edges), strings.Join(c.Edges, " "), c.MessageRate, c.TypingRate, c.RESTRate, 100*c.DropShare)
	if c.PairsSkipped > 0 {
		fmt.Fprintf(b, ", %d candidate pairs skipped (replaced)", c.PairsSkipped)
	}
	m := c.Messages
	fmt.Fprintf(b, "\nmessages: %d sent (%d resent), %d stored, %d received; lost %d, duplicated %d, misdelivered %d, unconfirmed %d, recipient offline %d (drain %.1fs)\n",
		m.Sent, m.Resent, m.Stored, m.Received, m.Lost, m.Duplicated, m.Misdelivered, m.Unconfirmed, m.RecipientOffline, c.DrainS)
	fmt.Fprintf(b, "typing: %d sent, %d received, misdelivered %d\n", c.Typing.Sent, c.Typing.Received, c.Typing.Misdelivered)
	fmt.Fprintf(b, "connections: %d dials (%d failed), %d dropped, %d resumes, server closes %s, error frames %s, replayed seqs %d, resyncs %d\n\n",
		c.Dials, c.DialErrors, c.Drops, c.Resumes, orNone(countsText(c.ServerCloses)), orNone(countsText(c.ErrorFrames)), c.ReplayedSeqs, c.Resyncs)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency\tp50\tp95\tp99\tp99.9\tmax\t")
	for _, l := range []struct {
		name string
		l    Latency
	}{{"send→receive", c.Delivery}, {"  without drops", c.DeliveryLive}, {"send→stored", c.Stored}, {"typing", c.Typing.Latency}} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", l.name, fmtMs(l.l.P50), fmtMs(l.l.P95), fmtMs(l.l.P99), fmtMs(l.l.P999), fmtMs(l.l.Max))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("chat table: %w", err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
