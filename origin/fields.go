package origin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/spark-edge/spark/origin/store"
)

// The list endpoints other than suggestions (matches, conversations,
// messages) take fields=a,b,c: each item then carries only those of its
// JSON fields, for the phone's smaller payloads. Without fields= the items
// are whole, as before. An unknown name is a 400 naming the allowed ones.

// Item field names each list endpoint accepts in fields=.
var (
	matchFieldNames        = jsonFieldNames(reflect.TypeFor[matchJSON]())
	conversationFieldNames = jsonFieldNames(reflect.TypeFor[store.ConversationSummary]())
	messageFieldNames      = jsonFieldNames(reflect.TypeFor[store.Message]())
)

// jsonFieldNames are the JSON names of struct type t's exported fields.
func jsonFieldNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// requestListFields parses the request's query and its ?fields= against
// the names a list's items allow (nil: every field).
func requestListFields(r *http.Request, allowed []string) ([]string, error) {
	q, err := parseQuery(r)
	if err != nil {
		return nil, err
	}
	return parseListFields(q.Get("fields"), allowed)
}

// parseListFields reads a fields= value against allowed: nil (every
// field) when empty, else the names given, each once.
func parseListFields(v string, allowed []string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allowed, f) {
			return nil, badRequest("unknown field %q; allowed: %s", f, strings.Join(allowed, ","))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// shapeList returns items with only fields kept in each (items as they are
// when fields is nil).
func shapeList[T any](items []T, fields []string) (any, error) {
	if fields == nil {
		return items, nil
	}
	out := make([]map[string]json.RawMessage, len(items))
	for i := range items {
		b, err := json.Marshal(items[i])
		if err != nil {
			return nil, fmt.Errorf("encode list item: %w", err)
		}
		var all map[string]json.RawMessage
		if err := json.Unmarshal(b, &all); err != nil {
			return nil, fmt.Errorf("shape list item: %w", err)
		}
		kept := make(map[string]json.RawMessage, len(fields))
		for _, f := range fields {
			if v, ok := all[f]; ok {
				kept[f] = v
			}
		}
		out[i] = kept
	}
	return out, nil
}
