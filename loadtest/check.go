package loadtest

// The dating scenario's correctness checker: what the load generator wrote
// (swipes, blocks, messages, profile versions) and, for every response an
// endpoint with a `check:` reads, whether the response is older than a
// write the origin acknowledged before the request was sent.

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Checks an endpoint may name in its `check:` field.
const (
	// CheckDeck reads a suggestions page: no user the caller swiped or is
	// in a block with is suggested; the page becomes the caller's deck.
	CheckDeck = "deck"
	// CheckSwipe records a swipe (the response's target_id).
	CheckSwipe = "swipe"
	// CheckBlock records a block (the path's user id), both ways.
	CheckBlock = "block"
	// CheckProfile reads a profile: its version (from the ETag "u<id>-v<n>")
	// is not older than the last acknowledged update.
	CheckProfile = "profile"
	// CheckProfileUpdate records the version an update acknowledged.
	CheckProfileUpdate = "profile_update"
	// CheckInbox reads a conversation list: each conversation's last
	// message is not older than the newest acknowledged one.
	CheckInbox = "inbox"
	// CheckMessages reads a message list: no acknowledged message that
	// belongs on the page is missing.
	CheckMessages = "messages"
	// CheckSend records a stored message.
	CheckSend = "send"
)

var checkNames = map[string]bool{CheckDeck: true, CheckSwipe: true, CheckBlock: true, CheckProfile: true,
	CheckProfileUpdate: true, CheckInbox: true, CheckMessages: true, CheckSend: true}

// Deck sizes: a refill is due below deckLow cards.
const deckLow = 5

// maxExamples is how many violations a report describes.
const maxExamples = 20

// Ledger is what virtual users wrote and were acknowledged, with when, and
// the cards each holds. It checks responses against it and counts
// violations. Safe for concurrent use.
type Ledger struct {
	mu         sync.Mutex
	excluded   map[int64]map[int64]time.Time // user -> users it may no longer be suggested -> acknowledged at
	profiles   map[int64]ackedVersion
	convs      map[int64][]ackedMessage // newest last
	decks      map[int64]*deck
	checked    int64
	violations map[string]int64 // by check
	examples   []string
}

type ackedVersion struct {
	version int64
	at      time.Time
}

type ackedMessage struct {
	id      int64
	created time.Time
	at      time.Time
}

// deck is the suggestions a virtual user holds and swipes through locally.
type deck struct {
	cards []int64
	seen  map[int64]bool // swiped or blocked (sent or acknowledged): never a card again
	next  string         // the last page's cursor ("" after a page that named none)
}

// maxConvHistory bounds what the ledger keeps per conversation: more than
// any page a scenario asks for.
const maxConvHistory = 200

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{excluded: map[int64]map[int64]time.Time{}, profiles: map[int64]ackedVersion{},
		convs: map[int64][]ackedMessage{}, decks: map[int64]*deck{}, violations: map[string]int64{}}
}

// CheckResult is a ledger's summary for the report.
type CheckResult struct {
	// Checked is the number of responses checked.
	Checked int64 `json:"checked"`
	// Violations is the number of responses older than an acknowledged write.
	Violations int64 `json:"violations"`
	// ByCheck counts violations by check.
	ByCheck map[string]int64 `json:"by_check,omitempty"`
	// Examples describe the first violations.
	Examples []string `json:"examples,omitempty"`
}

// Result returns the counts so far.
func (l *Ledger) Result() *CheckResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &CheckResult{Checked: l.checked, ByCheck: map[string]int64{}, Examples: append([]string(nil), l.examples...)}
	for k, n := range l.violations {
		r.ByCheck[k] = n
		r.Violations += n
	}
	return r
}

func (l *Ledger) violation(check, format string, args ...any) {
	l.violations[check]++
	if len(l.examples) < maxExamples {
		l.examples = append(l.examples, check+": "+fmt.Sprintf(format, args...))
	}
}

func (l *Ledger) deckOf(user int64) *deck {
	d := l.decks[user]
	if d == nil {
		d = &deck{seen: map[int64]bool{}}
		l.decks[user] = d
	}
	return d
}

// observed is one response an endpoint with a check received.
type observed struct {
	user   int64
	req    *http.Request
	sent   time.Time // just before the request went out
	acked  time.Time // once the response was read
	status int
	header http.Header
	body   []byte
}

// Observe checks or records one response (see the Check constants); a
// response that is not a success is ignored.
func (l *Ledger) Observe(check string, o observed) error {
	if o.status/100 != 2 {
		return nil
	}
	switch check {
	case CheckDeck:
		return l.observeDeck(o)
	case CheckSwipe:
		var b struct {
			TargetID int64 `json:"target_id"`
		}
		if err := json.Unmarshal(o.body, &b); err != nil {
			return fmt.Errorf("swipe response: %w", err)
		}
		l.exclude(o.user, b.TargetID, o.acked)
	case CheckBlock:
		id, err := pathID(o.req.URL.Path, blockPath)
		if err != nil {
			return err
		}
		l.exclude(o.user, id, o.acked)
		l.exclude(id, o.user, o.acked)
	case CheckProfile:
		return l.observeProfile(o)
	case CheckProfileUpdate:
		id, v, ok := profileVersion(o.header.Get("ETag"))
		if !ok {
			return fmt.Errorf("profile update: ETag %q is not \"u<id>-v<n>\"", o.header.Get("ETag"))
		}
		l.mu.Lock()
		if cur := l.profiles[id]; v > cur.version {
			l.profiles[id] = ackedVersion{version: v, at: o.acked}
		}
		l.mu.Unlock()
	case CheckSend:
		var m struct {
			ID             int64     `json:"id"`
			ConversationID int64     `json:"conversation_id"`
			CreatedAt      time.Time `json:"created_at"`
		}
		if err := json.Unmarshal(o.body, &m); err != nil {
			return fmt.Errorf("send response: %w", err)
		}
		l.mu.Lock()
		h := append(l.convs[m.ConversationID], ackedMessage{id: m.ID, created: m.CreatedAt, at: o.acked})
		if len(h) > maxConvHistory {
			h = append(h[:0:0], h[len(h)-maxConvHistory/2:]...)
		}
		l.convs[m.ConversationID] = h
		l.mu.Unlock()
	case CheckInbox:
		return l.observeInbox(o)
	case CheckMessages:
		return l.observeMessages(o)
	}
	return nil
}

func (l *Ledger) exclude(user, target int64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.excluded[user]
	if m == nil {
		m = map[int64]time.Time{}
		l.excluded[user] = m
	}
	if _, ok := m[target]; !ok {
		m[target] = at
	}
	l.deckOf(user).seen[target] = true
}

func (l *Ledger) observeDeck(o observed) error {
	var b struct {
		Suggestions []struct {
			ID int64 `json:"id"`
		} `json:"suggestions"`
		Next string `json:"next"`
	}
	if err := json.Unmarshal(o.body, &b); err != nil {
		return fmt.Errorf("suggestions response: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checked++
	ex := l.excluded[o.user]
	d := l.deckOf(o.user)
	cards := make([]int64, 0, len(b.Suggestions))
	for _, s := range b.Suggestions {
		if at, ok := ex[s.ID]; ok && at.Before(o.sent) {
			l.violation(CheckDeck, "user %d was suggested %d, swiped or blocked %s before the request", o.user, s.ID,
				o.sent.Sub(at).Round(time.Millisecond))
		}
		if !d.seen[s.ID] {
			cards = append(cards, s.ID)
		}
	}
	d.cards = cards
	d.next = b.Next
	return nil
}

func (l *Ledger) observeProfile(o observed) error {
	id, v, ok := profileVersion(o.header.Get("ETag"))
	if !ok {
		return fmt.Errorf("profile: ETag %q is not \"u<id>-v<n>\"", o.header.Get("ETag"))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checked++
	if cur, ok := l.profiles[id]; ok && cur.at.Before(o.sent) && v < cur.version {
		l.violation(CheckProfile, "user %d got profile %d version %d; version %d was acknowledged %s before the request (Cache-Status %q)",
			o.user, id, v, cur.version, o.sent.Sub(cur.at).Round(time.Millisecond), o.header.Get("Cache-Status"))
	}
	return nil
}

func (l *Ledger) observeInbox(o observed) error {
	var b struct {
		Conversations []struct {
			ID          int64 `json:"id"`
			LastMessage *struct {
				ID        int64     `json:"id"`
				CreatedAt time.Time `json:"created_at"`
			} `json:"last_message"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(o.body, &b); err != nil {
		return fmt.Errorf("conversations response: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checked++
	for _, c := range b.Conversations {
		newest, ok := newestAcked(l.convs[c.ID], o.sent)
		if !ok {
			continue
		}
		if c.LastMessage == nil || msgBefore(c.LastMessage.CreatedAt, c.LastMessage.ID, newest.created, newest.id) {
			l.violation(CheckInbox, "user %d: conversation %d lists a last message older than %d, acknowledged %s before the request (Cache-Status %q)",
				o.user, c.ID, newest.id, o.sent.Sub(newest.at).Round(time.Millisecond), o.header.Get("Cache-Status"))
		}
	}
	return nil
}

func (l *Ledger) observeMessages(o observed) error {
	conv, err := pathID(o.req.URL.Path, messagesPath)
	if err != nil {
		return err
	}
	q := o.req.URL.Query()
	if q.Get("before") != "" {
		return nil // an older page: what it must hold is not tracked
	}
	limit := 50
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("messages: limit %q: %w", v, err)
		}
	}
	var b struct {
		Messages []struct {
			ID        int64     `json:"id"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(o.body, &b); err != nil {
		return fmt.Errorf("messages response: %w", err)
	}
	have := make(map[int64]bool, len(b.Messages))
	for _, m := range b.Messages {
		have[m.ID] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checked++
	for _, m := range l.convs[conv] {
		if !m.at.Before(o.sent) || have[m.id] {
			continue
		}
		if len(b.Messages) >= limit {
			// A full page holds the newest messages (created_at, id
			// descending): one older than its oldest may be left out.
			last := b.Messages[len(b.Messages)-1]
			if msgBefore(m.created, m.id, last.CreatedAt, last.ID) {
				continue
			}
		}
		l.violation(CheckMessages, "user %d: conversation %d lacks message %d, acknowledged %s before the request (Cache-Status %q)",
			o.user, conv, m.id, o.sent.Sub(m.at).Round(time.Millisecond), o.header.Get("Cache-Status"))
	}
	return nil
}

// newestAcked is the newest message (created_at, id) acknowledged before t.
func newestAcked(h []ackedMessage, t time.Time) (ackedMessage, bool) {
	var best ackedMessage
	found := false
	for _, m := range h {
		if m.at.Before(t) && (!found || msgBefore(best.created, best.id, m.created, m.id)) {
			best, found = m, true
		}
	}
	return best, found
}

// msgBefore orders messages as the origin lists them: by created_at, then id.
func msgBefore(at1 time.Time, id1 int64, at2 time.Time, id2 int64) bool {
	if !at1.Equal(at2) {
		return at1.Before(at2)
	}
	return id1 < id2
}

var (
	etagVersion  = regexp.MustCompile(`u(\d+)-v(\d+)`)
	blockPath    = regexp.MustCompile(`^/api/users/(\d+)/block$`)
	messagesPath = regexp.MustCompile(`^/api/conversations/(\d+)/messages$`)
)

// profileVersion reads the user id and version from a profile's ETag
// ("u42-v7", also when weak or given a content-coding suffix).
func profileVersion(etag string) (id, version int64, ok bool) {
	m := etagVersion.FindStringSubmatch(etag)
	if m == nil {
		return 0, 0, false
	}
	id, err1 := strconv.ParseInt(m[1], 10, 64)
	version, err2 := strconv.ParseInt(m[2], 10, 64)
	return id, version, err1 == nil && err2 == nil
}

func pathID(path string, re *regexp.Regexp) (int64, error) {
	m := re.FindStringSubmatch(path)
	if m == nil {
		return 0, fmt.Errorf("path %q is not like %s", path, re)
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("path %q: %w", path, err)
	}
	return id, nil
}

// The deck, as scenario templates see it.

// DeckLow is "" when the virtual user holds fewer than deckLow cards (a
// refill is due), else ErrSkip: `path: /api/matches/suggestions{{.DeckLow}}`.
func (x Vars) DeckLow() (string, error) {
	if x.ledger == nil {
		return "", fmt.Errorf("deck: %w", ErrSkip)
	}
	x.ledger.mu.Lock()
	defer x.ledger.mu.Unlock()
	if len(x.ledger.deckOf(x.vu.ID).cards) >= deckLow {
		return "", fmt.Errorf("deck holds enough cards: %w", ErrSkip)
	}
	return "", nil
}

// DeckAfter is "&after=<cursor>" of the virtual user's last deck page, so
// a refill is the page after it, as the app pages through its deck; ""
// when there is none (no page yet, or the last one named no next: the
// refill starts from the top again): `?limit=40{{.DeckLow}}{{.DeckAfter}}`.
func (x Vars) DeckAfter() string {
	if x.ledger == nil {
		return ""
	}
	x.ledger.mu.Lock()
	defer x.ledger.mu.Unlock()
	if n := x.ledger.deckOf(x.vu.ID).next; n != "" {
		return "&after=" + url.QueryEscape(n)
	}
	return ""
}

// DeckCard takes the top card of the virtual user's deck (for a swipe), or
// ErrSkip when the deck is empty.
func (x Vars) DeckCard() (string, error) {
	return x.takeCard(func(int64) bool { return true })
}

// BlockCard takes the top card the virtual user could not have matched
// with (neither liked the other by Direction's rule), so a block never
// ends a conversation other flows use; ErrSkip when there is none.
func (x Vars) BlockCard() (string, error) {
	me := x.vu.ID
	return x.takeCard(func(t int64) bool {
		return t != x.Partner() && !(likesByHash(me, t) && likesByHash(t, me))
	})
}

func (x Vars) takeCard(ok func(int64) bool) (string, error) {
	if x.ledger == nil {
		return "", fmt.Errorf("deck: %w", ErrSkip)
	}
	x.ledger.mu.Lock()
	defer x.ledger.mu.Unlock()
	d := x.ledger.deckOf(x.vu.ID)
	for i, c := range d.cards {
		if ok(c) {
			d.cards = append(d.cards[:i], d.cards[i+1:]...)
			d.seen[c] = true
			return strconv.FormatInt(c, 10), nil
		}
	}
	return "", fmt.Errorf("deck empty: %w", ErrSkip)
}

// DeckPeek is a card in the virtual user's deck, left there (to open the
// full profile), or ErrSkip when the deck is empty.
func (x Vars) DeckPeek() (string, error) {
	if x.ledger == nil {
		return "", fmt.Errorf("deck: %w", ErrSkip)
	}
	x.ledger.mu.Lock()
	defer x.ledger.mu.Unlock()
	d := x.ledger.deckOf(x.vu.ID)
	if len(d.cards) == 0 {
		return "", fmt.Errorf("deck empty: %w", ErrSkip)
	}
	return strconv.FormatInt(d.cards[rand.IntN(len(d.cards))], 10), nil
}

// likesByHash is Direction's rule for users other than the partner.
func likesByHash(from, to int64) bool {
	h := fnv.New32a()
	_, _ = fmt.Fprintf(h, "%d>%d", from, to)
	return h.Sum32()%3 == 0
}

// validCheck reports whether name is a known check ("" is none).
func validCheck(name string) bool { return name == "" || checkNames[name] }

// checkList names the known checks, for errors.
func checkList() string {
	out := make([]string, 0, len(checkNames))
	for k := range checkNames {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// hasChecks reports whether any endpoint (setup included) has a check.
func (s *Scenario) hasChecks() bool {
	for _, ep := range s.Endpoints {
		if ep.Check != "" {
			return true
		}
	}
	for _, ep := range s.Setup {
		if ep.Check != "" {
			return true
		}
	}
	return false
}
