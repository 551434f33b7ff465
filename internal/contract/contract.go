// Package contract is the HTTP header contract between Spark's edges and its
// origin (ARCHITECTURE.md, "The edge <-> origin contract"): the field names,
// the cache tags both sides build, how a tag list is split, and the two
// pieces of RFC 9110 both sides evaluate (entity-tag lists and quality
// values). It is a leaf: it imports neither Caddy nor the origin, so the
// edge and the origin cannot drift apart on a spelling.
package contract

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header fields of the contract.
const (
	// CacheTags on an origin response lists the tags the edge indexes the
	// stored entry under. Never forwarded to clients.
	CacheTags = "Cache-Tags"
	// SparkPurge on any origin response lists tags whose entries every
	// edge removes. Never forwarded to clients.
	SparkPurge = "Spark-Purge"
	// DenyUsers on a shared origin response lists the user ids an edge must
	// never serve the stored response to. Never forwarded to clients.
	DenyUsers = "Spark-Deny-Users"
	// CacheStatus is RFC 9211's field the edge adds to every response its
	// cache handled.
	CacheStatus = "Cache-Status"
	// ImageVariant carries the normalized photo variant a request gets
	// (spark_image_hints sets it, spark_cache keys on it, spark_image
	// makes it).
	ImageVariant = "Spark-Image-Variant"
	// DeckPhotos on the origin's suggestions lists the photo paths of the
	// deck's first cards, in deck order (the first upload of each card
	// that has one), space-separated, at most MaxDeckPhotos: what the
	// edge's spark_deck_hints announces in 103 Early Hints and warms. The
	// edge stores it with the response (hits announce too) and never
	// forwards it to clients.
	DeckPhotos = "Spark-Deck-Photos"
	// DeckCards on the origin's suggestions lists the user ids of the
	// deck's cards, in deck order, space-separated, at most MaxDeckCards:
	// the profiles the edge's spark_deck_hints warms as the deck's viewer
	// before the app opens them. Stored with the response, never
	// forwarded to clients.
	DeckCards = "Spark-Deck-Cards"
	// DeckNext on the origin's suggestions is the cursor of the page
	// after this one (its ?after= value), when the page was full: the
	// edge's spark_deck_hints warms that page as the deck's viewer. Stored
	// with the response, never forwarded to clients.
	DeckNext = "Spark-Deck-Next"
	// SparkRefresh on a successful write's origin response lists paths
	// (with their query) of the writer's own per-user answers the write
	// changed and the writer reads next: after applying the write's
	// Spark-Purge, an edge fetches them again with the writer's request
	// (its credential), so the next read is a hit. Comma-separated, at most
	// MaxRefreshPaths. Never forwarded to clients.
	SparkRefresh = "Spark-Refresh"
	// ReadAfter is the origin's read-your-writes position, a PostgreSQL
	// WAL position ("16/B374D848"). On a response to a request that wrote,
	// it is the write's position; a client sends the last one it got on
	// its following requests, and the origin that answers them (whichever
	// of several) reads from a replica only once the replica has replayed
	// that far. Edges pass it both ways untouched.
	ReadAfter = "Spark-Read-After"
	// ReadAt on an origin response says its data was read from a replica
	// that had replayed the primary's history up to this WAL position (at
	// least); absent, the primary answered. An edge that heard a purge of
	// one of the response's tags at a later position (the purging write's
	// ReadAfter) does not store or serve it: it asks again with ReadAfter
	// set to that position. Never forwarded to clients.
	ReadAt = "Spark-Read-At"
)

// MaxRefreshPaths is the most paths an edge takes from one SparkRefresh
// field.
const MaxRefreshPaths = 4

// MaxDeckPhotos is the most photo paths a DeckPhotos field lists.
const MaxDeckPhotos = 10

// MaxDeckCards is the most user ids a DeckCards field lists (the largest
// suggestions page).
const MaxDeckCards = 100

// MaxDenyUsers is the most user ids a DenyUsers field may list; an origin
// with more sends the response private instead.
const MaxDenyUsers = 256

// Tag kinds. A tag is kind + ":" + value.
const (
	kindUser        = "user:"
	kindProfile     = "profile:"
	kindSuggestions = "suggestions:"
	kindDeckCard    = "deck:"
	kindMatches     = "matches:"
	kindPhoto       = "photo:"
	kindInbox       = "conversations:"
	kindChat        = "conversation:"
)

// UserTag is on every response about user id (its profile, its photos).
func UserTag(id int64) string { return kindUser + strconv.FormatInt(id, 10) }

// ProfileTag is on user id's shared profile.
func ProfileTag(id int64) string { return kindProfile + strconv.FormatInt(id, 10) }

// SuggestionsTag is on user id's suggestions.
func SuggestionsTag(id int64) string { return kindSuggestions + strconv.FormatInt(id, 10) }

// DeckCardTag is on each page of viewer's suggestions that holds card:
// the viewer's swipe on card purges the pages it is on, and only those.
func DeckCardTag(viewer, card int64) string {
	return kindDeckCard + strconv.FormatInt(viewer, 10) + "-" + strconv.FormatInt(card, 10)
}

// MatchesTag is on user id's match list.
func MatchesTag(id int64) string { return kindMatches + strconv.FormatInt(id, 10) }

// ConversationsTag is on user id's conversation list (its inbox: last
// messages and unread counts).
func ConversationsTag(id int64) string { return kindInbox + strconv.FormatInt(id, 10) }

// ConversationTag is on every member's message list of conversation id.
func ConversationTag(id int64) string { return kindChat + strconv.FormatInt(id, 10) }

// PhotoTag is on every variant of a photo and on its original: name is the
// photo's path below the users' photo root ("42/photos/<file>", what
// spark_image's upstream is asked for after strip_prefix /api/users). The
// origin purges all variants at every edge with it.
func PhotoTag(name string) string { return kindPhoto + EscapeTagValue(name) }

// EscapeTagValue makes s safe as a tag's value: the tag separators (space,
// comma), '%' itself, and bytes outside visible ASCII are percent-encoded,
// so a value never splits into two tags and two values never meet in one.
// It is the one escaping rule of every tag constructor.
func EscapeTagValue(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if tagEscaped(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tagEscaped(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func tagEscaped(c byte) bool { return c <= ' ' || c == ',' || c == '%' || c >= 0x7f }

// JoinTags is a field value listing tags (space-separated).
func JoinTags(tags ...string) string { return strings.Join(tags, " ") }

// AppendTags appends the tags a CacheTags, SparkPurge or DenyUsers field
// lists — its values split on spaces, tabs and commas, empty ones dropped —
// to dst.
func AppendTags(dst []string, values []string) []string {
	for _, v := range values {
		for v != "" {
			i := strings.IndexAny(v, " \t,")
			if i < 0 {
				dst = append(dst, v)
				break
			}
			if i > 0 {
				dst = append(dst, v[:i])
			}
			v = v[i+1:]
		}
	}
	return dst
}

// MatchETagList evaluates an If-None-Match field against the entity tag of
// the current representation with the weak comparison RFC 9110 §13.1.2 asks
// for: "*" matches any, W/"x" equals "x". A malformed member matches
// nothing; an empty etag matches nothing but "*".
func MatchETagList(field, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for field != "" {
		var member string
		member, field, _ = strings.Cut(field, ",")
		member = strings.TrimSpace(member)
		if member == "*" {
			return true
		}
		member = strings.TrimPrefix(member, "W/")
		if etag != "" && len(member) >= 2 && member[0] == '"' && member[len(member)-1] == '"' && member == etag {
			return true
		}
	}
	return false
}

// QValue returns the weight a list member's parameters give it (RFC 9110
// §12.4.2: "q=" with at most three decimals, 0 to 1): params is what follows
// the member's first ';' ("q=0.5;x=1"). No q parameter weighs 1; a
// malformed one weighs 0, so a member whose weight cannot be read is never
// chosen.
func QValue(params string) float64 {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, ok := parseQ(strings.TrimSpace(v))
		if !ok {
			return 0
		}
		return q
	}
	return 1
}

// parseQ reads qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
func parseQ(v string) (float64, bool) {
	if v == "" || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
		return 0, false
	}
	if len(v) == 1 {
		return float64(v[0] - '0'), true
	}
	if v[1] != '.' {
		return 0, false
	}
	frac := 0
	scale := 1000
	for _, c := range v[2:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		scale /= 10
		frac += int(c-'0') * scale
	}
	if v[0] == '1' {
		return 1, frac == 0
	}
	return float64(frac) / 1000, true
}

// IsCacheHit reports whether a CacheStatus value says the edge's cache
// answered: one of its ';'-separated parameters is "hit".
func IsCacheHit(cacheStatus string) bool {
	for cacheStatus != "" {
		var p string
		p, cacheStatus, _ = strings.Cut(cacheStatus, ";")
		if strings.TrimSpace(p) == "hit" {
			return true
		}
	}
	return false
}

// FormatPosition writes a WAL position (ReadAfter, ReadAt) as PostgreSQL
// writes an LSN: two hexadecimal halves, "16/B374D848".
func FormatPosition(p uint64) string {
	return strconv.FormatUint(p>>32, 16) + "/" + strconv.FormatUint(p&0xFFFFFFFF, 16)
}

// ParsePosition reads a WAL position in PostgreSQL's LSN form
// ("16/B374D848": one to eight hexadecimal digits, a slash, one to eight
// more).
func ParsePosition(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("position %q: want two hexadecimal halves separated by a slash, like 16/B374D848", s)
	}
	h, err := parsePositionHalf(hi)
	if err != nil {
		return 0, fmt.Errorf("position %q: %w", s, err)
	}
	l, err := parsePositionHalf(lo)
	if err != nil {
		return 0, fmt.Errorf("position %q: %w", s, err)
	}
	return h<<32 | l, nil
}

func parsePositionHalf(s string) (uint64, error) {
	if len(s) == 0 || len(s) > 8 {
		return 0, errors.New("each half has one to eight hexadecimal digits")
	}
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return 0, fmt.Errorf("%q is not a hexadecimal digit", c)
		}
	}
	return strconv.ParseUint(s, 16, 32)
}
