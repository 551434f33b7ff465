package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// ErrSkip is returned by a template when the virtual user has nothing to
// send yet (e.g. {{.Pick "suggested"}} before any suggestions arrived); the
// step is counted as skipped, not as an error.
var ErrSkip = errors.New("nothing to send yet")

// Vars is the data scenario templates run against: {{.Me}}, {{.Popular}},
// {{.Pick "suggested"}}, {{.Direction $t}} and so on.
type Vars struct {
	vu     *VU
	zipf   *Zipf
	ledger *Ledger // the run's checker: the deck; nil when probing
}

// Me is the virtual user's id.
func (x Vars) Me() int64 { return x.vu.ID }

// Partner is the virtual user paired with this one (1<->2, 3<->4, ...);
// setup can make them match so every user has a conversation.
func (x Vars) Partner() int64 {
	id := x.vu.ID
	if id%2 == 1 {
		if id+1 > x.vu.users {
			return id - 1
		}
		return id + 1
	}
	return id - 1
}

// Popular is a user id drawn from the scenario's Zipf popularity: a few
// profiles get most of the views.
func (x Vars) Popular() int64 {
	if x.zipf == nil {
		return 1
	}
	return x.zipf.Sample(rand.Float64())
}

// PopularMod is a Zipf-popular id folded into 1..n, for smaller catalogues
// (e.g. blobs) that share the users' popularity skew.
func (x Vars) PopularMod(n int64) int64 {
	if n < 1 {
		return 1
	}
	return (x.Popular()-1)%n + 1
}

// RandomUser is a uniformly drawn user id other than Me.
func (x Vars) RandomUser() int64 {
	n := x.vu.users
	if n < 2 {
		return 1
	}
	for {
		if id := 1 + rand.Int64N(n); id != x.vu.ID {
			return id
		}
	}
}

// Pick returns a random value captured under name, or ErrSkip when none.
func (x Vars) Pick(name string) (string, error) {
	vs := x.vu.Get(name)
	if len(vs) == 0 {
		return "", fmt.Errorf("pick %q: %w", name, ErrSkip)
	}
	return vs[rand.IntN(len(vs))], nil
}

// PickPath is Pick among the captured values that are paths ("/..."),
// e.g. a profile's uploaded photos among absolute photo URLs.
func (x Vars) PickPath(name string) (string, error) {
	var paths []string
	for _, v := range x.vu.Get(name) {
		if strings.HasPrefix(v, "/") {
			paths = append(paths, v)
		}
	}
	if len(paths) == 0 {
		return "", fmt.Errorf("pick path %q: %w", name, ErrSkip)
	}
	return paths[rand.IntN(len(paths))], nil
}

// Direction is "like" or "pass" for a swipe on target: fixed per pair, so a
// repeated swipe never contradicts an earlier one, liking about a third; the
// partner is always liked.
func (x Vars) Direction(target string) string {
	if t, err := strconv.ParseInt(target, 10, 64); err == nil && t == x.Partner() {
		return "like"
	}
	h := fnv.New32a()
	_, _ = fmt.Fprintf(h, "%d>%s", x.vu.ID, target)
	if h.Sum32()%3 == 0 {
		return "like"
	}
	return "pass"
}

// Lat is a latitude a few kilometres around the user's home city.
func (x Vars) Lat() string {
	return strconv.FormatFloat(x.vu.home.lat+(rand.Float64()-0.5)*0.05, 'f', 5, 64)
}

// Lng is a longitude a few kilometres around the user's home city.
func (x Vars) Lng() string {
	return strconv.FormatFloat(x.vu.home.lng+(rand.Float64()-0.5)*0.05, 'f', 5, 64)
}

// Choice returns one of its arguments at random.
func (x Vars) Choice(options ...string) string {
	if len(options) == 0 {
		return ""
	}
	return options[rand.IntN(len(options))]
}

// Chance is true with probability p.
func (x Vars) Chance(p float64) bool { return rand.Float64() < p }

// Seq is a per-user increasing number, for idempotency keys.
func (x Vars) Seq() int64 { return x.vu.seq.Add(1) }

// ClientMsgID is a unique client message id.
func (x Vars) ClientMsgID() string {
	return fmt.Sprintf("lt-%d-%d-%08x", x.vu.ID, x.vu.seq.Add(1), rand.Uint32())
}

var chatLines = []string{"hey! how's your week going?", "that hike looks amazing", "coffee on saturday?",
	"haha yes, same", "what are you reading at the moment?", "I know a great ramen place", "see you there :)"}

// Text is a short chat message.
func (x Vars) Text() string { return x.Choice(chatLines...) }

// probeVars returns Vars for validating templates at parse time.
func probeVars() Vars {
	return Vars{vu: NewVU(1, "probe", 2), zipf: NewZipf(2, 1.1)}
}

// Zipf samples user ids 1..n with probability proportional to 1/rank^s; rank
// r maps to a fixed, scattered id so popular users are not just the low ids.
type Zipf struct {
	cdf []float64
	n   int64
	m   int64 // multiplier coprime with n: scatters ranks over ids
}

// NewZipf precomputes the distribution over n ids with exponent s.
func NewZipf(n int, s float64) *Zipf {
	if n < 1 {
		n = 1
	}
	cdf := make([]float64, n)
	var sum float64
	for i := range cdf {
		sum += 1 / math.Pow(float64(i+1), s)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	m := int64(7919)
	for gcd(m, int64(n)) != 1 {
		m++
	}
	return &Zipf{cdf: cdf, n: int64(n), m: m}
}

// Rank returns the 0-based popularity rank for a uniform u in [0,1).
func (z *Zipf) Rank(u float64) int {
	r := sort.SearchFloat64s(z.cdf, u)
	if r >= len(z.cdf) {
		r = len(z.cdf) - 1
	}
	return r
}

// Sample returns the user id for a uniform u in [0,1).
func (z *Zipf) Sample(u float64) int64 {
	return (int64(z.Rank(u))*z.m)%z.n + 1
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// extract returns the values at a path like "suggestions[].id" in a JSON
// document, as strings.
func extract(body []byte, path string) ([]string, error) {
	var doc any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("capture %s: response is not JSON: %w", path, err)
	}
	cur := []any{doc}
	for _, seg := range strings.Split(path, ".") {
		arr := strings.HasSuffix(seg, "[]")
		key := strings.TrimSuffix(seg, "[]")
		var next []any
		for _, c := range cur {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			v, ok := m[key]
			if !ok || v == nil {
				continue
			}
			if arr {
				if a, ok := v.([]any); ok {
					next = append(next, a...)
				}
				continue
			}
			next = append(next, v)
		}
		cur = next
	}
	out := make([]string, 0, len(cur))
	for _, c := range cur {
		switch v := c.(type) {
		case string:
			out = append(out, v)
		case json.Number:
			out = append(out, v.String())
		case bool:
			out = append(out, strconv.FormatBool(v))
		}
	}
	return out, nil
}
