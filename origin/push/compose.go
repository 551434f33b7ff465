package push

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxPreviewRunes bounds the message text shown in a notification.
const MaxPreviewRunes = 180

// texts are a language's notification strings.
type texts struct {
	newMatch     func(name string) string
	newMatches   func(n int) string
	matchTitle   string
	newMessage   string
	newMessages  func(n int, name string) string
	someoneLiked string
}

// languages holds the notification strings by base language; "en" is the
// fallback.
var languages = map[string]texts{
	"en": {
		newMatch:    func(name string) string { return "You and " + name + " liked each other." },
		newMatches:  func(n int) string { return "You have " + strconv.Itoa(n) + " new matches." },
		matchTitle:  "New match!",
		newMessage:  "New message",
		newMessages: func(n int, name string) string { return strconv.Itoa(n) + " new messages from " + name },
	},
	"es": {
		newMatch:    func(name string) string { return "A ti y a " + name + " os gustáis." },
		newMatches:  func(n int) string { return "Tienes " + strconv.Itoa(n) + " matches nuevos." },
		matchTitle:  "¡Nuevo match!",
		newMessage:  "Nuevo mensaje",
		newMessages: func(n int, name string) string { return strconv.Itoa(n) + " mensajes nuevos de " + name },
	},
}

// textsFor returns the strings of locale's base language ("es-MX" → es),
// English when it has none.
func textsFor(locale string) texts {
	base, _, _ := strings.Cut(strings.ToLower(locale), "-")
	if t, ok := languages[base]; ok {
		return t
	}
	return languages["en"]
}

// preview returns body cut to MaxPreviewRunes.
func preview(body string) string {
	if utf8.RuneCountInString(body) <= MaxPreviewRunes {
		return body
	}
	r := []rune(body)
	return string(r[:MaxPreviewRunes-1]) + "…"
}

// group is what one notification reports: the events of one batch of one
// user that collapse together.
type group struct {
	kind     Kind
	priority Priority
	conv     int64   // KindMessage: the conversation
	from     int64   // the other user of the newest event
	name     string  // their name ("" when unknown)
	events   []Event // oldest first
}

// render writes g for a device in locale, with message text only when
// previews is true. Quiet priorities carry data only.
func (g group) render(locale string, previews bool) (title, body string) {
	if g.priority.Quiet() {
		return "", ""
	}
	t := textsFor(locale)
	n := len(g.events)
	switch g.kind {
	case KindMatch:
		if n == 1 && g.name != "" {
			return t.matchTitle, t.newMatch(g.name)
		}
		return t.matchTitle, t.newMatches(n)
	case KindMessage:
		title = g.name
		if title == "" {
			title = t.newMessage
		}
		switch {
		case n > 1:
			return title, t.newMessages(n, g.name)
		case previews:
			return title, preview(g.events[n-1].Body)
		default:
			return title, t.newMessage
		}
	}
	return "", ""
}

// data is the app's payload of g.
func (g group) data() map[string]string {
	d := map[string]string{"kind": string(g.kind), "count": strconv.Itoa(len(g.events))}
	if g.conv != 0 {
		d["conversation_id"] = strconv.FormatInt(g.conv, 10)
	}
	if g.kind != KindLike && g.from != 0 {
		d["from_id"] = strconv.FormatInt(g.from, 10)
	}
	return d
}

// collapseID is the id under which the phone replaces an earlier
// notification of the same thing.
func (g group) collapseID() string {
	if g.kind == KindMessage {
		return "conv-" + strconv.FormatInt(g.conv, 10)
	}
	return string(g.kind)
}
