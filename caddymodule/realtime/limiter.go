package realtime

import "time"

// limiter is a connection's inbound rate limit: a token bucket (rate
// frames a second, burst at once) and a flood meter. A frame the bucket
// refuses gets an error frame; refusals fill the meter, which drains at
// half the rate: once it holds more than burst, the client kept sending
// above its rate and the connection is closed (1008). Only the reader uses
// it: no lock.
type limiter struct {
	rate, burst float64
	tokens      float64
	refused     float64
	last        time.Time
}

func (l *limiter) init(rate, burst float64, now time.Time) {
	l.rate, l.burst, l.tokens, l.last = rate, burst, burst, now
}

// allow takes a token for a frame at now. It reports whether the frame
// may be handled and, when not, whether the client is flooding.
func (l *limiter) allow(now time.Time) (ok, flood bool) {
	elapsed := now.Sub(l.last).Seconds()
	if elapsed > 0 {
		l.tokens = min(l.burst, l.tokens+elapsed*l.rate)
		l.refused = max(0, l.refused-elapsed*l.rate/2)
		l.last = now
	}
	if l.tokens >= 1 {
		l.tokens--
		return true, false
	}
	l.refused++
	return false, l.refused > l.burst
}
