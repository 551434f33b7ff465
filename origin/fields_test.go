package origin_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spark-edge/spark/origin/store"
)

// fields= on the matches, conversations and messages lists: each item
// carries only the fields named; without it the items are whole; an
// unknown name is a 400 that lists the allowed ones.
func TestListFields(t *testing.T) {
	onEachStore(t, testListFields)
}

func testListFields(t *testing.T, st store.Store) {
	a := newAPI(t, st)
	ann := mkUser(t, st, "ann", 30, "woman", 1, 1, nil)
	bob := mkUser(t, st, "bob", 30, "man", 1, 1.01, nil)
	ta, tb := token(t, ann), token(t, bob)
	conv := matchPair(t, a, ta, tb, ann, bob)
	msgs := fmt.Sprintf("/api/conversations/%d/messages", conv)
	for i := 0; i < 3; i++ {
		expect(t, a.do("POST", msgs, ta, fmt.Sprintf(`{"body":"hello %d","client_msg_id":"f%d"}`, i, i)), 201, "send")
	}

	// items returns the list under key, each item's keys sorted.
	items := func(path, tok, key string) ([][]string, int) {
		t.Helper()
		r := a.do("GET", path, tok, "")
		expect(t, r, 200, path)
		var out map[string]json.RawMessage
		r.json(t, &out)
		var list []map[string]any
		if err := json.Unmarshal(out[key], &list); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
		var keys [][]string
		for _, it := range list {
			var k []string
			for name := range it {
				k = append(k, name)
			}
			slices.Sort(k)
			keys = append(keys, k)
		}
		return keys, len(r.body)
	}
	for _, c := range []struct {
		path, key, fields string
		want              []string
		whole             int
	}{
		{"/api/matches", "matches", "peer_id,conversation_id,peer_id", []string{"conversation_id", "peer_id"}, 4},
		{"/api/conversations", "conversations", "id, unread_count", []string{"id", "unread_count"}, 6},
		{msgs, "messages", "id,body", []string{"body", "id"}, 7},
	} {
		full, fullSize := items(c.path, tb, c.key)
		if len(full) == 0 || len(full[0]) != c.whole {
			t.Errorf("%s without fields=: %v, want %d fields", c.path, full, c.whole)
		}
		shaped, size := items(c.path+"?fields="+strings.ReplaceAll(c.fields, " ", "%20"), tb, c.key)
		if len(shaped) != len(full) {
			t.Fatalf("%s: %d items shaped, %d whole", c.path, len(shaped), len(full))
		}
		for _, k := range shaped {
			if !slices.Equal(k, c.want) {
				t.Errorf("%s?fields=%s: item fields %v, want %v", c.path, c.fields, k, c.want)
			}
		}
		if size >= fullSize {
			t.Errorf("%s: shaped %d bytes, whole %d", c.path, size, fullSize)
		}
		t.Logf("%s?fields=%s: %d bytes, whole %d (%.0f%%)", c.path, c.fields, size, fullSize, 100*float64(size)/float64(fullSize))
		r := a.do("GET", c.path+"?fields=id,password", tb, "")
		expect(t, r, 400, c.path+" unknown field")
		if !strings.Contains(r.body, "password") || !strings.Contains(r.body, "allowed") {
			t.Errorf("%s: 400 body %s", c.path, r.body)
		}
	}
}
